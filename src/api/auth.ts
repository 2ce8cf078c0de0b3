import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { UnauthorizedError } from '../errors';

/**
 * Paths answered without a token, so Kubernetes' probes (which cannot send
 * a Secret's value) work with auth on. They say nothing about the data, and
 * /readyz gives its reasons only to a caller with the token (see health.ts).
 */
const PUBLIC_PATHS = new Set(['/healthz', '/healthz/', '/readyz', '/readyz/']);

/** Fewer characters than this can be guessed, or were typed rather than generated. */
export const MIN_TOKEN_LENGTH = 32;
/** Placeholders people leave in: a token made of only these (and separators) is refused, however long. */
const PLACEHOLDER_WORDS = [
  'changeme',
  'replaceme',
  'secret',
  'token',
  'password',
  'passwd',
  'admin',
  'default',
  'example',
  'test',
  'berth',
  'bearer',
  'api',
  'key',
  'xxx',
];

/**
 * Why `token` may not guard berth, or undefined when it may: shorter than
 * MIN_TOKEN_LENGTH, made of placeholder words (`change-me-change-me…`), or
 * of a handful of characters repeated (`aaaa…`).
 */
export function weakTokenReason(token: string): string | undefined {
  const advice = `use at least ${MIN_TOKEN_LENGTH} random characters, e.g. from "openssl rand -hex 32"`;
  if (token.length < MIN_TOKEN_LENGTH) return `is ${token.length} characters long; ${advice}`;
  let rest = token.toLowerCase().replace(/[^a-z0-9]/g, '');
  for (const word of PLACEHOLDER_WORDS) rest = rest.split(word).join('');
  if (rest.length < 16) return `looks like a placeholder, not a secret; ${advice}`;
  if (new Set(token).size < 8) return `repeats a few characters; ${advice}`;
  return undefined;
}

/**
 * Requires `Authorization: Bearer <token>` on every path but the probes'.
 * `ctx.state.authenticated` says whether the caller showed the token.
 * Tokens are compared through their SHA-256 digests with timingSafeEqual,
 * so neither the token's content nor its length leaks through timing.
 *
 * @throws Error when the token is weak (see weakTokenReason): misuse fails before anything listens.
 */
export function bearerAuth(token: string) {
  const weak = weakTokenReason(token);
  if (weak) throw new Error(`the API token ${weak}`);
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
