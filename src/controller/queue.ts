/**
 * The controller's work queue, after client-go's: it holds keys, not events,
 * so a burst of changes to one object collapses into one reconcile of its
 * latest state.
 */

/** What a handler asks of the queue after processing a key. */
export interface ProcessResult {
  /** Process the key again after this long (a deadline, a poll). Absent: only when something changes. */
  requeueAfterMs?: number;
}

/**
 * Processes one key. Throwing asks for a rate-limited retry, unless the error
 * says retrying cannot help (`retryable: false`, as berth's errors carry it):
 * then the key is dropped until something adds it again.
 */
export type KeyHandler<K extends string> = (key: K) => Promise<ProcessResult | void>;

/** Observations the queue reports, for metrics. */
export interface QueueHooks<K extends string> {
  /** The number of keys waiting to be processed changed. */
  depth?(depth: number): void;
  /** A key waited this long between being added and a worker taking it. */
  waited?(seconds: number): void;
  /** A worker spent this long processing a key. */
  processed?(seconds: number): void;
  /** The handler threw; the key is retried after `retryInMs`. */
  failed?(key: K, error: unknown, retryInMs: number): void;
  /** The handler threw an error that retrying cannot help: the key is not retried. */
  dropped?(key: K, error: unknown): void;
}

export interface WorkQueueOptions<K extends string> {
  handler: KeyHandler<K>;
  /**
   * How many keys are processed at once (never the same key twice).
   * @default 4
   */
  workers?: number;
  /**
   * The first retry delay after a failure; it doubles with each consecutive failure of that key.
   * @default 5
   */
  baseRetryMs?: number;
  /**
   * The longest retry delay.
   * @default 300000 (5 minutes)
   */
  maxRetryMs?: number;
  hooks?: QueueHooks<K>;
}

/** setTimeout's limit (about 24.8 days); longer delays are clamped, which only wakes a key early. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A de-duplicated queue of keys processed by a pool of workers.
 *
 * - A key waiting in the queue is held once however often it is added.
 * - A key is never processed by two workers at once: added while being
 *   processed, it is marked dirty and processed again once the first pass ends.
 * - A handler that throws gets its key back after a per-key exponential
 *   delay (`baseRetryMs` doubling up to `maxRetryMs`); a handler that succeeds
 *   resets that key's delay (`forget`).
 * - A handler that throws a terminal error (`retryable: false`) does not get
 *   its key back: like controller-runtime's TerminalError, retrying would only
 *   fail again. An error that does not say is retried.
 * - `addAfter` schedules a key for later; of several schedules the earliest wins.
 */
export class WorkQueue<K extends string> {
  private readonly handler: KeyHandler<K>;
  private readonly workers: number;
  private readonly baseRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly hooks: QueueHooks<K>;

  /** Keys waiting for a worker, in order. */
  private readonly ready: K[] = [];
  /** Keys that need processing: those in `ready`, and those re-added while being processed. Value: when added. */
  private readonly dirty = new Map<K, number>();
  private readonly processing = new Set<K>();
  private readonly delayed = new Map<K, { due: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<K, number>();
  private wakeWorkers: Array<() => void> = [];
  private stopped = false;
  private started = false;

  constructor(options: WorkQueueOptions<K>) {
    if (options.workers !== undefined && (!Number.isInteger(options.workers) || options.workers < 1)) {
      throw new RangeError(`workers: must be a whole number of at least 1, got ${options.workers}`);
    }
    this.handler = options.handler;
    this.workers = options.workers ?? 4;
    this.baseRetryMs = options.baseRetryMs ?? 5;
    this.maxRetryMs = options.maxRetryMs ?? 300_000;
    this.hooks = options.hooks ?? {};
  }

  /** Keys waiting for a worker (not those being processed or scheduled for later). */
  get depth(): number {
    return this.ready.length;
  }

  /** Keys being processed right now. */
  get active(): number {
    return this.processing.size;
  }

  /** Asks for `key` to be processed; a no-op when it is already waiting. */
  add(key: K): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.set(key, Date.now());
    // Re-added while processing: `done` puts it back once the current pass ends.
    if (this.processing.has(key)) return;
    this.ready.push(key);
    this.hooks.depth?.(this.ready.length);
    this.wakeOne();
  }

  /** Adds `key` after `delayMs`; when the key is already scheduled, the earlier time wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) return this.add(key);
    const due = Date.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing && existing.due <= due) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(
      () => {
        this.delayed.delete(key);
        this.add(key);
      },
      Math.min(delayMs, MAX_TIMER_MS),
    );
    this.delayed.set(key, { due, timer });
  }

  /** Adds `key` after its exponential failure delay, and counts the failure. Returns the delay. */
  addRateLimited(key: K): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = Math.min(this.baseRetryMs * 2 ** failures, this.maxRetryMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets `key`'s failure delay: its next failure waits `baseRetryMs` again. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** How many consecutive failures `key` has had. */
  failuresOf(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Runs the workers until `signal` aborts; resolves once the keys being
   * processed at that moment are done. Keys still waiting are dropped: they
   * describe state in the store, which the next start resyncs.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.started) throw new Error('WorkQueue.start: a queue runs once; make a new one to start again');
    this.started = true;
    const stop = () => {
      this.stopped = true;
      for (const { timer } of this.delayed.values()) clearTimeout(timer);
      this.delayed.clear();
      for (const wake of this.wakeWorkers.splice(0)) wake();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    await Promise.all(Array.from({ length: this.workers }, () => this.work()));
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      await this.process(key);
    }
  }

  private async next(): Promise<K | undefined> {
    while (!this.stopped && this.ready.length === 0) {
      await new Promise<void>((resolve) => this.wakeWorkers.push(resolve));
    }
    if (this.stopped) return undefined;
    const key = this.ready.shift() as K;
    const addedAt = this.dirty.get(key) ?? Date.now();
    this.dirty.delete(key);
    this.processing.add(key);
    this.hooks.depth?.(this.ready.length);
    this.hooks.waited?.((Date.now() - addedAt) / 1000);
    return key;
  }

  /** The one place that decides what happens to a key after its handler ran. */
  private async process(key: K): Promise<void> {
    const began = Date.now();
    try {
      const result = await this.handler(key);
      this.forget(key);
      if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
    } catch (error) {
      if (isTerminalError(error)) {
        this.forget(key);
        this.hooks.dropped?.(key, error);
      } else {
        const retryInMs = this.addRateLimited(key);
        this.hooks.failed?.(key, error, retryInMs);
      }
    } finally {
      this.hooks.processed?.((Date.now() - began) / 1000);
      this.done(key);
    }
  }

  private done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.stopped) {
      this.ready.push(key);
      this.hooks.depth?.(this.ready.length);
      this.wakeOne();
    }
  }

  private wakeOne(): void {
    this.wakeWorkers.shift()?.();
  }
}

/** An error that says doing the same again cannot succeed: it carries `retryable: false`. */
export function isTerminalError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === false;
}
