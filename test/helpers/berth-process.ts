/**
 * `berth serve` as a child process, as a user runs it, and small clients of
 * its API: for tests that need the whole of berth.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from './wait';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const PACKAGE = path.join(__dirname, '..', '..', '..', 'package.json');

/**
 * node's flags for the server, read from `npm start` (package.json), which is
 * where they are set (README, "Benchmarks"); the image's test holds its
 * ENTRYPOINT to the same list.
 */
export function serverNodeFlags(): string[] {
  const start: string = JSON.parse(readFileSync(PACKAGE, 'utf8')).scripts.start;
  const found = /\bnode((?: --[\w-]+(?:=\S+)?)*) dist\/src\/cli\/main\.js\b/.exec(start);
  if (!found) throw new Error(`package.json's start script does not run node dist/src/cli/main.js: ${start}`);
  return found[1].split(' ').filter(Boolean);
}

const SERVER_NODE_FLAGS = serverNodeFlags();

/**
 * node's arguments for `berth serve` on `port`, with its store and apps folder in `dir`,
 * as the tests and the benchmarks start it: `nodeFlags` go to node, `flags` to berth.
 */
export function serveArgs(dir: string, port: number, flags: string[] = [], options: { nodeFlags?: string[]; logLevel?: string } = {}): string[] {
  return [
    ...SERVER_NODE_FLAGS,
    ...(options.nodeFlags ?? []),
    CLI,
    'serve',
    '--port',
    String(port),
    '--db',
    path.join(dir, 'berth.sqlite'),
    '--apps-dir',
    path.join(dir, 'apps'),
    '--log-level',
    options.logLevel ?? 'warn',
    ...flags,
  ];
}

export interface Berth {
  url: string;
  child: ChildProcess;
  output: () => string;
}

/**
 * Starts `berth serve` with its store and apps folder in `dir`, and waits until /readyz answers ready (or, with
 * `until: '/healthz'`, until it answers at all: a berth whose runtime is unreachable is never ready). It listens on
 * `port`, or on a free port when none is given; a port taken by someone else between choosing and listening is
 * replaced by another rather than failing the test. A berth that exits while starting fails at once, with its output.
 */
export async function serve(dir: string, port?: number, flags: string[] = [], env: Record<string, string> = {}, until = '/readyz'): Promise<Berth> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(dir, port ?? (await freePort()), flags, env, until);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 5) throw err;
      port = undefined;
    }
  }
}

class PortTaken extends Error {}

async function start(dir: string, port: number, flags: string[], env: Record<string, string>, until: string): Promise<Berth> {
  let output = '';
  const child = spawn(process.execPath, serveArgs(dir, port, flags), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  // 'close' comes after the output is read to its end, so an early exit is reported with all it said.
  let closed = false;
  child.once('close', () => (closed = true));
  const url = `http://127.0.0.1:${port}`;
  const outcome = await waitFor(`berth on ${url} to be ready`, async () => {
    if (closed) return 'exited';
    return (await fetch(`${url}${until}`)).ok && 'ready';
  });
  if (outcome === 'exited') {
    const message = `berth exited ${child.exitCode ?? child.signalCode} while starting: ${output}`;
    throw output.includes('the address is in use') ? new PortTaken(message) : new Error(message);
  }
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
