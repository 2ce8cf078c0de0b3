import path from 'node:path';
import fs from 'node:fs';
import { Sequelize } from 'sequelize';
import { ConfigError } from '../errors';

/** Where a store lives: a SQLite file path, or a `postgres://` URL. */
export type DatabaseLocation = string;

export const isPostgresUrl = (location: DatabaseLocation): boolean => /^postgres(ql)?:\/\//.test(location);

/**
 * Opens a connection and checks that it works. SQLite is put in WAL mode with
 * a busy timeout, so the API and the controller can write while others read.
 * Errors name the database and the cause in one line.
 */
export async function connect(location: DatabaseLocation): Promise<Sequelize> {
  if (isPostgresUrl(location)) {
    const sequelize = new Sequelize(location, {
      dialect: 'postgres',
      logging: false,
      pool: { max: 10, min: 0, idle: 10_000 },
    });
    try {
      await sequelize.authenticate();
    } catch (err) {
      await sequelize.close().catch(() => undefined);
      throw new ConfigError(`cannot reach database ${redact(location)}: ${(err as Error).message}`);
    }
    return sequelize;
  }

  const file = path.resolve(location);
  try {
    makeFolders(path.dirname(file));
    fs.accessSync(path.dirname(file), fs.constants.W_OK);
    if (fs.existsSync(file)) fs.accessSync(file, fs.constants.R_OK | fs.constants.W_OK);
  } catch (err) {
    throw new ConfigError(`cannot use database file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is the folder writable?)`);
  }
  const sequelize = new Sequelize({ dialect: 'sqlite', storage: file, logging: false });
  configureEachConnection(sequelize);
  try {
    // WAL is a property of the file; the rest is per connection (configureEachConnection).
    await sequelize.query('PRAGMA journal_mode=WAL');
  } catch (err) {
    await sequelize.close().catch(() => undefined);
    throw new ConfigError(`cannot open database file ${file}: ${(err as Error).message}`);
  }
  return sequelize;
}

/**
 * What every SQLite connection needs, set on each as it opens: sequelize opens
 * one connection per transaction besides its default one, and these pragmas
 * hold per connection. Foreign keys are what make deleting an App take its
 * runs with it and refuse a run for an App that is gone; the busy timeout lets
 * a transaction wait for another writer instead of failing at once.
 */
const CONNECTION_PRAGMAS = 'PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL;';

interface SqliteDatabase {
  exec(sql: string, callback: (err: Error | null) => void): void;
}

function configureEachConnection(sequelize: Sequelize): void {
  const manager = sequelize.connectionManager as unknown as { getConnection(options?: object): Promise<SqliteDatabase> };
  const open = manager.getConnection.bind(manager);
  const configured = new WeakMap<SqliteDatabase, Promise<void>>();
  manager.getConnection = async (options?: object) => {
    const connection = await open(options);
    let ready = configured.get(connection);
    if (!ready) {
      ready = new Promise<void>((resolve, reject) => connection.exec(CONNECTION_PRAGMAS, (err) => (err ? reject(err) : resolve())));
      configured.set(connection, ready);
    }
    await ready;
    return connection;
  };
}

/**
 * `mkdir -p`, one level at a time. Node's recursive mkdirSync never returns
 * under /proc (it retries the ENOENT forever), so a bad `--db` would hang.
 */
function makeFolders(dir: string): void {
  if (fs.existsSync(dir)) return;
  makeFolders(path.dirname(dir));
  fs.mkdirSync(dir);
}

/** A database URL with its password hidden, for messages. */
export function redact(location: DatabaseLocation): string {
  return location.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
