import type { ApiClient } from './api-client';
import { EventStream } from './events';
import { CliError } from './exit';
import { runPath, type RunAnswer } from './objects';

const TERMINAL = ['Succeeded', 'Failed', 'Cancelled'];
export const isTerminal = (run: RunAnswer): boolean => TERMINAL.includes(run.status.phase);

/**
 * One run's state, kept current from `/events/` (no polling): subscribe,
 * then read, so no change between the two is missed.
 */
export class RunWatch {
  private waiters: (() => void)[] = [];
  private failure?: Error;

  private constructor(
    private readonly events: EventStream,
    public run: RunAnswer,
  ) {}

  static async start(client: ApiClient, run: RunAnswer): Promise<RunWatch> {
    const events = await EventStream.open(client, { kind: 'Run', app: run.app });
    const fresh = (await client.request<RunAnswer>('GET', runPath(run))).body;
    const watch = new RunWatch(events, fresh);
    void watch.consume();
    return watch;
  }

  /** Resolves with the run once `done` holds for it; the run deleted or the stream lost rejects. */
  async until(done: (run: RunAnswer) => boolean): Promise<RunAnswer> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (done(this.run)) return this.run;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close(): void {
    this.events.close();
    this.wake();
  }

  private async consume(): Promise<void> {
    try {
      for await (const event of this.events) {
        const object = event.object as RunAnswer;
        if (object.kind !== 'Run' || object.id !== this.run.id) continue;
        if (event.type === 'DELETED') throw new CliError(`run "${this.run.metadata.name}" was deleted (with its App?)`);
        // Events of one run arrive in order; an older resourceVersion would only be a replay.
        if (Number(object.metadata.resourceVersion) >= Number(this.run.metadata.resourceVersion)) this.run = object;
        this.wake();
      }
    } catch (err) {
      this.failure = err as Error;
      this.wake();
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * Prints a run's output until it ends, attempt by attempt: each attempt's
 * live stream (`?follow=1`) once it is Running; when nothing could be
 * streamed (the run finished first), the output the store kept.
 * Resolves with the finished run.
 */
export async function followLogs(client: ApiClient, watch: RunWatch, tail?: number): Promise<RunAnswer> {
  let followed = 0;
  let printed = 0;
  for (;;) {
    const run = await watch.until((r) => isTerminal(r) || (r.status.phase === 'Running' && (r.status.attempts ?? 0) > followed));
    if (isTerminal(run)) {
      if (printed === 0) {
        const stored = await client.request<string>('GET', `${runPath(run)}logs/`, { query: { tail } });
        process.stdout.write(stored.body);
      }
      return run;
    }
    followed = run.status.attempts ?? 0;
    const response = await client.stream(`${runPath(run)}logs/`, { follow: 1, tail: printed === 0 ? tail : undefined });
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      printed += chunk.length;
      process.stdout.write(chunk);
    }
  }
}

/**
 * What `berth run --wait` exits with: the container's exit code, or 1 with
 * the reason when the run ended for a reason of berth's (OOMKilled,
 * DeadlineExceeded, ImagePullFailed, Cancelled, …) rather than the
 * program's own exit.
 */
export function runOutcome(run: RunAnswer): { code: number; message?: string } {
  const { phase, reason, message, exitCode } = run.status;
  const name = `run "${run.metadata.name}"`;
  if (phase === 'Succeeded') return { code: 0 };
  const why = `${name} ${phase}${reason && reason !== phase ? ` (${reason})` : ''}${message ? `: ${message}` : ''}`;
  if (reason && BERTH_REASONS.includes(reason)) return { code: 1, message: why };
  if (exitCode !== undefined && exitCode > 0) return { code: exitCode, message: `${name} failed with exit code ${exitCode}` };
  return { code: 1, message: why };
}

/** Reasons that are berth's, not the program's: the exit code, if any, is not the program's answer. */
const BERTH_REASONS = [
  'OOMKilled',
  'DeadlineExceeded',
  'ImagePullFailed',
  'Cancelled',
  'Replaced',
  'AppDeleted',
  'ContainerLost',
  'LaunchFailed',
  'RuntimeUnavailable',
];
