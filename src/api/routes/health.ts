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
 * else the server registered); 503 names each failing check and why — to a
 * caller with the token; without it (a probe), only the verdict.
 */
export function healthRoutes(deps: ApiDeps): Router {
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    const [checks, leader] = await Promise.all([Promise.all(deps.readiness.map(runCheck)), leaderReport(deps)]);
    const failing = checks.filter((c) => !c.ready);
    if (deps.token && !ctx.state.authenticated) {
      // A probe, or anyone who can reach the port: the verdict, not the reasons (they name hosts and files).
      ctx.status = failing.length === 0 ? 200 : 503;
      ctx.body = failing.length === 0 ? { status: 'ready' } : { error: 'NotReady', message: 'not ready (send the bearer token for the reasons)', details: [] };
      return;
    }
    if (failing.length === 0) {
      ctx.body = { status: 'ready', checks, ...leader };
      return;
    }
    ctx.status = 503;
    ctx.body = {
      error: 'NotReady',
      message: `not ready: ${failing.map((c) => `${c.name} (${c.reason})`).join('; ')}`,
      details: failing.map((c) => ({ field: c.name, reason: c.reason ?? 'not ready' })),
      checks,
      ...leader,
    };
  });

  return router;
}

/** `{leader: …}` with leader election (a store that does not answer leaves it out: the store check says why). */
async function leaderReport(deps: ApiDeps): Promise<{ leader?: unknown }> {
  if (!deps.leadership) return {};
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ leader?: unknown }>((resolve) => (timer = setTimeout(() => resolve({}), CHECK_TIMEOUT_MS)));
  try {
    return await Promise.race([deps.leadership.report().then((leader) => ({ leader })), timeout]);
  } catch {
    return {};
  } finally {
    clearTimeout(timer);
  }
}

async function runCheck(check: ReadinessCheck): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ name: check.name, ready: false, reason: `no answer within ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS);
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
