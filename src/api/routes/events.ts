import Router from '@koa/router';
import { PassThrough } from 'node:stream';
import { ValidationError } from '../../errors';
import type { StoreEvent } from '../../store/store';
import { API_LIMITS, type ApiDeps, type SyncReport } from '../deps';
import { presentApp, presentRun } from '../present';
import { single } from '../query';
import { StreamSlots } from '../stream-slots';

/** A comment line this often keeps proxies and load balancers from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;
/** A client that falls this far behind is disconnected rather than buffered for without bound. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const KINDS = ['App', 'Run', 'Source'];

/**
 * `GET /events/`: Server-Sent Events of store changes, so clients watch
 * instead of polling. Each event is `event: ADDED|MODIFIED|DELETED` with the
 * object as the API answers it in `data:`; and the folder's sync of each file
 * as `event: SYNC` with the file's report (kind `Source`). Filters:
 * `?kind=App|Run|Source`, `?app=name` (a file's sync passes when it declares that App).
 */
export function eventsRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const slots = new StreamSlots('event streams', deps.limits?.eventStreams ?? API_LIMITS.eventStreams, '--max-event-streams');

  router.get('/events', (ctx) => {
    const kind = single(ctx, 'kind');
    if (kind !== undefined && !KINDS.includes(kind)) throw ValidationError.forField('kind', 'must be App, Run or Source');
    const app = single(ctx, 'app');
    const release = slots.take();
    const wanted = (event: StoreEvent): boolean =>
      (kind === undefined || event.kind === kind) && (app === undefined || (event.kind === 'App' ? event.object.metadata.name : event.object.spec.app) === app);

    const out = new PassThrough();
    const send = (text: string): void => {
      if (out.writableLength > MAX_BUFFERED_BYTES) out.destroy();
      else out.write(text);
    };
    const onChange = (event: StoreEvent): void => {
      if (!wanted(event)) return;
      const object = event.kind === 'App' ? presentApp(event.object) : presentRun(event.object);
      send(`event: ${event.type}\ndata: ${JSON.stringify(object)}\n\n`);
    };
    const onSync = (report: SyncReport): void => {
      if (kind !== undefined && kind !== 'Source') return;
      if (app !== undefined && !report.objects.some((o) => o.kind === 'App' && o.name === app)) return;
      send(`event: SYNC\ndata: ${JSON.stringify({ kind: 'Source', ...report })}\n\n`);
    };
    const heartbeat = setInterval(() => send(': heartbeat\n\n'), HEARTBEAT_MS);
    const stop = (): void => {
      release();
      clearInterval(heartbeat);
      deps.store.off('change', onChange);
      deps.folder?.off('sync', onSync);
      deps.shutdown?.removeEventListener('abort', end);
    };
    const end = (): void => {
      out.end();
    };
    deps.store.on('change', onChange);
    deps.folder?.on('sync', onSync);
    deps.shutdown?.addEventListener('abort', end, { once: true });
    // koa destroys the body stream when the client goes away; both paths release the listener.
    out.once('close', stop);
    ctx.res.once('close', stop);

    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.type = 'text/event-stream';
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('X-Accel-Buffering', 'no');
    // The first bytes make the headers go out now, so the client knows it is subscribed.
    out.write('retry: 3000\n\n');
    ctx.body = out;
  });

  return router;
}
