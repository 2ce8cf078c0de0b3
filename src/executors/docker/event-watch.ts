/**
 * Following the engine's event stream for berth's containers, through engine
 * restarts and broken connections, until told to stop.
 */

import type Docker from 'dockerode';
import type { IncomingMessage } from 'node:http';
import { LABEL_MANAGED_BY, LABEL_RUN, type WorkloadEvent } from '../executor';
import { MANAGED_BY } from './container-spec';

/** Container actions the reconciler cares about: a run started, ended, ran out of memory, was signalled, or vanished. */
export const WATCHED_ACTIONS = ['start', 'die', 'oom', 'kill', 'stop', 'destroy'] as const;

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
 * Streams owned-container events to `onEvent` until `signal` aborts. Each
 * (re)connection asks for events since the last one seen (or since the call,
 * at first), so a change during a reconnect — or in the moment before the
 * first connection — is delivered rather than lost.
 *
 * @param connect opens the event stream with the given query; normally `docker.getEvents`.
 * @param describeError turns a connection failure into the error `onError` receives.
 */
export function watchEngineEvents(
  docker: Docker,
  onEvent: (event: WorkloadEvent) => void,
  signal: AbortSignal,
  options: EventWatchOptions,
  describeError: (error: unknown) => Error,
): void {
  let lastSeenNanos = BigInt(Date.now()) * 1_000_000n;
  let backoffMs = options.initialBackoffMs;

  const streamOnce = async (): Promise<void> => {
    const events = (await docker.getEvents({
      since: sinceOf(lastSeenNanos),
      filters: { type: ['container'], label: [`${LABEL_MANAGED_BY}=${MANAGED_BY}`], event: [...WATCHED_ACTIONS] },
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
    const runUid = event.Actor?.Attributes?.[LABEL_RUN];
    if (event.Type === 'container' && runUid && event.Action) onEvent({ runUid, action: event.Action });
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
        options.onError?.(describeError(error));
      }
      if (signal.aborted) break;
      await pause(backoffMs);
      backoffMs = Math.min(backoffMs * 2, options.maxBackoffMs);
    }
  };
  void loop();
}
