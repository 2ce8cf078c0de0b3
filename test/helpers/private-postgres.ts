/**
 * A PostgreSQL server of a test's own (Debian's binaries, a temp data folder,
 * a free port, run as the postgres user), so a test can restart it while
 * other tests use the shared one on 5432.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './berth-process';

export interface PrivatePostgres {
  /** `postgres://…` of its database, for `berth serve --db`. */
  url: string;
  /** `pg_ctl stop -m mode`: fast (clients cut off, clean), immediate (a crash). */
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /** Stops it and deletes its data. */
  remove(): void;
}

const BIN = (() => {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  return versions.map((v) => path.join(root, v, 'bin')).find((dir) => fs.existsSync(path.join(dir, 'initdb')));
})();

/** Why this machine cannot run a private PostgreSQL, or undefined when it can. */
export function postgresMissing(): string | undefined {
  if (!BIN) return 'no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)';
  if (process.getuid?.() !== 0) return 'running PostgreSQL as the postgres user needs root';
  try {
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
  } catch {
    return 'there is no postgres user';
  }
  return undefined;
}

/** initdb, start, and a database `berth` owned by user `berth` (password `berth`). */
export async function startPostgres(): Promise<PrivatePostgres> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-chaos-pg-'));
  fs.chmodSync(base, 0o755);
  const data = path.join(base, 'data');
  const port = await freePort();
  const asPostgres = (tool: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', path.join(BIN!, tool), ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: base });
  fs.mkdirSync(data);
  execFileSync('chown', ['postgres:postgres', data, base]);
  asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const start = () =>
    void asPostgres('pg_ctl', [
      'start',
      '-w',
      '-D',
      data,
      '-l',
      path.join(base, 'server.log'),
      '-o',
      `-p ${port} -k ${base} -c listen_addresses=127.0.0.1 -c fsync=off`,
    ]);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => void asPostgres('pg_ctl', ['stop', '-w', '-D', data, '-m', mode]);
  start();
  asPostgres('psql', ['-h', base, '-p', String(port), '-U', 'postgres', '-c', "CREATE USER berth PASSWORD 'berth'", '-c', 'CREATE DATABASE berth OWNER berth']);
  return {
    url: `postgres://berth:berth@127.0.0.1:${port}/berth`,
    stop,
    start,
    remove() {
      try {
        stop('immediate');
      } catch {
        /* not running */
      }
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
