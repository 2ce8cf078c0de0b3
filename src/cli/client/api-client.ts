import { BERTH_VERSION } from '../../api/version';
import type { Connection } from './connection';
import { CliError, ExitCode } from './exit';

/** A request that has not answered in this long is given up, naming the server. Streams wait only this long for their headers. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Items asked for per page when listing; the server answers at most 1000. */
const PAGE_SIZE = 500;

type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** An error answer in berth's shape. */
interface ErrorBody {
  error?: string;
  message?: string;
  details?: { field: string; reason: string }[];
}

/**
 * The one way the CLI talks to berth: the public HTTP API, nothing else.
 * Every failure becomes a CliError with one line a person can act on and an
 * exit code a script can test (./exit.ts).
 */
export class ApiClient {
  constructor(readonly connection: Connection) {}

  get server(): string {
    return this.connection.server;
  }

  /** A JSON request; an error answer throws. */
  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<Answer<T>> {
    const { response, done } = await this.send(method, path, options);
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      throw this.transportError(err);
    } finally {
      done();
    }
    if (!response.ok) throw this.answerError(response, text);
    if (!(response.headers.get('content-type') ?? '').includes('json') || text === '') {
      return { status: response.status, headers: response.headers, body: text as T };
    }
    try {
      return { status: response.status, headers: response.headers, body: JSON.parse(text) as T };
    } catch {
      throw new CliError(`${this.server} answered ${method} ${path} with malformed JSON; is this a berth server?`);
    }
  }

  /** GET of one object, or undefined when the server says 404. */
  async find<T>(path: string, query?: Query): Promise<T | undefined> {
    try {
      return (await this.request<T>('GET', path, { query })).body;
    } catch (err) {
      if (err instanceof NotFoundAnswer) return undefined;
      throw err;
    }
  }

  /**
   * Every item of a paginated list, page by page (`?limit=&offset=`), until
   * `X-Total-Count` items have come or a page comes back short: the server
   * answers 100 items when not asked, so one answer is never assumed to be all.
   */
  async list<T>(path: string, query: Query = {}, max = Infinity): Promise<T[]> {
    const items: T[] = [];
    for (;;) {
      const limit = Math.min(PAGE_SIZE, max - items.length);
      const { body, headers } = await this.request<T[]>('GET', path, { query: { ...query, limit, offset: items.length } });
      if (!Array.isArray(body)) throw new CliError(`${this.server}${path} did not answer a list; is this a berth server?`);
      items.push(...body);
      const total = Number(headers.get('x-total-count'));
      const more = Number.isFinite(total) && headers.has('x-total-count') ? items.length < total : body.length === limit;
      if (!more || body.length === 0 || items.length >= max) return items;
    }
  }

  /** A streaming GET (logs, events): the response once its headers are in; an error answer throws. */
  async stream(path: string, query: Query = {}, signal?: AbortSignal): Promise<Response> {
    const { response, done } = await this.send('GET', path, { query }, signal);
    done();
    if (!response.ok) throw this.answerError(response, await response.text().catch(() => ''));
    return response;
  }

  url(path: string, query: Query = {}): string {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== false) url.searchParams.set(key, value === true ? '1' : String(value));
    }
    return url.toString();
  }

  private async send(method: string, path: string, options: RequestOptions, signal?: AbortSignal): Promise<{ response: Response; done: () => void }> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), REQUEST_TIMEOUT_MS);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': `berth/${BERTH_VERSION}`, ...options.headers };
    if (this.connection.token) headers.authorization = `Bearer ${this.connection.token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    try {
      const response = await fetch(this.url(path, options.query), {
        method,
        headers,
        body,
        signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal,
      });
      return { response, done: () => clearTimeout(timer) };
    } catch (err) {
      clearTimeout(timer);
      if (signal?.aborted) throw err;
      throw this.transportError(timeout.signal.aborted ? new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`) : err);
    }
  }

  private answerError(response: Response, text: string): CliError {
    let body: ErrorBody = {};
    try {
      body = JSON.parse(text) as ErrorBody;
    } catch {
      // Not berth's JSON (a proxy's page, another program on the port): the status says enough.
    }
    const message = body.message ?? `${response.status} ${response.statusText} from ${response.url}`;
    if (response.status === 401) {
      const hint = this.connection.token ? 'the token was refused' : 'it needs a token: give --token, BERTH_TOKEN or a context with one';
      return new CliError(`${this.server}: unauthorized: ${hint}`, ExitCode.Unauthorized);
    }
    if (response.status === 403) return new CliError(`${this.server}: forbidden: ${message}`, ExitCode.Unauthorized);
    if (response.status === 404) return new NotFoundAnswer(message);
    const retry = response.headers.get('retry-after');
    return new CliError(retry ? `${message} (retry after ${retry} s)` : message);
  }

  private transportError(err: unknown): CliError {
    return new CliError(`cannot reach ${this.server}: ${transportReason(err)}`, ExitCode.Unreachable);
  }
}

/** The server's 404, kept apart so `find` can tell "not there" from a failure. */
export class NotFoundAnswer extends CliError {}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its certificate is self-signed',
  CERT_HAS_EXPIRED: 'its certificate has expired',
};

/** fetch says "fetch failed" and hides the reason in `cause` (sometimes an AggregateError of one per address). */
function transportReason(err: unknown): string {
  let cause = (err as { cause?: unknown }).cause ?? err;
  if (cause instanceof AggregateError && cause.errors.length) cause = cause.errors[0];
  const code = (cause as { code?: string }).code;
  if (code && REASONS[code]) return REASONS[code];
  return (cause as Error).message ?? String(cause);
}
