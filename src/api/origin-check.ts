import type { Context, Next } from 'koa';
import { ForbiddenError } from '../errors';

/**
 * Refuses a request carrying another site's `Origin`, on every method (403).
 * Browsers send Origin with every cross-origin request and every write, and
 * can send some writes (a form, `text/plain`, a body-less POST of
 * `…/run/`) to any address without asking first: answering only requests
 * whose Origin is this server itself keeps other web pages from starting or
 * cancelling runs. Clients that are not browsers send no Origin and are
 * unaffected; `Origin: null` (a sandboxed frame, a file) is another site.
 * The scheme is not compared: behind a TLS-terminating proxy berth sees http.
 */
export function originCheck() {
  return async function checkOrigin(ctx: Context, next: Next): Promise<void> {
    const origin = ctx.get('origin');
    if (origin === '') return next();
    if (!sameOrigin(origin, ctx.get('host'))) {
      throw new ForbiddenError(
        `cross-origin request refused: Origin "${origin}" is not this server (${ctx.get('host') || 'no Host'}); ` +
          'berth answers browsers only from its own pages',
        [{ field: 'Origin', reason: 'is another site' }],
      );
    }
    return next();
  };
}

function sameOrigin(origin: string, host: string): boolean {
  if (origin === 'null' || host === '') return false;
  try {
    const from = new URL(origin);
    // Read the Host with the Origin's scheme, so both leave out the same default port.
    return from.host === new URL(`${from.protocol}//${host}`).host;
  } catch {
    return false;
  }
}
