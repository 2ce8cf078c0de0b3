import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Store } from '../../src/store/store';
import type { AppSpec } from '../../src/model/types';

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
