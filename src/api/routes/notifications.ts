import Router from '@koa/router';
import type { NotificationRecord } from '../../store/notifications';
import type { ApiDeps } from '../deps';
import { pagination, setTotal } from '../query';

/**
 * `GET /apps/{id}/notifications/`: the App's webhook notifications, newest
 * first, paged like the other lists, each with every delivery attempt.
 */
export function notificationsRoutes(deps: ApiDeps): Router {
  const { store } = deps;
  const router = new Router();
  router.get('/apps/:app/notifications', async (ctx) => {
    const app = await store.mustGetApp(ctx.params.app);
    const { items, total } = await store.notifications.list(app.id, pagination(ctx));
    setTotal(ctx, total);
    ctx.body = items.map((record) => presentNotification(app.metadata.name, record));
  });
  return router;
}

function presentNotification(app: string, record: NotificationRecord) {
  return {
    id: record.id,
    app,
    event: record.event,
    ...(record.runName ? { run: record.runName } : {}),
    webhook: record.webhook,
    url: record.url,
    state: record.state,
    attempts: record.attempts,
    ...(record.nextAttemptAt ? { nextAttemptAt: record.nextAttemptAt } : {}),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    payload: JSON.parse(record.payload) as unknown,
  };
}
