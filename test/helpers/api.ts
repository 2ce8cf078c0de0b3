import http from 'node:http';
import { Runtimes } from '../../src/executors/runtimes';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createApi } from '../../src/api/app';
import type { ApiDeps } from '../../src/api/deps';
import { createLogger } from '../../src/log';
import type { Store } from '../../src/store/store';
import { tempSqliteStore } from './fixtures';

export interface TestApi {
  url: string;
  store: Store;
  deps: ApiDeps;
  /** Sends a request; a non-string `body` goes as JSON. */
  call(method: string, path: string, options?: CallOptions): Promise<Answer>;
  close(): Promise<void>;
}

export interface CallOptions {
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer is JSON, else the text. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

/**
 * berth's API on a real koa server on an ephemeral port, over a fresh SQLite
 * file. `overrides` replace parts of the dependencies (a token, a folder
 * source, readiness checks, executors).
 */
export async function startTestApi(overrides: Partial<ApiDeps> = {}): Promise<TestApi> {
  const { store } = await tempSqliteStore();
  const shutdown = new AbortController();
  const deps: ApiDeps = {
    store,
    logger: createLogger('silent'),
    readiness: [
      {
        name: 'store',
        check: async () => {
          await store.ping();
          return { ready: true };
        },
      },
    ],
    runtimes: new Runtimes([], 'docker'),
    metrics: new Registry(),
    appsDir: 'apps',
    shutdown: shutdown.signal,
    ...overrides,
  };
  const server = http.createServer(createApi(deps).callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const authorization: Record<string, string> = deps.token ? { authorization: `Bearer ${deps.token}` } : {};
  return {
    url,
    store,
    deps,
    call: async (method, path, options = {}) => {
      const headers: Record<string, string> = { ...authorization, ...(options.headers ?? {}) };
      let body: string | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      }
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      const isJson = (res.headers.get('content-type') ?? '').includes('json');
      return { status: res.status, headers: res.headers, body: isJson && text ? JSON.parse(text) : text, text };
    },
    close: async () => {
      shutdown.abort();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await store.close();
    },
  };
}
