/**
 * `npm run bench:sync`: the folder source on a temporary SQLite store, with
 * the HTTP API in the same process so changes are read the way clients
 * read them:
 *  - latency: a file write until `GET /apps/{id}/` shows it, over 100 edits
 *    (p50 and p99; target p99 < 250 ms);
 *  - start-up: 5,000 App files in the folder until the source is ready and
 *    all are in the store (target < 5 s), and the RSS afterwards;
 *  - burst: 500 files written at once until all are applied and the source is idle.
 */
import fs from 'node:fs';
import { Runtimes } from '../src/executors/runtimes';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createApi } from '../src/api/app';
import { FolderSource } from '../src/sources/folder';
import { Store } from '../src/store/store';
import { percentile, report } from './support';

const EDITS = 100;
const STARTUP_FILES = Number(process.env.BERTH_BENCH_STARTUP_FILES ?? 5000);
const BURST_FILES = 500;

interface Harness {
  dir: string;
  store: Store;
  source: FolderSource;
  url: string;
  stop(): Promise<void>;
}

function manifest(name: string, value: string): string {
  return [
    'apiVersion: berth.dev/v1',
    'kind: App',
    'metadata:',
    `  name: ${name}`,
    '  labels: {bench: sync}',
    'spec:',
    '  image: busybox:1.36',
    '  command: ["sh", "-c", "echo $VALUE"]',
    '  env:',
    `    VALUE: "${value}"`,
    '  resources: {cpu: "0.5", memory: 64Mi}',
    '',
  ].join('\n');
}

/** A folder source and the API over one fresh store; resolves once the start-up scan is done. */
async function startHarness(dir: string): Promise<Harness & { readyMs: number }> {
  const store = await Store.open(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-db-')), 'berth.sqlite'));
  const logger = pino({ level: 'silent' });
  const metrics = new Registry();
  const source = new FolderSource({ dir, store, logger, registry: metrics });
  const api = createApi({ store, logger, readiness: [], runtimes: new Runtimes([], 'docker'), metrics, folder: source });
  const server = http.createServer(api.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const controller = new AbortController();
  const started = performance.now();
  const running = source.start(controller.signal);
  await source.ready;
  const readyMs = performance.now() - started;
  return {
    dir,
    store,
    source,
    url,
    readyMs,
    async stop() {
      controller.abort();
      await running;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await store.close();
    },
  };
}

const agent = new http.Agent({ keepAlive: true });

/** `GET /apps/{name}/` over a kept-alive connection; the App's VALUE, or undefined while it does not exist. */
function appValue(url: string, name: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/apps/${name}/`, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(res.statusCode === 200 ? (JSON.parse(body) as { spec: { env: { VALUE?: string } } }).spec.env.VALUE : undefined));
      })
      .on('error', reject);
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function freshDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-apps-'));
}

async function latency(): Promise<void> {
  const dir = freshDir();
  const names = Array.from({ length: 50 }, (_, i) => `latency-${i}`);
  for (const name of names) fs.writeFileSync(path.join(dir, `${name}.yaml`), manifest(name, 'start'));
  const harness = await startHarness(dir);
  const samples: number[] = [];
  try {
    for (let i = 0; i < EDITS; i++) {
      const name = names[i % names.length];
      const value = `edit-${i}`;
      const started = performance.now();
      fs.writeFileSync(path.join(dir, `${name}.yaml`), manifest(name, value));
      await until(`edit ${i}`, async () => (await appValue(harness.url, name)) === value);
      samples.push(performance.now() - started);
    }
  } finally {
    await harness.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  report('write → GET /apps/{id}/ shows it, p50', percentile(samples, 50), 'ms');
  report('write → GET /apps/{id}/ shows it, p99', percentile(samples, 99), 'ms', { op: '<', limit: 250 });
}

async function startup(): Promise<void> {
  const dir = freshDir();
  for (let i = 0; i < STARTUP_FILES; i++) {
    const folder = path.join(dir, `team-${i % 50}`);
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, `app-${i}.yaml`), manifest(`startup-${i}`, String(i)));
  }
  const rssBefore = process.memoryUsage().rss;
  const harness = await startHarness(dir);
  try {
    const { total } = await harness.store.listApps({ limit: 1 });
    if (total !== STARTUP_FILES) throw new Error(`expected ${STARTUP_FILES} Apps after start-up, found ${total}`);
    const last = STARTUP_FILES - 1;
    if ((await appValue(harness.url, `startup-${last}`)) !== String(last)) throw new Error('the last App is not visible over HTTP');
    global.gc?.();
    report(`start-up with ${STARTUP_FILES} App files until ready`, harness.readyMs / 1000, 's', { op: '<', limit: 5 });
    report('RSS after start-up (whole process)', process.memoryUsage().rss / 2 ** 20, 'MB');
    report('RSS growth over the start-up', (process.memoryUsage().rss - rssBefore) / 2 ** 20, 'MB');
  } finally {
    await harness.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function burst(): Promise<void> {
  const dir = freshDir();
  fs.writeFileSync(path.join(dir, 'seed.yaml'), manifest('burst-seed', 'seed'));
  const harness = await startHarness(dir);
  try {
    const started = performance.now();
    // As `git pull` does: new files appear in several folders, as fast as the disk takes them.
    for (let i = 0; i < BURST_FILES; i++) {
      const folder = path.join(dir, `pulled-${i % 10}`);
      fs.mkdirSync(folder, { recursive: true });
      fs.writeFileSync(path.join(folder, `app-${i}.yaml`), manifest(`burst-${i}`, String(i)));
    }
    const written = performance.now();
    await until('the burst', async () => (await harness.store.listApps({ limit: 1 })).total === BURST_FILES + 1);
    await harness.source.whenIdle();
    const settled = performance.now();
    const { summary } = harness.source.report();
    if (summary.error !== 0) throw new Error(`${summary.error} files in error after the burst`);
    report(`${BURST_FILES}-file burst: writing the files`, written - started, 'ms');
    report(`${BURST_FILES}-file burst: first write until all applied`, settled - started, 'ms');
  } finally {
    await harness.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await latency();
  await startup();
  await burst();
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
