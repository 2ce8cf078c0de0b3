import Router from '@koa/router';
import type { Context } from 'koa';
import { ConflictError, ValidationError } from '../../errors';
import { admitApp, DEFAULT_CONTAINMENT } from '../../model/containment';
import { API_VERSION } from '../../model/types';
import { appFromBody, AppInput, isManifest, mergePatch } from '../../model/validate';
import { checkPrecondition, sameJson } from '../../store/rows';
import type { Precondition, StoredApp } from '../../store/store';
import { requestBody } from '../body';
import type { ApiDeps } from '../deps';
import { listProjection } from '../fields';
import { assertApiOwned, etag, precondition } from '../ownership';
import { appPath, presentAppJson, presentAppsJson } from '../present';
import { flag, labelSelector, pagination, setTotal } from '../query';

/**
 * `/apps/` and `/apps/{id}/`: create, list, read, replace, patch and delete
 * Apps. `{id}` is the numeric id or the name. Apps declared by files in the
 * apps folder are read-only here (409 naming the file). Writes take
 * `?dryRun=1`: every check a real write makes (validation, containment, name,
 * ownership, resourceVersion), and the App as it would be, with nothing
 * written; `berth apply` and `berth diff` compare with it.
 */
export function appsRoutes(deps: ApiDeps): Router {
  const { store } = deps;
  const router = new Router();

  router.post('/apps', async (ctx) => {
    const input = appFromBody(requestBody(ctx));
    admit(deps, input);
    if (flag(ctx, 'dryRun')) {
      if (await store.getApp(input.name)) throw new ConflictError(`app "${input.name}" already exists`);
      ctx.body = { apiVersion: API_VERSION, kind: 'App', metadata: { name: input.name, labels: input.labels }, spec: input.spec, status: { source: 'api' } };
      return;
    }
    const app = await store.createApp({ name: input.name, labels: input.labels, spec: input.spec, source: 'api' });
    ctx.status = 201;
    ctx.set('Location', appPath(app));
    answer(ctx, app);
  });

  router.get('/apps', async (ctx) => {
    const page = pagination(ctx);
    const project = listProjection(ctx, 'App');
    const { items, total } = await store.listApps({ ...page, labels: labelSelector(ctx) });
    setTotal(ctx, total);
    ctx.type = 'application/json';
    ctx.body = presentAppsJson(items, project);
  });

  router.get('/apps/:app', async (ctx) => {
    // Frozen and shared (on SQLite, from memory while unchanged), and so is the JSON made of it.
    answer(ctx, await store.mustReadApp(ctx.params.app));
  });

  // PUT: the seed's partial body (fields not given keep their values) or a whole manifest.
  router.put('/apps/:app', async (ctx) => {
    const body = requestBody(ctx);
    const app = await rewrite(ctx, deps, (current) => appFromBody(body, current));
    answer(ctx, app);
  });

  // PATCH: a JSON merge patch (RFC 7386) of the manifest form, or seed fields that replace their values.
  router.patch('/apps/:app', async (ctx) => {
    const body = requestBody(ctx);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw ValidationError.forField('(body)', 'must be a JSON object: a merge patch of the App');
    }
    const app = await rewrite(ctx, deps, (current) => (isManifest(body) ? appFromBody(mergePatch(manifestOf(current), body)) : appFromBody(body, current)));
    answer(ctx, app);
  });

  router.delete('/apps/:app', async (ctx) => {
    const app = await store.mustGetApp(ctx.params.app);
    assertApiOwned(app, deps.appsDir);
    await store.deleteApp(app.id, precondition(ctx));
    ctx.status = 204;
  });

  return router;
}

function answer(ctx: Context, app: StoredApp): void {
  ctx.set('ETag', etag(app.metadata.resourceVersion));
  ctx.type = 'application/json';
  ctx.body = presentAppJson(app);
}

/**
 * Read, change, write. When the client gave a resourceVersion, a stale one
 * is its 409 to handle; when it gave none, a concurrent write is retried here
 * on fresh state, so a partial update never overwrites a change it did not see.
 */
async function rewrite(ctx: Context, deps: ApiDeps, change: (current: StoredApp) => AppInput): Promise<StoredApp> {
  for (let attempt = 0; ; attempt++) {
    const current = await deps.store.mustGetApp(ctx.params.app);
    assertApiOwned(current, deps.appsDir);
    const input = change(current);
    if (input.name !== current.metadata.name) {
      const field = 'metadata.name';
      throw ValidationError.forField(field, `cannot be changed (the App is "${current.metadata.name}"); create a new App instead`);
    }
    admit(deps, input);
    const requested: Precondition = precondition(ctx, input.resourceVersion);
    const pre = requested.resourceVersion ?? current.metadata.resourceVersion;
    if (flag(ctx, 'dryRun')) return preview(current, input, pre);
    try {
      return await deps.store.updateApp(current.id, { labels: input.labels, spec: input.spec }, { resourceVersion: pre });
    } catch (err) {
      if (!(err instanceof ConflictError) || requested.resourceVersion !== undefined || attempt >= 5) throw err;
    }
  }
}

/** The App as a write would leave it, for `?dryRun=1`: the checks the store makes on a write, and nothing written. */
function preview(current: StoredApp, input: AppInput, resourceVersion: string): StoredApp {
  checkPrecondition('app', current.metadata.name, current.metadata.resourceVersion, { resourceVersion });
  const generation = current.metadata.generation + (sameJson(input.spec, current.spec) ? 0 : 1);
  return { ...current, metadata: { ...current.metadata, labels: input.labels, generation }, spec: input.spec };
}

/** What the server's containment policy refuses in the App is a 422 naming the field, before anything is written. */
function admit(deps: ApiDeps, input: AppInput): void {
  admitApp(input.spec, { containment: deps.containment ?? DEFAULT_CONTAINMENT, defaultRuntime: deps.runtimes.defaultRuntime });
}

/** The writable part of an App in manifest form: what a merge patch applies to. */
function manifestOf(app: StoredApp): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    kind: 'App',
    metadata: { name: app.metadata.name, labels: app.metadata.labels },
    spec: app.spec,
  };
}
