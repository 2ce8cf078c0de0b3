/**
 * Reads of one App on SQLite answered from memory: the Apps this store has
 * read, kept until it writes any App, or until a check of the database finds
 * another connection's write.
 *
 * Why: `GET /apps/{id}/` is the API's hottest read, and on SQLite every
 * statement is a trip to sqlite3's worker thread and back, two wake-ups of a
 * thread. Without the trip an answer took about a quarter less of the server's
 * CPU on the project's machine (README, Benchmarks).
 *
 * Why what is kept can be trusted:
 *  - On SQLite berth is one replica (`--leader-elect` refuses it), so the App
 *    writes berth makes are this store's. Each of them (Store's creates,
 *    updates, deletes and schedule bookkeeping) forgets everything kept here
 *    before it returns, whether it succeeded or not, and before the change
 *    event of one that did: a read that begins after a write has returned,
 *    or after its event, never finds the App as it was before.
 *  - A read whose statement was in flight when something was forgotten keeps
 *    nothing of what it read, which may be the App as it was before.
 *  - A commit by any other connection (another process on the same file, a
 *    hand edit) moves SQLite's `data_version`. It is read before a read is
 *    answered from memory, unless a check began less than `checkMs` ago, and
 *    everything kept is forgotten when it moved: such a write shows here
 *    within `checkMs`. Lists (./app-cache.ts) see it at once.
 *  - Kept Apps are frozen: every reader shares them, and the API keeps each
 *    one's JSON (src/api/present.ts).
 */
import { deepFreeze } from './app-cache';
import type { PlainSql } from './plain-sql';
import { refWhere } from './rows';
import type { StoredApp } from './types';

/** How long a check of `data_version` vouches for what is kept: another connection's write shows within this. */
const CHECK_MS = 100;
/** Apps kept at most, the earliest kept going first. Each is a few KB. */
const CAPACITY = 5000;

export class KnownApps {
  /** Each kept App twice: under `id:<id>` and under `name:<name>`. */
  private readonly kept = new Map<string, StoredApp>();
  /** Moves whenever everything is forgotten: a read in flight across it keeps nothing. */
  private epoch = 0;
  /** `data_version` as last read, and when that read began. */
  private dataVersion: number | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private checking: Promise<void> | undefined;

  /** @param read reads one App from the database, by id or name; the App it gives is this cache's to keep. */
  constructor(
    private readonly sql: PlainSql,
    private readonly read: (ref: string | number) => Promise<StoredApp | null>,
    private readonly checkMs = CHECK_MS,
    private readonly capacity = CAPACITY,
  ) {}

  /** The App of `ref` (an id or a name), frozen and shared, or null. */
  async get(ref: string | number): Promise<StoredApp | null> {
    if (performance.now() - this.checkedAt >= this.checkMs) await this.check();
    const where = refWhere(ref);
    const known = this.kept.get('id' in where ? `id:${where.id}` : `name:${where.name}`);
    if (known) return known;
    const epoch = this.epoch;
    const app = await this.read(ref);
    if (app && epoch === this.epoch) this.keep(deepFreeze(app));
    return app;
  }

  /** Forgets every App kept: this store has written (or tried to write) one. */
  forget(): void {
    this.epoch++;
    this.kept.clear();
  }

  private keep(app: StoredApp): void {
    this.kept.set(`id:${app.id}`, app);
    this.kept.set(`name:${app.metadata.name}`, app);
    for (const key of this.kept.keys()) {
      if (this.kept.size <= 2 * this.capacity) break;
      this.kept.delete(key);
    }
  }

  /** Reads `data_version` (one read for all who ask meanwhile) and forgets everything when it moved. */
  private check(): Promise<void> {
    this.checking ??= (async () => {
      const began = performance.now();
      try {
        const [{ version }] = await this.sql.select<{ version: number }>('SELECT data_version AS version FROM pragma_data_version', []);
        if (version !== this.dataVersion) this.forget();
        this.dataVersion = version;
        this.checkedAt = began;
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }
}
