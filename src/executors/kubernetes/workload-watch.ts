/**
 * Telling a watcher what happened to berth's workloads, from the changes
 * the informers see: each change to a Job or pod is read as an Observation
 * of its workload, and the step from the last one becomes the event
 * (started, exited, changed, removed). Events are hints to look again; the
 * caches they come from serve `observe` meanwhile.
 */

import { LABEL_RUN, WorkloadAction, type Observation, type WorkloadEvent } from '../executor';
import type { PullFailure, Reading, WorkloadState } from './observation';
import type { WorkloadCache } from './workload-cache';

/** Two observations that say the same for a watcher (a waiting message's countdown is no news). */
function sameNews(a: Observation, b: Observation): boolean {
  if (a.state !== b.state) return false;
  switch (a.state) {
    case 'waiting':
      return b.state === 'waiting' && a.reason === b.reason && a.terminal === b.terminal;
    case 'running':
      return b.state === 'running' && a.startedAt === b.startedAt;
    case 'exited':
      return b.state === 'exited' && a.exitCode === b.exitCode && a.oomKilled === b.oomKilled && a.finishedAt === b.finishedAt;
    case 'lost':
      return b.state === 'lost' && a.message === b.message;
    default:
      return true;
  }
}

/** The events that take a watcher from `previous` to `current`. */
export function eventsBetween(previous: Observation | undefined, current: Observation): WorkloadAction[] {
  if (current.state === 'absent') return previous && previous.state !== 'absent' ? [WorkloadAction.Removed] : [];
  if (previous && sameNews(previous, current)) return [];
  switch (current.state) {
    case 'running':
      return [previous?.state === 'running' ? WorkloadAction.Changed : WorkloadAction.Started];
    case 'exited':
      // A process that started and ended between two looks still started: say so first.
      if (previous?.state === 'exited') return [WorkloadAction.Changed];
      return previous?.state !== 'running' && current.startedAt ? [WorkloadAction.Started, WorkloadAction.Exited] : [WorkloadAction.Exited];
    default:
      return [WorkloadAction.Changed];
  }
}

/**
 * Runs the caches for as long as `signal` is not aborted, calling `onEvent`
 * for each step of each workload; resolves once aborted and the caches
 * have let go. A pull failing on its grace period gets a timer, so the
 * watcher hears when the wait turns terminal without anything else changing.
 */
export async function watchWorkloads(
  cache: WorkloadCache,
  read: (name: string, state: WorkloadState) => Reading,
  pullFailureOf: (name: string) => PullFailure | undefined,
  imagePullGraceMs: number,
  onEvent: (event: WorkloadEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const last = new Map<string, Observation>();
  const runUids = new Map<string, string>();
  const graceTimers = new Map<string, NodeJS.Timeout>();

  const look = (name: string): void => {
    if (signal.aborted) return;
    const current = read(name, { job: cache.job(name), pods: cache.podsOf(name) }).observation;
    const previous = last.get(name);
    const runUid = runUids.get(name);
    if (current.state === 'absent') {
      last.delete(name);
      runUids.delete(name);
    } else {
      last.set(name, current);
    }
    if (runUid) {
      for (const action of eventsBetween(previous, current)) {
        try {
          onEvent({ runUid, name, action });
        } catch {
          // A listener that throws must not stop the others, nor the watch.
        }
      }
    }
    clearTimeout(graceTimers.get(name));
    graceTimers.delete(name);
    const failure = pullFailureOf(name);
    if (current.state === 'waiting' && current.reason === 'Pulling' && failure) {
      const timer = setTimeout(() => look(name), Math.max(0, failure.since + imagePullGraceMs - Date.now()) + 10);
      timer.unref();
      graceTimers.set(name, timer);
    }
  };

  const unsubscribe = cache.subscribe((change) => {
    const runUid = change.object.metadata?.labels?.[LABEL_RUN];
    if (runUid) runUids.set(change.workload, runUid);
    look(change.workload);
  });
  cache.acquire();
  try {
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  } finally {
    unsubscribe();
    for (const timer of graceTimers.values()) clearTimeout(timer);
    await cache.release();
  }
}
