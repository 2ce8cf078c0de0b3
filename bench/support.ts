/**
 * Shared pieces of the benchmarks: starting a berth server as a child
 * process, reading its memory, and simple statistics.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { serveArgs } from '../test/helpers/berth-process';

export interface BerthProcess {
  url: string;
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

/**
 * The environment a berth server runs in, as `npm start` sets it: glibc
 * gives every thread that allocates (sqlite3's workers) its own malloc arena
 * unless told otherwise, which costs tens of MB of resident memory.
 */
export function serverEnv(): NodeJS.ProcessEnv {
  return { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Starts `berth serve` on a fresh SQLite file (or the given one) and waits for /readyz. */
export async function startBerth(args: string[] = [], options: { dir?: string } = {}): Promise<BerthProcess> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-'));
  fs.mkdirSync(path.join(dir, 'apps'), { recursive: true });
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, serveArgs(dir, port, args), { stdio: ['ignore', 'inherit', 'inherit'], env: serverEnv() });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`berth exited with code ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('berth did not become ready within 30 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    pid: child.pid as number,
    dir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Resident set size of a process, in MB. */
export function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** CPU time (user + system) a process has used so far, in ms. */
export function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat(5), counted from the state field (3) here.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export async function api<T>(url: string, method = 'GET', body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} → ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Prints one figure with its target, e.g. `sequential ratio   1.04   (target ≤ 1.10)  ok`. */
export function report(label: string, value: number, unit: string, target?: { op: '<=' | '>=' | '<'; limit: number }): void {
  let verdict = '';
  if (target) {
    const ok = target.op === '>=' ? value >= target.limit : target.op === '<=' ? value <= target.limit : value < target.limit;
    verdict = `  (target ${target.op === '>=' ? '≥' : target.op === '<=' ? '≤' : '<'} ${target.limit}${unit ? ' ' + unit : ''})  ${ok ? 'ok' : 'MISSED'}`;
  }
  console.log(`${label.padEnd(52)} ${value.toFixed(unit === '' ? 3 : 1).padStart(10)} ${unit}${verdict}`);
}

/** How long `fn` takes, in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Runs `task` `count` times, at most `width` at once. */
export async function pool(count: number, width: number, task: () => Promise<void>): Promise<void> {
  const limit = pLimit(width);
  await Promise.all(Array.from({ length: count }, () => limit(task)));
}
