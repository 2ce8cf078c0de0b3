/**
 * Following the engine's event stream for berth's containers, through engine
 * restarts and broken connections, until told to stop.
 */

import type Docker from 'dockerode';
import type { IncomingMessage } from 'node:http';
import { LABEL_MANAGED_BY, LABEL_RUN, MANAGED_BY, WorkloadAction, type WorkloadEvent } from '../executor';

/**
 * The engine's container actions berth listens for, and what each means to
 * a watcher. `kill` and `stop` are left out: they only say a signal was
 * sent, and the `die` that follows carries the end. `oom` is only a change:
 * the OOM killer may have ended a child while the container runs on.
 */
export const WATCHED_ACTIONS: Readonly<Record<string, WorkloadAction>> = {
  create: WorkloadAction.Changed,
  start: WorkloadAction.Started,
  die: WorkloadAction.Exited,
  oom: WorkloadAction.Changed,
  destroy: WorkloadAction.Removed,
};

export interface EventWatchOptions {
  /** First wait before reconnecting after the stream broke or could not open. */
  initialBackoffMs: number;
  /** The wait doubles up to this. */
  maxBackoffMs: number;
  /** Told why the stream broke or could not open; the watch carries on regardless. */
  onError?: (error: Error) => void;
}

interface EngineEvent {
  Type?: string;
  Action?: string;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** Docker's `since` takes `seconds.nanoseconds`; from a nanosecond count, to the nanosecond. */
const sinceOf = (nanos: bigint): string => `${nanos / 1_000_000_000n}.${String(nanos % 1_000_000_000n).padStart(9, '0')}`;

/**
 * Streams owned-container events to `onEvent` until `signal` aborts, then
 * resolves; it never rejects; failures go to `options.onError` and the watch
 * reconnects. Each (re)connection asks for events since the last one seen (or
 * since the call, at first), so a change during a reconnect — or in the
 * moment before the first connection — is delivered rather than lost.
 *
 * @param docker the engine client; only its `getEvents` is used.
 * @param describeError turns a connection failure into the error `onError` receives.
 */
export function watchEngineEvents(
  docker: Docker,
  onEvent: (event: WorkloadEvent) => void,
  signal: AbortSignal,
  options: EventWatchOptions,
  describeError: (error: unknown) => Error,
): Promise<void> {
  let lastSeenNanos = BigInt(Date.now()) * 1_000_000n;
  let backoffMs = options.initialBackoffMs;

  const streamOnce = async (): Promise<void> => {
    const events = (await docker.getEvents({
      since: sinceOf(lastSeenNanos),
      filters: { type: ['container'], label: [`${LABEL_MANAGED_BY}=${MANAGED_BY}`], event: Object.keys(WATCHED_ACTIONS) },
      abortSignal: signal,
    } as unknown as Docker.GetEventsOptions)) as unknown as IncomingMessage;
    backoffMs = options.initialBackoffMs;
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      const stop = (): void => {
        events.destroy();
        resolve();
      };
      signal.addEventListener('abort', stop, { once: true });
      if (signal.aborted) stop();
      const finish = (error?: Error): void => {
        signal.removeEventListener('abort', stop);
        if (error && !signal.aborted) reject(error);
        else resolve();
      };
      events.setEncoding('utf8');
      events.on('data', (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          deliver(line);
        }
      });
      events.once('error', finish);
      events.once('end', () => finish(new Error('the engine closed the event stream')));
      events.once('close', () => finish(new Error('the event stream connection closed')));
    });
  };

  const deliver = (line: string): void => {
    if (!line.trim()) return;
    let event: EngineEvent;
    try {
      event = JSON.parse(line) as EngineEvent;
    } catch {
      return;
    }
    if (event.timeNano) {
      // timeNano exceeds 2^53, so the parsed number is approximate; only ever move the mark forward.
      const seen = BigInt(Math.trunc(event.timeNano));
      if (seen > lastSeenNanos) lastSeenNanos = seen;
    }
    const attributes = event.Actor?.Attributes;
    const runUid = attributes?.[LABEL_RUN];
    // Own property only: an action named like an Object.prototype member must not map to one.
    const action = event.Action && Object.hasOwn(WATCHED_ACTIONS, event.Action) ? WATCHED_ACTIONS[event.Action] : undefined;
    // The engine puts the container's name among the attributes, beside its labels.
    const name = attributes?.name;
    if (event.Type === 'container' && runUid && name && action) onEvent({ runUid, name, action });
  };

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });

  const loop = async (): Promise<void> => {
    while (!signal.aborted) {
      try {
        await streamOnce();
      } catch (error) {
        if (signal.aborted) break;
        try {
          options.onError?.(describeError(error));
        } catch {
          // A reporter that throws must not end the watch: the watch's promise only ever resolves, on abort.
        }
      }
      if (signal.aborted) break;
      await pause(backoffMs);
      backoffMs = Math.min(backoffMs * 2, options.maxBackoffMs);
    }
  };
  return loop();
}
