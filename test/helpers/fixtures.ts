import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type sqlite3 from 'sqlite3';
import { Store } from '../../src/store/store';
import type { AppSpec } from '../../src/model/types';
import { waitFor } from './wait';

/** The locally imported busybox image every Docker test runs (see .ci/provision). */
export const TEST_IMAGE = 'berth-test/busybox:latest';
/** The same image served by the loopback registry, for real pulls. */
export const REGISTRY_IMAGE = '127.0.0.1:5000/berth-test/busybox:latest';
export const POSTGRES_URL = process.env.BERTH_TEST_POSTGRES ?? 'postgres://berth:berth@127.0.0.1:5432/berth_test';

/** A name no other test uses: `<prefix>-<random>`, a valid DNS-1123 label. */
export const uniqueName = (prefix = 't'): string => `${prefix}-${randomBytes(4).toString('hex')}`;

export function tempDir(prefix = 'berth-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A store on a fresh SQLite file in a temporary folder. */
export async function tempSqliteStore(): Promise<{ store: Store; file: string }> {
  const file = path.join(tempDir(), 'berth.sqlite');
  return { store: await Store.open(file), file };
}

export function appSpec(overrides: Partial<AppSpec> = {}): AppSpec {
  return {
    image: TEST_IMAGE,
    command: ['sh', '-c', 'echo hello'],
    env: {},
    retries: 0,
    concurrencyPolicy: 'Allow',
    imagePullPolicy: 'IfNotPresent',
    resources: {},
    ...overrides,
  };
}

/**
 * How many statements matching `pattern` the store's own connection has run, as sqlite3
 * traces them. Its trace events arrive after the statements' answers, in order: each count
 * first waits for a marker statement's own event, which comes after every earlier one.
 */
export async function tracedCount(store: Store, pattern: string): Promise<() => Promise<number>> {
  const manager = store.sequelize.connectionManager as unknown as { getConnection(options: object): Promise<sqlite3.Database> };
  const connection = await manager.getConnection({});
  const statements: string[] = [];
  connection.on('trace', (sql: string) => statements.push(sql));
  let markers = 0;
  return async () => {
    const marker = `SELECT ${++markers} AS trace_marker`;
    await new Promise<void>((resolve, reject) => connection.all(marker, [], (err) => (err ? reject(err) : resolve())));
    await waitFor(`the trace of ${marker}`, () => statements.includes(marker));
    return statements.filter((sql) => sql.includes(pattern)).length;
  };
}
