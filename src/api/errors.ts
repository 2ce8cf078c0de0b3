import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { BerthError, CapacityError, MethodNotAllowedError } from '../errors';
import { storeUnavailable } from '../store/store-errors';

/** The JSON shape of every error answer. */
export interface ErrorBody {
  error: string;
  message: string;
  details: { field: string; reason: string; line?: number; column?: number }[];
}

/** A route exists but was asked with a method it does not serve; `allow` goes into the `Allow` header. */
export class MethodNotAllowedForPath extends MethodNotAllowedError {
  constructor(
    method: string,
    path: string,
    readonly allow: string[],
  ) {
    super(`method ${method} is not allowed on ${path}; allowed: ${allow.join(', ')}`);
  }
}

/**
 * The one place errors become answers. BerthErrors keep their status, code,
 * message and details (src/api/body.ts translates the body parser's); anything
 * else is a 500 that is logged with its stack and answered without it.
 */
export function errorMiddleware(logger: Logger) {
  return async function answerErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
    } catch (thrown) {
      const err = toBerthError(thrown);
      if (err) {
        // A full server is expected under load, and said to the client: logging each refusal would only add load.
        if (err.status >= 500 && !(err instanceof CapacityError)) logger.warn({ err: thrown, method: ctx.method, path: ctx.path }, err.message);
        respond(ctx, err.status, errorBody(err));
        if (err instanceof MethodNotAllowedForPath) ctx.set('Allow', err.allow.join(', '));
        if (err instanceof CapacityError) ctx.set('Retry-After', String(err.retryAfterSeconds));
        return;
      }
      logger.error({ err: thrown, method: ctx.method, path: ctx.path }, 'request failed');
      respond(ctx, 500, { error: 'Internal', message: 'internal error', details: [] });
    }
  };
}

export function errorBody(err: BerthError): ErrorBody {
  return {
    error: err.code,
    message: err.message,
    details: err.details.map(({ field, reason, line, column }) => ({
      field,
      reason,
      ...(line !== undefined ? { line, column } : {}),
    })),
  };
}

function respond(ctx: Context, status: number, body: ErrorBody): void {
  // Headers a handler set before failing (a Location, a stream's type) do not describe this answer.
  for (const name of Object.keys(ctx.response.headers)) {
    if (name !== 'www-authenticate') ctx.remove(name);
  }
  ctx.status = status;
  ctx.body = body;
}

/** Maps what may be thrown to a BerthError, or undefined for a server fault. */
function toBerthError(thrown: unknown): BerthError | undefined {
  // A full disk or a restarting PostgreSQL is news for the client (retry later), not a fault of this server.
  if (!(thrown instanceof BerthError)) return storeUnavailable(thrown);
  // A ConfigError (500) is a fault of this server; a 503 (runtime unreachable) is news for the client.
  return thrown.status === 500 ? undefined : thrown;
}
