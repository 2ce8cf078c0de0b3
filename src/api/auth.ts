import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { UnauthorizedError } from '../errors';

/**
 * Paths answered without a token, so Kubernetes' probes (which cannot send
 * a Secret's value) work with auth on. They say nothing about the data, and
 * /readyz gives its reasons only to a caller with the token (see health.ts).
 */
const PUBLIC_PATHS = new Set(['/healthz', '/healthz/', '/readyz', '/readyz/']);

/**
 * Requires `Authorization: Bearer <token>` on every path but the probes'.
 * `ctx.state.authenticated` says whether the caller showed the token.
 * Tokens are compared through their SHA-256 digests with timingSafeEqual,
 * so neither the token's content nor its length leaks through timing.
 */
export function bearerAuth(token: string) {
  const expected = digest(token);
  return async function authenticate(ctx: Context, next: Next): Promise<void> {
    const header = ctx.get('authorization');
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (PUBLIC_PATHS.has(ctx.path)) {
      ctx.state.authenticated = !!match && timingSafeEqual(digest(match[1]), expected);
      return next();
    }
    if (!match) {
      ctx.set('WWW-Authenticate', 'Bearer realm="berth"');
      throw new UnauthorizedError('missing bearer token: send "Authorization: Bearer <token>"');
    }
    if (!timingSafeEqual(digest(match[1]), expected)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="berth", error="invalid_token"');
      throw new UnauthorizedError('invalid bearer token');
    }
    ctx.state.authenticated = true;
    return next();
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
