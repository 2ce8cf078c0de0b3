/**
 * `berth serve` as a child process, as a user runs it, and small clients of
 * its API: for tests that need the whole of berth.
 */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './wait';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

export interface Berth {
  url: string;
  child: ChildProcess;
  output: () => string;
}

/**
 * Starts `berth serve` on `port` with its store and apps folder in `dir`, and waits until /readyz answers ready
 * (or, with `until: '/healthz'`, until it answers at all: a berth whose runtime is unreachable is never ready).
 */
export async function serve(dir: string, port: number, flags: string[] = [], env: Record<string, string> = {}, until = '/readyz'): Promise<Berth> {
  let output = '';
  const child = spawn(
    process.execPath,
    [CLI, 'serve', '--port', String(port), '--db', path.join(dir, 'berth.sqlite'), '--apps-dir', path.join(dir, 'apps'), '--log-level', 'warn', ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`berth on ${url} to be ready`, async () => {
    if (child.exitCode !== null) throw new Error(`berth exited ${child.exitCode}: ${output}`);
    return (await fetch(`${url}${until}`)).ok;
  });
  return { url, child, output: () => output };
}

export async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export async function runOf(url: string, app: string, run: string | number): Promise<any> {
  return (await json(`${url}/apps/${app}/run/${run}/`)).body;
}

export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}


/** A port nothing listens on right now, for a `berth serve` child. */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as import('node:net').AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
