import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { UnauthorizedError } from '../errors';

/** Paths answered without a token: the liveness probe says nothing about the data. */
const PUBLIC_PATHS = new Set(['/healthz', '/healthz/']);

/**
 * Requires `Authorization: Bearer <token>` on every path but /healthz.
 * Tokens are compared through their SHA-256 digests with timingSafeEqual,
 * so neither the token's content nor its length leaks through timing.
 */
export function bearerAuth(token: string) {
  const expected = digest(token);
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    if (PUBLIC_PATHS.has(ctx.path)) return next();
    const header = ctx.get('authorization');
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!match) {
      ctx.set('WWW-Authenticate', 'Bearer realm="berth"');
      throw new UnauthorizedError('missing bearer token: send "Authorization: Bearer <token>"');
    }
    if (!timingSafeEqual(digest(match[1]), expected)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="berth", error="invalid_token"');
      throw new UnauthorizedError('invalid bearer token');
    }
    return next();
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
