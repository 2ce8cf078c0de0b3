/**
 * `npm run bench:api`: berth's API under load, against issue 12's targets and,
 * when `SEED_URL` names a running seed-contract server (DjDockerManager), against
 * that server on the same calls in the same run. Starts `berth serve` in a child
 * process on a temporary SQLite file, creates 1,000 Apps, then drives with
 * autocannon at 16 connections:
 *  - `GET /apps/?limit=200`: ≥ 2,000 req/s, p99 < 20 ms;
 *  - `GET /apps/{id}/`: ≥ 8,000 req/s;
 *  - `POST /apps/` (a new name each): ≥ 2,500 creates/s;
 * and reads the server's RSS 1 s after it is ready, idle BENCH_SETTLE_S (default 60) s
 * after (< 90 MB), and at its peak under load (< 120 MB).
 * `GET /apps/?limit=200&view=summary` is measured too, for what the compact form saves.
 *
 * BENCH_DURATION_S sets the seconds per run (default 5), BENCH_WARMUP_S the
 * unmeasured seconds of the same calls before it (default 2); BENCH_NODE_FLAGS
 * passes flags to the server's node (e.g. `--cpu-prof`); BENCH_LOG_LEVEL the server's
 * `--log-level` (default warn; `info` writes the access log line of each request);
 * BENCH_ONLY the one endpoint to drive (its name as printed, e.g. `POST /apps/`), for a profile of it alone.
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serveArgs } from '../test/helpers/berth-process';
import { cpuMs, freePort, report, rssMb, serverEnv } from './support';

const APPS = 1000;
const CONNECTIONS = 16;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const SETTLE_S = Number(process.env.BENCH_SETTLE_S ?? 60);
/**
 * Seconds of each call driven before it is measured: after the idle wait, V8 has
 * given back its young generation (in the server and in this process), and the
 * first seconds of load measure it growing again rather than the steady rate.
 */
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 2);

interface Figure {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  bytesPerRequest: number;
  /** The server's CPU time per answer: steadier than req/s on a machine others are loading. */
  cpuMsPerRequest: number;
  /** This process's (autocannon's) CPU time per answer: the load generator shares the machine's cores with the server. */
  clientCpuMsPerRequest: number;
  /** The server's peak RSS while this call was driven (berth only). */
  peakRssMb?: number;
}

/**
 * One autocannon run, after WARMUP_S of the same calls unmeasured; `request`
 * gives each request's path (and body, for a create).
 */
async function drive(pid: number | undefined, base: string, request: () => { method?: 'GET' | 'POST'; path: string; body?: string }): Promise<Figure> {
  const load = (duration: number) =>
    autocannon({
      url: base,
      connections: CONNECTIONS,
      duration,
      requests: [{ setupRequest: (r) => ({ ...r, ...request(), headers: { ...r.headers, 'content-type': 'application/json' } }) }],
    });
  if (WARMUP_S > 0) await load(WARMUP_S);
  const cpuBefore = pid ? cpuMs(pid) : 0;
  const clientBefore = cpuMs(process.pid);
  const result = await load(DURATION_S);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
    bytesPerRequest: result.requests.total ? result.throughput.total / result.requests.total : 0,
    cpuMsPerRequest: pid && result.requests.total ? (cpuMs(pid) - cpuBefore) / result.requests.total : NaN,
    clientCpuMsPerRequest: result.requests.total ? (cpuMs(process.pid) - clientBefore) / result.requests.total : NaN,
  };
}

function seedBody(name: string, index: number): string {
  return JSON.stringify({ name, image: 'busybox:1.36', command: ['sh', '-c', 'echo hello $WHO'], envs: { WHO: 'bench', INDEX: String(index) } });
}

/** Creates `count` Apps 50 at a time; returns their ids. */
async function seedApps(base: string, prefix: string, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, async (_, j) => {
        const res = await fetch(`${base}/apps/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: seedBody(`${prefix}-${i + j}`, i + j),
        });
        if (res.status !== 201) throw new Error(`create on ${base} answered ${res.status}: ${await res.text()}`);
        return ((await res.json()) as { id: number }).id;
      }),
    );
    ids.push(...batch);
  }
  return ids;
}

/** The calls measured, the same on berth and on the seed server. */
function scenarios(ids: number[], prefix: string) {
  let created = 0;
  const pick = () => ids[Math.floor(Math.random() * ids.length)];
  return {
    'GET /apps/?limit=200': () => ({ path: `/apps/?limit=200&offset=${200 * Math.floor(Math.random() * (ids.length / 200))}` }),
    'GET /apps/{id}/': () => ({ path: `/apps/${pick()}/` }),
    'POST /apps/': () => ({ method: 'POST' as const, path: '/apps/', body: seedBody(`${prefix}-new-${created++}`, created) }),
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-'));
  const port = await freePort();
  // The apps folder apart from the database: the folder watcher must not see every WAL write.
  fs.mkdirSync(path.join(dir, 'apps'));
  const flags = process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ') : [];
  const server = spawn(process.execPath, serveArgs(dir, port, [], { nodeFlags: flags, logLevel: process.env.BENCH_LOG_LEVEL }), {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: serverEnv(),
  });
  const base = `http://127.0.0.1:${port}`;
  let peakRss = 0;
  // The peak of the endpoint being driven, to tell which call the overall peak comes from.
  let drivenPeakRss = 0;
  const sampler = setInterval(() => {
    try {
      const rss = rssMb(server.pid!);
      peakRss = Math.max(peakRss, rss);
      drivenPeakRss = Math.max(drivenPeakRss, rss);
    } catch {
      // the server has exited; the run reports its own failure
    }
  }, 100);
  try {
    await until(() => fetch(`${base}/readyz`).then((r) => r.ok), 60_000);
    // Idle: started and ready, before the first API request.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRss = rssMb(server.pid!);
    // Idle a while longer: V8's memory reducer gives back what start-up's burst of allocation grew the heap to
    // (here, about 45 s after start), and that is what an idle server holds.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_S * 1000));
    const settledRss = rssMb(server.pid!);
    const prefix = `bench-${process.pid}`;
    const started = performance.now();
    const ids = await seedApps(base, prefix, APPS);
    console.log(`created ${APPS} apps in ${Math.round(performance.now() - started)} ms`);
    console.log('');
    console.log('server  endpoint                                req/s   p50 ms   p99 ms   errors   KB/answer   CPU ms/answer   client CPU ms   peak RSS MB');
    const berth: Record<string, Figure> = {};
    const calls = {
      ...scenarios(ids, prefix),
      'GET /apps/?limit=200&view=summary': () => ({ path: `/apps/?limit=200&view=summary&offset=${200 * Math.floor(Math.random() * (APPS / 200))}` }),
    };
    for (const [name, request] of Object.entries(calls)) {
      if (process.env.BENCH_ONLY && name !== process.env.BENCH_ONLY) continue;
      drivenPeakRss = 0;
      berth[name] = await drive(server.pid, base, request);
      berth[name].peakRssMb = drivenPeakRss;
      print('berth', name, berth[name]);
    }
    const seed: Record<string, Figure> = {};
    if (process.env.SEED_URL) {
      const seedBase = process.env.SEED_URL.replace(/\/$/, '');
      const seedIds = await seedApps(seedBase, prefix, APPS);
      for (const [name, request] of Object.entries(scenarios(seedIds, `${prefix}-s`))) {
        seed[name] = await drive(undefined, seedBase, request);
        print('seed', name, seed[name]);
      }
    }
    console.log('');
    report('RSS 1 s after ready (MB)', idleRss, 'MB');
    if (SETTLE_S > 0) report(`RSS idle, ${SETTLE_S} s after ready (MB)`, settledRss, 'MB', { op: '<', limit: 90 });
    report('RSS peak under load (MB)', peakRss, 'MB', { op: '<', limit: 120 });
    if (process.env.BENCH_ONLY) return;
    report('GET /apps/?limit=200 @16 (req/s)', berth['GET /apps/?limit=200'].rps, 'req/s', { op: '>=', limit: 2000 });
    report('GET /apps/?limit=200 @16 p99 (ms)', berth['GET /apps/?limit=200'].p99, 'ms', { op: '<', limit: 20 });
    report('GET /apps/{id}/ @16 (req/s)', berth['GET /apps/{id}/'].rps, 'req/s', { op: '>=', limit: 8000 });
    report('POST /apps/ @16 (creates/s)', berth['POST /apps/'].rps, '/s', { op: '>=', limit: 2500 });
    for (const name of Object.keys(seed)) report(`${name}: berth req/s ÷ seed req/s`, berth[name].rps / seed[name].rps, '');
  } finally {
    clearInterval(sampler);
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function print(server: string, name: string, f: Figure): void {
  console.log(
    `${server.padEnd(8)}${name.padEnd(36)}${Math.round(f.rps).toString().padStart(9)}${f.p50.toFixed(1).padStart(9)}${f.p99.toFixed(1).padStart(9)}` +
      `${String(f.errors).padStart(9)}${(f.bytesPerRequest / 1024).toFixed(1).padStart(12)}` +
      `${f.cpuMsPerRequest.toFixed(3).padStart(16)}${f.clientCpuMsPerRequest.toFixed(3).padStart(16)}` +
      `${f.peakRssMb === undefined ? '' : f.peakRssMb.toFixed(0).padStart(14)}`,
  );
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`the server did not answer /readyz within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

main().catch((err: Error) => {
  console.error(`bench:api failed: ${err.message}`);
  process.exit(1);
});
