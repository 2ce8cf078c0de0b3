/**
 * Apps as last read, by id, each kept with the version of its row it was
 * read at: its resource_version, which every write of the App bumps, and its
 * schedule_status, the one column written without a bump (bookkeeping, see
 * Store.setScheduleStatus). A list reads the versions of its page first, and
 * the whole rows only of the Apps whose version is not the one kept.
 *
 * Nothing here is trusted without the database: an App is served from the
 * cache only at the version the same list just read, so a change made by
 * any process (another replica, a write that failed halfway) is never
 * missed. Kept objects are frozen, because every reader shares them; their
 * identity is stable while the App is unchanged, which lets the API keep
 * each one's JSON too (src/api/present.ts).
 */
import type { AppRow } from './models';
import { toApp } from './rows';
import type { StoredApp } from './types';

/** The small columns a list reads first. */
export const VERSION_COLUMNS = 'id, resource_version, schedule_status';

/**
 * Those columns of a page as one JSON text (SQLite), in the page's order:
 * sqlite3 builds each row object through N-API, slowly, and a page of 200
 * rows cost more than parsing one text does.
 */
export const PAGE_OF_VERSIONS = `json_group_array(json_array(${VERSION_COLUMNS}) ORDER BY id)`;

/** A page's versions as PAGE_OF_VERSIONS gives them: `[id, resource_version, schedule_status]`. */
export type AppVersion = [id: number, resourceVersion: number, scheduleStatus: string | null];

export function pageOfVersions(json: string): AppVersion[] {
  return JSON.parse(json) as AppVersion[];
}

/** Apps kept at most; the least recently read go first. Each is a few KB. */
const CAPACITY = 5000;
/** Rows read per statement, within SQLite's limit on parameters. */
const CHUNK = 500;

interface Kept {
  resourceVersion: number;
  /** schedule_status's text, as the list reads it. */
  schedule: string | null;
  app: StoredApp;
  /** When it was last read (a count of reads), for eviction. */
  readAt: number;
}

export class AppCache {
  private readonly kept = new Map<number, Kept>();
  private reads = 0;

  constructor(private readonly capacity = CAPACITY) {}

  /**
   * The Apps of `versions`, in their order: kept ones when their version
   * matches, the rest read with `readRows` (by id) and kept. An App deleted
   * between the two reads is left out, as if the list had been read after.
   */
  async read(versions: AppVersion[], readRows: (ids: number[]) => Promise<AppRow[]>): Promise<StoredApp[]> {
    const readAt = ++this.reads;
    const stale: number[] = [];
    for (const [id, resourceVersion, schedule] of versions) {
      const entry = this.kept.get(id);
      if (entry && entry.resourceVersion === resourceVersion && entry.schedule === schedule) entry.readAt = readAt;
      else stale.push(id);
    }
    for (let i = 0; i < stale.length; i += CHUNK) {
      for (const row of await readRows(stale.slice(i, i + CHUNK))) {
        this.kept.set(row.id, { resourceVersion: row.resourceVersion, schedule: scheduleText(row.scheduleStatus), app: deepFreeze(toApp(row)), readAt });
      }
    }
    const apps: StoredApp[] = [];
    for (const [id] of versions) {
      const entry = this.kept.get(id);
      if (entry) apps.push(entry.app);
    }
    if (this.kept.size > this.capacity * 1.1) this.evict();
    return apps;
  }

  /** Down to the capacity, the least recently read first; in bulk, so reads do not each reorder the map. */
  private evict(): void {
    const oldest = [...this.kept].sort(([, a], [, b]) => a.readAt - b.readAt);
    for (const [id] of oldest.slice(0, this.kept.size - this.capacity)) this.kept.delete(id);
  }
}

function scheduleText(value: unknown): string | null {
  // Plain reads give the column's text, as the list's versions do.
  return value === null || value === undefined ? null : typeof value === 'string' ? value : JSON.stringify(value);
}

/** `value` and everything in it made read-only, for readers who share it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
