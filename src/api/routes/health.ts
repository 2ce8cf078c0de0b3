import Router from '@koa/router';
import type { ApiDeps, ReadinessCheck } from '../deps';

/** A check that has not answered in this long counts as failing. */
const CHECK_TIMEOUT_MS = 3000;

interface CheckResult {
  name: string;
  ready: boolean;
  reason?: string;
}

/**
 * `/healthz`: the process is up and serving (liveness; no token needed).
 * `/readyz`: every readiness check passes (the store answers, and whatever
 * else the server registered); 503 names each failing check and why.
 */
export function healthRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    const checks = await Promise.all(deps.readiness.map(runCheck));
    const failing = checks.filter((c) => !c.ready);
    if (failing.length === 0) {
      ctx.body = { status: 'ready', checks };
      return;
    }
    ctx.status = 503;
    ctx.body = {
      error: 'NotReady',
      message: `not ready: ${failing.map((c) => `${c.name} (${c.reason})`).join('; ')}`,
      details: failing.map((c) => ({ field: c.name, reason: c.reason ?? 'not ready' })),
      checks,
    };
  });

  return router;
}

async function runCheck(check: ReadinessCheck): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ name: check.name, ready: false, reason: `no answer within ${CHECK_TIMEOUT_MS} ms` }),
      CHECK_TIMEOUT_MS,
    );
  });
  const result = check.check().then(
    ({ ready, reason }) => ({ name: check.name, ready, ...(reason !== undefined ? { reason } : {}) }),
    (err: Error) => ({ name: check.name, ready: false, reason: err.message }),
  );
  try {
    return await Promise.race([result, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
