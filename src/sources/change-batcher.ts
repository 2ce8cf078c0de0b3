const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 30_000;

export interface ChangeBatcherOptions {
  /** Quiet time after a path's last change before it is processed. */
  debounceMs: number;
  /** Processes one batch of paths; a throw retries the whole batch later, with exponential backoff. */
  process(paths: string[]): Promise<void>;
  /** Told about a failed batch and when it will be retried. */
  onError(err: unknown, paths: string[], retryInMs: number): void;
}

/**
 * Turns a stream of changed paths into batches, processed one at a time:
 * each path is debounced, paths that change while a batch runs wait for
 * the next one, and a batch that fails is retried whole with backoff (the
 * work is level-triggered, so doing it again is safe).
 */
export class ChangeBatcher {
  private readonly debounces = new Map<string, { timer: NodeJS.Timeout; at: number }>();
  private readonly due = new Set<string>();
  private draining: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = RETRY_MIN_MS;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(private readonly options: ChangeBatcherOptions) {}

  /**
   * A path changed: process it once it has been quiet for `debounceMs`. When
   * its quiet time is over, every other pending path that has been quiet for
   * half of it goes too: a `git mv` or `git pull` changes many files within a
   * millisecond, and processing them in one batch is what lets a document
   * move between files without being pruned and re-created.
   */
  touch(path: string): void {
    if (this.stopped) return;
    clearTimeout(this.debounces.get(path)?.timer);
    const timer = setTimeout(() => {
      const now = Date.now();
      const quiet = [...this.debounces].filter(([, pending]) => now - pending.at >= this.options.debounceMs / 2).map(([p]) => p);
      for (const p of [path, ...quiet]) {
        clearTimeout(this.debounces.get(p)?.timer);
        this.debounces.delete(p);
      }
      this.enqueue([path, ...quiet]);
    }, this.options.debounceMs);
    this.debounces.set(path, { timer, at: Date.now() });
  }

  /** Paths to process in the next batch, without debouncing (a rescan, a retry that something else made possible). */
  enqueue(paths: Iterable<string>): void {
    if (this.stopped) return;
    for (const p of paths) this.due.add(p);
    this.kick();
  }

  /** Resolves when nothing seen so far is waiting: no debounce pending, no batch due, running or awaiting retry. */
  whenIdle(): Promise<void> {
    if (this.stopped || this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what is pending and waits for the batch in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    for (const { timer } of this.debounces.values()) clearTimeout(timer);
    this.debounces.clear();
    this.due.clear();
    await this.draining;
    this.notifyIdle();
  }

  private isIdle(): boolean {
    return !this.draining && !this.retryTimer && this.due.size === 0 && this.debounces.size === 0;
  }

  private kick(): void {
    if (this.draining || this.retryTimer) return;
    if (this.stopped || this.due.size === 0) return this.notifyIdle();
    // Started on the next tick, so `draining` is set before `process` runs and can enqueue more.
    this.draining = Promise.resolve()
      .then(() => this.drain())
      .finally(() => {
        this.draining = undefined;
        this.kick();
      });
  }

  private notifyIdle(): void {
    if (!this.stopped && !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async drain(): Promise<void> {
    while (this.due.size > 0 && !this.stopped) {
      const batch = [...this.due];
      this.due.clear();
      try {
        await this.options.process(batch);
        this.retryDelayMs = RETRY_MIN_MS;
      } catch (err) {
        this.options.onError(err, batch, this.retryDelayMs);
        for (const p of batch) this.due.add(p);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, this.retryDelayMs);
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS);
        return;
      }
    }
  }
}
