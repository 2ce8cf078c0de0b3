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
  try {
    await sequelize.query('PRAGMA journal_mode=WAL');
    await sequelize.query('PRAGMA busy_timeout=5000');
    await sequelize.query('PRAGMA synchronous=NORMAL');
  } catch (err) {
    await sequelize.close().catch(() => undefined);
    throw new ConfigError(`cannot open database file ${file}: ${(err as Error).message}`);
  }
  return sequelize;
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
