/**
 * What the API fuzzer aims at: berth's whole API (every guard, every route)
 * on a real koa server over a real SQLite store, with a real folder source
 * watching a folder of one good and one broken file, and a bearer token.
 * No controller runs, so nothing but a request changes the store: a
 * snapshot taken through the API before a request is still true after it
 * unless the request changed something.
 */
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createApi } from '../../src/api/app';
import type { ApiDeps } from '../../src/api/deps';
import { Runtimes } from '../../src/executors/runtimes';
import { RuntimeName } from '../../src/model/types';
import { FolderSource } from '../../src/sources/folder';
import { Store } from '../../src/store/store';
import { tempDir, TEST_IMAGE } from '../helpers/fixtures';
import { MemoryExecutor } from '../helpers/memory-executor';
import { waitFor } from '../helpers/wait';

export const FUZZ_TOKEN = 'fuzz-token-0123456789abcdef0123456789abcdef';
/** A Host the server answers for beyond loopback names (see ./requests.ts). */
export const ALLOWED_HOST = 'berth.fuzz.example';

/** The names the target starts with, for requests to aim at. */
export const KNOWN = {
  apiApp: 'fuzz-api-app',
  fileApp: 'fuzz-file-app',
  run: 'fuzz-run-1',
};

/** An HTTP request written byte for byte as given: any method, target, header or body. */
export interface RawRequest {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
  /** Send the body as one chunk of `Transfer-Encoding: chunked` instead of with a Content-Length. */
  chunked: boolean;
}

export interface RawAnswer {
  status: number;
  head: string;
  body: string;
}

export interface FuzzTarget {
  port: number;
  store: Store;
  /** Sends `request` on a fresh connection and reads the answer; a streamed answer (events, followed logs) is cut after its head. */
  send(request: RawRequest): Promise<RawAnswer>;
  /** Apps, runs and the folder's report, as the API lists them. */
  snapshot(): Promise<string>;
  /** Whether `/healthz` answers 200. */
  healthy(): Promise<boolean>;
  /** What the server logged at warn level and above: a 5xx's cause. */
  errors(): string[];
  close(): Promise<void>;
}

const GOOD_FILE = `apiVersion: berth.dev/v1
kind: App
metadata: {name: ${KNOWN.fileApp}, labels: {team: fuzz}}
spec: {image: ${TEST_IMAGE}, command: [sh, -c, "echo hi"], env: {A: b}}
`;
const BROKEN_FILE = `apiVersion: berth.dev/v1
kind: App
metadata: {name: fuzz-broken
spec: [
`;

export async function startFuzzTarget(): Promise<FuzzTarget> {
  const dir = tempDir('berth-fuzz-');
  const appsDir = path.join(dir, 'apps');
  fs.mkdirSync(appsDir);
  fs.writeFileSync(path.join(appsDir, 'good.yaml'), GOOD_FILE);
  fs.writeFileSync(path.join(appsDir, 'broken.yaml'), BROKEN_FILE);

  const store = await Store.open(path.join(dir, 'berth.sqlite'));
  const logged: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) });
  const shutdown = new AbortController();
  const folder = new FolderSource({ dir: appsDir, store, resyncIntervalMs: 0, registry: new Registry() });
  const folderDone = folder.start(shutdown.signal);
  const deps: ApiDeps = {
    store,
    logger,
    token: FUZZ_TOKEN,
    listenHost: '127.0.0.1',
    allowedHosts: [ALLOWED_HOST],
    readiness: [
      {
        name: 'store',
        check: async () => {
          await store.ping();
          return { ready: true };
        },
      },
    ],
    runtimes: new Runtimes([new MemoryExecutor({ runtime: RuntimeName.docker })], RuntimeName.docker),
    metrics: new Registry(),
    appsDir,
    folder,
    shutdown: shutdown.signal,
    limits: { pending: { total: 200, perApp: 50 } },
  };
  const server = http.createServer(createApi(deps).callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const good = `Bearer ${FUZZ_TOKEN}`;

  const get = async (p: string): Promise<unknown> => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { headers: { authorization: good } });
    if (!res.ok) throw new Error(`GET ${p} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  await waitFor('the apps folder to be synced', async () => ((await get('/sources/')) as { ready: boolean }).ready);
  const app = await fetch(`http://127.0.0.1:${port}/apps/`, {
    method: 'POST',
    headers: { authorization: good, 'content-type': 'application/json' },
    body: JSON.stringify({ name: KNOWN.apiApp, image: TEST_IMAGE, command: 'echo hi', envs: { A: 'b' } }),
  });
  if (app.status !== 201) throw new Error(`creating ${KNOWN.apiApp} answered ${app.status}`);
  const run = await fetch(`http://127.0.0.1:${port}/apps/${KNOWN.apiApp}/run/`, {
    method: 'POST',
    headers: { authorization: good, 'content-type': 'application/json' },
    body: JSON.stringify({ name: KNOWN.run }),
  });
  if (run.status !== 202) throw new Error(`asking for ${KNOWN.run} answered ${run.status}`);

  return {
    port,
    store,
    send: (request) => send(port, request),
    snapshot: async () =>
      JSON.stringify({
        apps: await get('/apps/?limit=1000'),
        runs: await get('/runs/?limit=1000'),
        sources: withoutTimes(await get('/sources/')),
      }),
    healthy: async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200,
    errors: () => logged,
    close: async () => {
      shutdown.abort();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await folderDone;
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The folder's report without its clocks: when a file was last read is not something a request changes. */
function withoutTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimes);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !key.endsWith('At'))
      .map(([key, v]) => [key, withoutTimes(v)]),
  );
}

/** An answer not begun within this long is a hang, which the fuzzer reports like a 5xx. */
const ANSWER_DEADLINE_MS = 10_000;

function send(port: number, request: RawRequest): Promise<RawAnswer> {
  const framing: string[] = request.chunked
    ? ['Transfer-Encoding: chunked']
    : request.body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(request.method)
      ? [`Content-Length: ${request.body.length}`]
      : [];
  const head = [
    `${request.method} ${request.target} HTTP/1.1`,
    ...request.headers.map(([name, value]) => `${name}: ${value}`),
    ...framing,
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  const body = request.chunked
    ? Buffer.concat([
        ...(request.body.length ? [Buffer.from(`${request.body.length.toString(16)}\r\n`), request.body, Buffer.from('\r\n')] : []),
        Buffer.from('0\r\n\r\n'),
      ])
    : request.body;

  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (error && !match) return reject(error);
      if (!match) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
      resolve({ status: Number(match[1]), head: end >= 0 ? text.slice(0, end) : text, body: end >= 0 ? text.slice(end + 4) : '' });
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${ANSWER_DEADLINE_MS} ms`)), ANSWER_DEADLINE_MS);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      // A stream (events, followed logs) never ends by itself: its head says all the fuzzer needs.
      if (end >= 0 && /^content-type: text\/event-stream/im.test(text.slice(0, end))) finish();
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    socket.on('error', (err) => finish(err));
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}
