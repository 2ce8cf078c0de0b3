import Router from '@koa/router';
import type { Context } from 'koa';
import type { Readable } from 'node:stream';
import { isTerminal } from '../../model/types';
import type { StoredRun } from '../../store/store';
import { API_LIMITS, type ApiDeps } from '../deps';
import { flag, integerParam } from '../query';
import { StreamSlots } from '../stream-slots';
import { runOfApp } from './runs';

const MAX_TAIL = 1_000_000;

/**
 * `GET /apps/{id}/run/{runId}/logs/`: a run's output as text. The store keeps
 * it after the container is gone; `?follow=1` streams a live workload's output
 * until it ends; `?tail=N` keeps the last N lines.
 */
export function logsRoutes(deps: ApiDeps): Router {
  const router = new Router();
  const followers = new StreamSlots('followed logs', deps.limits?.logFollowers ?? API_LIMITS.logFollowers, '--max-log-followers');

  router.get('/apps/:app/run/:run/logs', async (ctx) => {
    const run = await runOfApp(deps, ctx.params.app, ctx.params.run);
    const tail = integerParam(ctx, 'tail', 0, MAX_TAIL);
    ctx.type = 'text/plain; charset=utf-8';
    ctx.set('X-Content-Type-Options', 'nosniff');
    // A follower's slot is taken before the runtime is asked for a stream, and given back when it ends.
    const release = flag(ctx, 'follow') && !isTerminal(run.status.phase) ? followers.take() : undefined;
    let live: Readable | undefined;
    try {
      live = release ? await liveLogs(deps, run, tail) : undefined;
    } finally {
      if (release && !live) release();
    }
    if (live) {
      live.once('close', release!);
      stream(ctx, deps, live);
      return;
    }
    const stored = await deps.store.getLogs(run.id);
    if (stored && stored.droppedBytes > 0) ctx.set('X-Berth-Dropped-Bytes', String(stored.droppedBytes));
    ctx.body = tail === undefined ? (stored?.content ?? '') : lastLines(stored?.content ?? '', tail);
  });

  return router;
}

/**
 * The live output of a run whose workload exists, or undefined when there is
 * nothing live to follow (not launched yet, finished, runtime unreachable):
 * then the stored logs are the answer.
 */
async function liveLogs(deps: ApiDeps, run: StoredRun, tail?: number): Promise<Readable | undefined> {
  const name = run.status.containerName;
  if (isTerminal(run.status.phase) || !name) return undefined;
  const executor = deps.runtimes.executorFor(run);
  if (!executor) return undefined;
  try {
    const observed = await executor.observe(name);
    if (observed.state === 'absent') return undefined;
    return await executor.logs(name, { follow: true, tail });
  } catch (err) {
    deps.logger.warn({ err, run: run.metadata.name }, 'cannot follow live logs; answering with stored logs');
    return undefined;
  }
}

function stream(ctx: Context, deps: ApiDeps, live: Readable): void {
  ctx.set('Cache-Control', 'no-cache');
  // A proxy must not hold the stream back until it ends.
  ctx.set('X-Accel-Buffering', 'no');
  const end = () => live.destroy();
  deps.shutdown?.addEventListener('abort', end, { once: true });
  live.once('close', () => deps.shutdown?.removeEventListener('abort', end));
  ctx.req.socket.setTimeout(0);
  ctx.body = live;
}

/** The last `count` lines of `text`, keeping a final newline if it had one. */
export function lastLines(text: string, count: number): string {
  if (count === 0) return '';
  const endsWithNewline = text.endsWith('\n');
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split('\n');
  if (lines.length <= count) return text;
  return lines.slice(-count).join('\n') + (endsWithNewline ? '\n' : '');
}
