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
export const PAGE_OF_VERSIONS = 'json_group_array(json_array(id, resource_version, schedule_status) ORDER BY id)';

export type AppVersion = Pick<AppRow, 'id' | 'resourceVersion' | 'scheduleStatus'>;

export function pageOfVersions(json: string): AppVersion[] {
  return (JSON.parse(json) as [number, number, string | null][]).map(([id, resourceVersion, scheduleStatus]) => ({ id, resourceVersion, scheduleStatus }));
}

/** Apps kept at most; the least recently read go first. Each is a few KB. */
const CAPACITY = 5000;
/** Rows read per statement, within SQLite's limit on parameters. */
const CHUNK = 500;

export class AppCache {
  private readonly kept = new Map<number, { version: string; app: StoredApp }>();

  /**
   * The Apps of `versions`, in their order: kept ones when their version
   * matches, the rest read with `readRows` (by id) and kept. An App deleted
   * between the two reads is left out, as if the list had been read after.
   */
  async read(versions: AppVersion[], readRows: (ids: number[]) => Promise<AppRow[]>): Promise<StoredApp[]> {
    const stale = versions.filter((v) => this.kept.get(v.id)?.version !== versionOf(v)).map((v) => v.id);
    for (let i = 0; i < stale.length; i += CHUNK) {
      for (const row of await readRows(stale.slice(i, i + CHUNK))) this.keep(row.id, versionOf(row), deepFreeze(toApp(row)));
    }
    const apps: StoredApp[] = [];
    for (const { id } of versions) {
      const entry = this.kept.get(id);
      if (!entry) continue;
      // Read again: to the end of the line, away from eviction.
      this.kept.delete(id);
      this.kept.set(id, entry);
      apps.push(entry.app);
    }
    return apps;
  }

  private keep(id: number, version: string, app: StoredApp): void {
    this.kept.delete(id);
    this.kept.set(id, { version, app });
    for (const oldest of this.kept.keys()) {
      if (this.kept.size <= CAPACITY) break;
      this.kept.delete(oldest);
    }
  }
}

function versionOf(row: Pick<AppRow, 'resourceVersion' | 'scheduleStatus'>): string {
  // Plain reads give the column's text; anything else is compared as its JSON.
  const schedule = typeof row.scheduleStatus === 'string' ? row.scheduleStatus : JSON.stringify(row.scheduleStatus ?? null);
  return `${row.resourceVersion}\u0000${schedule}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
