import type { Context, Next } from 'koa';
import { MethodNotAllowedForPath } from '../api/errors';
import { BerthError, NotFoundError } from '../errors';
import { type Asset, loadAssets } from './assets';

/** Where the page is served. */
export const UI_PATH = '/ui/';
const ASSETS_PATH = `${UI_PATH}assets/`;
/** Redirects name the page relative to where they were asked, so they also work behind a proxy's path prefix. */
const RELATIVE_UI = 'ui/';

/** The page's files never run another site's code, nor load from anywhere but berth. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The page was not built into the package (only `tsc` ran): the API works, the page says how to build it. */
export class WebPageNotBuiltError extends BerthError {
  readonly status = 503;
  readonly code = 'NotBuilt';
}

/**
 * Serves the web page at `/ui/` and redirects `/` there. The page and its
 * assets need no token: they hold no data, and the page asks for the token
 * itself before it reads the API, which stays protected. Mounted before
 * bearer auth (see src/api/app.ts).
 *
 * Caching: `index.html` is revalidated on every visit (`no-cache` with an
 * ETag), so a new berth is picked up at once; it names each asset with
 * `?v=<digest>`, and an asset asked for by its current digest is cached for
 * a year (`immutable`). Gzip when the browser takes it.
 */
export function webPage(options: { assetsDir?: string } = {}) {
  const assets = loadAssets(options.assetsDir);

  return async function serveWebPage(ctx: Context, next: Next): Promise<void> {
    if (ctx.path === '/') {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
      return ctx.redirect(RELATIVE_UI);
    }
    if (ctx.path !== '/ui' && !ctx.path.startsWith(UI_PATH)) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') throw new MethodNotAllowedForPath(ctx.method, ctx.path, ['GET', 'HEAD']);
    if (ctx.path === '/ui') return ctx.redirect(RELATIVE_UI);
    if (assets instanceof Error) throw new WebPageNotBuiltError(assets.message);

    if (ctx.path === UI_PATH) return send(ctx, assets.index, 'no-cache');
    const asset = ctx.path.startsWith(ASSETS_PATH) ? assets.files.get(ctx.path.slice(ASSETS_PATH.length)) : undefined;
    if (!asset) throw new NotFoundError('path', ctx.path);
    send(ctx, asset, ctx.query.v === asset.version ? 'public, max-age=31536000, immutable' : 'no-cache');
  };
}

function send(ctx: Context, asset: Asset, cacheControl: string): void {
  const gzip = asset.gzip && ctx.acceptsEncodings('gzip', 'identity') === 'gzip';
  const etag = `"${asset.version}${gzip ? '-gz' : ''}"`;
  ctx.set('Cache-Control', cacheControl);
  ctx.set('Vary', 'Accept-Encoding');
  ctx.set('ETag', etag);
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Referrer-Policy', 'no-referrer');
  if (asset.type.startsWith('text/html')) {
    ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    ctx.set('X-Frame-Options', 'DENY');
  }
  ctx.type = asset.type;
  if (
    ctx
      .get('if-none-match')
      .split(/\s*,\s*/)
      .includes(etag)
  ) {
    ctx.status = 304;
    return;
  }
  if (gzip) ctx.set('Content-Encoding', 'gzip');
  ctx.body = gzip ? asset.gzip : asset.body;
}
