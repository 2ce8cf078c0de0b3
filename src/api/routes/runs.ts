import Router from '@koa/router';
import type { Context } from 'koa';
import { ConflictError, ValidationError } from '../../errors';
import { requestCancel } from '../../controller/phases';
import { requestRun } from '../../controller/run-requests';
import { isTerminal, RunReason, type RunStatus } from '../../model/types';
import { validateRunRequest } from '../../model/validate';
import type { StoredApp, StoredRun } from '../../store/store';
import { requestBody } from '../body';
import { API_LIMITS, type ApiDeps } from '../deps';
import { listProjection } from '../fields';
import { presentRun, runPath } from '../present';
import { pagination, phases, setTotal, single } from '../query';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Run requests and run history: `/apps/{id}/run/…` and `/runs/…`. Asking for
 * a run only records a Pending Run; the controller carries it out.
 */
export function runsRoutes(deps: ApiDeps): Router {
  const { store } = deps;
  const pendingLimits = deps.limits?.pending ?? API_LIMITS.pending;
  const router = new Router();

  router.post('/apps/:app/run', async (ctx) => {
    const app = await store.mustGetApp(ctx.params.app);
    const request = validateRunRequest(requestBody(ctx));
    const { run, created } = await requestRun(store, app, {
      name: request.name,
      overrides: request.overrides,
      idempotencyKey: idempotencyKey(ctx),
      pendingLimits,
    });
    // 202: accepted, not done. A replayed Idempotency-Key gets the run it made before, with 200.
    ctx.status = created ? 202 : 200;
    ctx.set('Location', runPath(run));
    ctx.body = presentRun(run);
  });

  router.get('/apps/:app/run', async (ctx) => {
    const app = await store.mustGetApp(ctx.params.app);
    await listRuns(ctx, deps, app);
  });

  router.get('/apps/:app/run/:run', async (ctx) => {
    ctx.body = presentRun(await runOfApp(deps, ctx.params.app, ctx.params.run));
  });

  router.post('/apps/:app/run/:run/cancel', async (ctx) => {
    const run = await runOfApp(deps, ctx.params.app, ctx.params.run);
    const cancelled = await store.mutateRunStatus(run.id, cancelThroughApi);
    ctx.status = 202;
    ctx.body = presentRun(cancelled);
  });

  router.get('/runs', async (ctx) => {
    const appRef = single(ctx, 'app');
    const app = appRef ? await store.mustGetApp(appRef) : undefined;
    await listRuns(ctx, deps, app);
  });

  router.get('/runs/:run', async (ctx) => {
    ctx.body = presentRun(await store.mustGetRun(ctx.params.run));
  });

  return router;
}

/** A run addressed under its App: `/apps/{app}/run/{run}/`. A run of another App is not found here. */
export async function runOfApp(deps: ApiDeps, appRef: string, runRef: string): Promise<StoredRun> {
  const app = await deps.store.mustGetApp(appRef);
  return deps.store.mustGetRun(runRef, app.id);
}

async function listRuns(ctx: Context, deps: ApiDeps, app?: StoredApp): Promise<void> {
  const page = pagination(ctx);
  const project = listProjection(ctx, 'Run');
  const { items, total } = await deps.store.listRuns({ ...page, appId: app?.id, phases: phases(ctx) });
  setTotal(ctx, total);
  ctx.body = project ? items.map((run) => project(presentRun(run))) : items.map(presentRun);
}

/**
 * Marks a run for cancellation; the controller stops its workload and moves
 * it to Cancelled. Asking twice is harmless; a finished run cannot be cancelled.
 */
function cancelThroughApi(run: StoredRun): RunStatus {
  if (isTerminal(run.status.phase)) {
    throw new ConflictError(`run "${run.metadata.name}" is already ${run.status.phase}; only Pending or Running runs can be cancelled`);
  }
  return requestCancel(run.status, RunReason.Cancelled, 'cancelled through the API');
}

function idempotencyKey(ctx: Context): string | undefined {
  const key = ctx.get('idempotency-key');
  if (key === '') return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) {
    throw ValidationError.forField('Idempotency-Key', 'must be 1 to 255 visible ASCII characters');
  }
  return key;
}
