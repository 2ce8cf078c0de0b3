import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import { NotFoundError } from '../errors';
import { bearerAuth } from './auth';
import { bodyMiddleware } from './body';
import { contentTypeCheck } from './content-type';
import type { ApiDeps } from './deps';
import { errorMiddleware, MethodNotAllowedForPath } from './errors';
import { hostCheck } from './host-check';
import { originCheck } from './origin-check';
import { requestLog } from './request-log';
import { appsRoutes } from './routes/apps';
import { eventsRoutes } from './routes/events';
import { healthRoutes } from './routes/health';
import { logsRoutes } from './routes/logs';
import { metricsRoutes } from './routes/metrics';
import { notificationsRoutes } from './routes/notifications';
import { openApiRoutes } from './routes/openapi';
import { runsRoutes } from './routes/runs';
import { sourcesRoutes } from './routes/sources';
import { webPage } from '../ui/web-page';

/** The route modules, each `(deps) => Router`; their paths are served with and without a trailing slash. */
const ROUTES = [healthRoutes, appsRoutes, runsRoutes, notificationsRoutes, logsRoutes, eventsRoutes, sourcesRoutes, metricsRoutes, openApiRoutes];

/**
 * berth's HTTP API as a koa application. Middleware, outermost first:
 * request log → error answers → Host → Origin → the web page (`/`, `/ui/`:
 * no token, the page asks for it) → bearer auth (with a token) → content
 * type → JSON/YAML body → routes. Every error, including 404 and
 * 405, is answered as `{error, message, details}`.
 */
export function createApi(deps: ApiDeps): Koa {
  const app = new Koa();
  // Errors are logged once, by errorMiddleware; koa's own printing would repeat them.
  app.silent = true;

  const root = new Router();
  for (const routes of ROUTES) root.use(routes(deps).routes());

  app.use(requestLog(deps.logger));
  app.use(errorMiddleware(deps.logger));
  app.use(hostCheck({ listenHost: deps.listenHost, allowedHosts: deps.allowedHosts }));
  app.use(originCheck());
  app.use(webPage());
  if (deps.token) app.use(bearerAuth(deps.token));
  app.use(contentTypeCheck());
  app.use(bodyMiddleware());
  app.use(unmatchedAsErrors);
  app.use(root.routes());
  app.use(root.allowedMethods());
  return app;
}

/**
 * The router answers an unknown path with a bare 404 and a known path asked
 * with the wrong method with a bare 405 and `Allow`; both become JSON errors
 * here. A method no route serves at all (`PROPFIND`) gets a bare 501 from
 * the router, with an empty `Allow` when no route has the path either: that
 * is the 404 of an unknown path, not a fault of the server.
 */
async function unmatchedAsErrors(ctx: Context, next: Next): Promise<void> {
  await next();
  if ((ctx.status === 405 || ctx.status === 501) && ctx.response.get('Allow')) {
    const allow = ctx.response.get('Allow').split(/,\s*/);
    throw new MethodNotAllowedForPath(ctx.method, ctx.path, allow);
  }
  if ((ctx.status === 404 && ctx.body == null) || ctx.status === 501) throw new NotFoundError('path', ctx.path);
}
