import Router from '@koa/router';
import type { ApiDeps } from '../deps';
import { openApiDocument } from '../openapi-document';
import { BERTH_VERSION } from '../version';

/** `GET /openapi.json`: the API described in OpenAPI 3.1. */
export function openApiRoutes(_deps: ApiDeps): Router {
  const router = new Router();
  // Built once: the document does not change while the server runs.
  const document = JSON.stringify(openApiDocument(BERTH_VERSION));
  router.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = document;
  });
  return router;
}
