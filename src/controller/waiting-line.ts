/**
 * The line of Pending runs waiting for one of `--max-parallel` slots: who
 * may start now and, for the others, their place in the line. One pass over
 * the active runs, so admission stays linear in the number waiting; both the
 * admission of one run and the refresh of every waiting run's
 * `queuePosition` read the line from here, so they always agree.
 */
import { RunPhase } from '../model/types';
import type { ActiveRunState } from '../store/store';

export interface WaitingLine {
  /** Ready Pending runs, oldest first: the first `free` of them may start now. */
  ready: ActiveRunState[];
  /** Slots not taken by a Running run or one being started. */
  free: number;
}

/**
 * Reads the line from the active runs (oldest first, as the store lists
 * them). A run being started (`starting`) takes a slot and leaves the line;
 * a run waiting out a retry backoff or asked to stop is not in it.
 */
export function waitingLine(active: readonly ActiveRunState[], maxParallel: number, starting: ReadonlySet<number>, now: number): WaitingLine {
  let running = 0;
  const ready: ActiveRunState[] = [];
  for (const run of active) {
    if (starting.has(run.id)) continue;
    if (run.status.phase === RunPhase.Running) running++;
    else if (!run.status.cancelRequested && !(run.status.nextAttemptAt && Date.parse(run.status.nextAttemptAt) > now)) ready.push(run);
  }
  return { ready, free: maxParallel - running - starting.size };
}

/** A run's place in the line: 1 for the next to start once a slot frees, …; undefined when it may start now (or is not in the line). */
export function queuePositionOf(line: WaitingLine, place: number): number | undefined {
  return place < 0 || place < line.free ? undefined : place - line.free + 1;
}

/** What a run waiting for a slot says about it. */
export function slotMessage(position: number, maxParallel: number): string {
  const ahead = position === 1 ? 'next in line' : `number ${position} in line`;
  return `waiting for a free slot (${ahead}): at most ${maxParallel} runs run at once (--max-parallel)`;
}
