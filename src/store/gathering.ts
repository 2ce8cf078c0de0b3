/**
 * Statements gathered under load, for SQLite's one connection: the calls that
 * arrive while a statement is in flight wait for it and go together in the
 * next one. A statement's trip to sqlite3's thread (and a write's commit)
 * then serves many calls; alone, a call goes at once, as it would without this.
 */

/** One call waiting for its statement: what it asks, and how it is answered. */
export interface Waiting<T, R> {
  readonly item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export class Gathering<T, R> {
  private waiting: Waiting<T, R>[] = [];
  private busy = false;

  /**
   * `serve` answers every call of a batch of at most `perStatement`, each
   * exactly once, and does not throw: its failures are the calls' rejections.
   */
  constructor(
    private readonly perStatement: number,
    private readonly serve: (batch: Waiting<T, R>[]) => Promise<void>,
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.busy) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.perStatement);
        await this.serve(batch).catch((err: unknown) => {
          for (const w of batch) w.reject(err);
        });
      }
    } finally {
      this.busy = false;
    }
  }
}
