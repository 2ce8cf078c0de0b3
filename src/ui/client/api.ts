import { session } from './session';

/**
 * Where the API is: the page is served at `<base>/ui/`, the API at `<base>/`,
 * so a berth behind a path prefix works as well as one at the root.
 */
const API_BASE = new URL('..', location.href).pathname;

/** The API's largest page (`?limit=`), so long lists take few requests. */
const PAGE_SIZE = 1000;

/** An error answer of the API: its status and `{error, message, details}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
  /** @default application/json */
  accept?: string;
}

/** A path of the API, its segments escaped: `apiPath('apps', name, 'run')` → `/apps/<name>/run/`. */
export function apiPath(...segments: (string | number)[]): string {
  return `${segments.map((s) => encodeURIComponent(String(s))).join('/')}/`;
}

/**
 * One request to the API with the session's token. A 401 brings the token
 * prompt back; any answer that is not 2xx becomes an ApiError carrying the
 * server's message.
 */
export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(API_BASE + path, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    throw new ApiError(0, 'Unreachable', `cannot reach berth: ${(err as Error).message}`);
  }
  if (res.ok) return res;
  const error = await errorOf(res);
  if (res.status === 401) session.askForToken(error.message);
  throw error;
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request(path, { signal })).json() as Promise<T>;
}

export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  return (await request(path, { method: 'POST', body })).json() as Promise<T>;
}

/** One page of a list and the size of the whole list (`X-Total-Count`). */
export async function getPage<T>(path: string, query: Record<string, string | number>, signal?: AbortSignal) {
  const search = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  const res = await request(`${path}?${search}`, { signal });
  const items = (await res.json()) as T[];
  const total = Number(res.headers.get('x-total-count') ?? items.length);
  return { items, total };
}

/** Every item of a list, page by page (the API answers 100 unless asked for up to 1,000). */
export async function getAll<T>(path: string, signal?: AbortSignal): Promise<T[]> {
  const all: T[] = [];
  for (;;) {
    const { items, total } = await getPage<T>(path, { limit: PAGE_SIZE, offset: all.length }, signal);
    all.push(...items);
    if (items.length === 0 || all.length >= total) return all;
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  const retryAfter = Number(res.headers.get('retry-after')) || undefined;
  let code = `HTTP ${res.status}`;
  let message = res.statusText || code;
  try {
    const body = (await res.json()) as { error?: string; message?: string };
    if (body.error) code = body.error;
    if (body.message) message = body.message;
  } catch {
    // Not berth's JSON (a proxy's page): the status says enough.
  }
  return new ApiError(res.status, code, message, retryAfter);
}

/**
 * Reads a streaming answer's body as text, chunk by chunk, until it ends or
 * `signal` aborts (then it stops quietly). Multi-byte characters split
 * across chunks are decoded whole.
 */
export async function readText(body: ReadableStream<Uint8Array>, signal: AbortSignal, onText: (text: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const cancel = (): void => void reader.cancel().catch(() => undefined);
  signal.addEventListener('abort', cancel, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      if (text) onText(text);
    }
    const rest = decoder.decode();
    if (rest) onText(rest);
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
