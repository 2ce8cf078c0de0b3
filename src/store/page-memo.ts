/**
 * The pages of a plain App list on SQLite (which Apps, at which versions,
 * and the total), each kept with the database's stamp when it was read, so
 * that listing an unchanged database reads neither the page nor the count
 * again: with a few hundred Apps, those two were most of a list's cost.
 *
 * The stamp is SQLite's own account of change: `total_changes()` counts the
 * rows this connection has written, and `data_version` moves whenever any
 * other connection commits (a transaction, which sequelize runs on a
 * connection of its own; a process that opened the file). A page is read
 * with the stamp in the same statement, and reused only when a stamp read
 * after the list was asked for is the same, so a change from anywhere is
 * never missed: nothing here is trusted without asking the database. Both
 * counts belong to the store's default connection, which lives as long as
 * the store does.
 *
 * The stamp read is gathered (./gathering.ts): the lists that arrive while
 * one is in flight share the next, so under load a statement's trip to
 * sqlite3's thread serves many lists, where each used to read its page and
 * its count in a statement of its own.
 */
import type { AppVersion } from './app-cache';
import { Gathering } from './gathering';
import type { PlainSql } from './plain-sql';

export interface Stamp {
  changes: number;
  version: number;
}

export interface KeptPage {
  stamp: Stamp;
  versions: AppVersion[];
  total?: number;
}

/** The stamp's columns, as `changes` and `version`: a statement that reads a page reads them too. */
export const STAMP_COLUMNS = 'total_changes() AS changes, (SELECT data_version FROM pragma_data_version) AS version';

/** Pages kept at most (by query: labels, offset, limit), the least recently kept going first. */
const CAPACITY = 256;

export class PageMemo {
  private readonly pages = new Map<string, KeptPage>();
  private readonly stamps: Gathering<null, Stamp>;

  constructor(
    sql: PlainSql,
    private readonly capacity = CAPACITY,
  ) {
    this.stamps = new Gathering(Number.POSITIVE_INFINITY, async (batch) => {
      const [stamp] = await sql.select<Stamp>(`SELECT ${STAMP_COLUMNS}`, []);
      for (const w of batch) w.resolve(stamp);
    });
  }

  /** The page of `key` as kept, if the database is unchanged since; else read with `readPage` (with its stamp) and kept. */
  async read(key: string, readPage: () => Promise<KeptPage>): Promise<KeptPage> {
    const kept = this.pages.get(key);
    if (kept) {
      const now = await this.stamps.add(null);
      if (now.changes === kept.stamp.changes && now.version === kept.stamp.version) return kept;
    }
    const page = await readPage();
    this.pages.delete(key);
    this.pages.set(key, page);
    if (this.pages.size > this.capacity) this.pages.delete(this.pages.keys().next().value!);
    return page;
  }
}
