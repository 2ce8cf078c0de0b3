import Router from '@koa/router';
import { BerthError } from '../../errors';
import type { ApiDeps } from '../deps';

/** `/sources/` asked of a server that watches no folder. */
export class NoFolderSourceError extends BerthError {
  readonly status = 404;
  readonly code = 'NotFound';
  constructor() {
    super('no apps folder is being watched: start berth with --apps-dir pointing at a folder of App files');
  }
}

/** `GET /sources/`: the folder source's sync status, file by file. */
export function sourcesRoutes(deps: ApiDeps): Router {
  const router = new Router();
  router.get('/sources', (ctx) => {
    if (!deps.folder) throw new NoFolderSourceError();
    ctx.body = deps.folder.report();
  });
  return router;
}
