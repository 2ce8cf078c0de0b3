/**
 * `npm run bench:api`: berth's read path under load. Starts `berth serve` in
 * a child process on a temporary SQLite file, creates 1,000 Apps, then drives
 * `GET /apps/{id}/` and `GET /apps/?limit=50` with autocannon at 16 and 64
 * connections, printing requests/s, p50, p99 and the server's RSS.
 *
 * Targets: ≥ 5,000 req/s and p99 < 10 ms for GET /apps/{id}/ at 16
 * connections; RSS < 120 MB.
 *
 * BENCH_DURATION_S sets the seconds per run (default 5); BENCH_NODE_FLAGS
 * passes flags to the server's node (e.g. `--max-semi-space-size=2`).
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, rssMb, serverEnv } from './support';

const APPS = 1000;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const MAIN = path.resolve(__dirname, '../src/cli/main.js');

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-'));
  const port = await freePort();
  const server = spawn(process.execPath, [...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ') : []), MAIN, 'serve', '--port', String(port), '--db', path.join(dir, 'berth.sqlite'), '--apps-dir', dir, '--log-level', 'warn'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: serverEnv(),
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await until(() => fetch(`${base}/healthz`).then((r) => r.ok), 15_000);
    const started = performance.now();
    for (let i = 0; i < APPS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, APPS - i) }, (_, j) =>
          fetch(`${base}/apps/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              name: `bench-${i + j}`,
              image: 'busybox:1.36',
              command: ['sh', '-c', 'echo hello $WHO'],
              envs: { WHO: 'bench', INDEX: String(i + j) },
            }),
          }).then((r) => {
            if (r.status !== 201) throw new Error(`create answered ${r.status}`);
          }),
        ),
      );
    }
    console.log(`created ${APPS} apps in ${Math.round(performance.now() - started)} ms; RSS ${rssMb(server.pid!).toFixed(1)} MB`);
    console.log('');
    console.log('endpoint              conns      req/s   p50 ms   p99 ms   errors   RSS MB');
    const results: { name: string; connections: number; rps: number; p99: number }[] = [];
    for (const [name, pathOf] of [
      ['GET /apps/{id}/', () => `/apps/${1 + Math.floor(Math.random() * APPS)}/`],
      ['GET /apps/?limit=50', () => `/apps/?limit=50&offset=${50 * Math.floor(Math.random() * (APPS / 50))}`],
    ] as const) {
      for (const connections of [16, 64]) {
        const result = await autocannon({
          url: base,
          connections,
          duration: DURATION_S,
          requests: [{ setupRequest: (request) => ({ ...request, path: pathOf() }) }],
        });
        const errors = result.errors + result.non2xx;
        console.log(
          `${name.padEnd(22)}${String(connections).padStart(5)}${Math.round(result.requests.average).toString().padStart(11)}` +
            `${result.latency.p50.toFixed(1).padStart(9)}${result.latency.p99.toFixed(1).padStart(9)}${String(errors).padStart(9)}` +
            `${rssMb(server.pid!).toFixed(1).padStart(9)}`,
        );
        results.push({ name, connections, rps: result.requests.average, p99: result.latency.p99 });
      }
    }
    const target = results.find((r) => r.name === 'GET /apps/{id}/' && r.connections === 16)!;
    const rss = rssMb(server.pid!);
    console.log('');
    console.log(`target GET /apps/{id}/ @16: ${Math.round(target.rps)} req/s (≥ 5000: ${target.rps >= 5000 ? 'met' : 'MISSED'}), ` +
      `p99 ${target.p99} ms (< 10: ${target.p99 < 10 ? 'met' : 'MISSED'}); RSS ${rss.toFixed(1)} MB (< 120: ${rss < 120 ? 'met' : 'MISSED'})`);
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`the server did not answer /healthz within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

main().catch((err: Error) => {
  console.error(`bench:api failed: ${err.message}`);
  process.exit(1);
});
