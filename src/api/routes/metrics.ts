import Router from '@koa/router';
import type { ApiDeps } from '../deps';

/** `GET /metrics`: the registry's metrics in Prometheus text format. */
export function metricsRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.contentType;
    ctx.body = await deps.metrics.metrics();
  });
  return router;
}
