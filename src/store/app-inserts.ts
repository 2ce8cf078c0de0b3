/**
 * New Apps on SQLite, written together: the creates that arrive while one
 * statement is in flight wait for it and go in the next, all as one
 * multi-row `INSERT … RETURNING`. Under many concurrent creates a statement
 * (its trip to sqlite3's thread, its commit) serves many of them; alone, a
 * create goes at once, as before.
 *
 * Each create is answered only after the statement that holds it has
 * committed, so what an answer acknowledges is as durable as a create made
 * alone (see the README's Durability). A statement is all or nothing: when one
 * of its rows is refused (a name that exists, or two creates of one name),
 * nothing of it was written and each of its creates is tried again alone, so
 * only the refused one fails.
 */
import type { AppRow } from './models';
import { isConstraintViolation, type PlainSql } from './plain-sql';
import type { newAppRow } from './rows';

export type NewAppRow = ReturnType<typeof newAppRow>;

const COLUMNS = 'name, uid, generation, resource_version, source, labels, spec, status, created_at, updated_at';
/** The columns of APP_SELECT (./rows.ts), for RETURNING. */
const RETURNED =
  'id, name, uid, generation, resource_version AS "resourceVersion", labels, spec, status, schedule_status AS "scheduleStatus", created_at AS "createdAt"';
/** Rows per statement: ten variables each, well within SQLite's limit. */
const ROWS_PER_STATEMENT = 500;

interface Waiting {
  row: NewAppRow;
  resolve: (row: AppRow) => void;
  reject: (err: unknown) => void;
}

export class AppInserts {
  private waiting: Waiting[] = [];
  private writing = false;

  constructor(private readonly sql: PlainSql) {}

  /** The App's row as written; rejects with the statement's error (a constraint violation for a name taken). */
  insert(row: NewAppRow): Promise<AppRow> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ row, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.waiting.length > 0) await this.write(this.waiting.splice(0, ROWS_PER_STATEMENT));
    } finally {
      this.writing = false;
    }
  }

  private async write(batch: Waiting[]): Promise<void> {
    if (batch.length > 1) {
      try {
        // RETURNING gives rows in no promised order; names are unique.
        const byName = new Map((await this.insertRows(batch.map((w) => w.row))).map((row) => [row.name, row]));
        for (const w of batch) w.resolve(byName.get(w.row.name)!);
        return;
      } catch (err) {
        if (!isConstraintViolation(err)) {
          for (const w of batch) w.reject(err);
          return;
        }
      }
    }
    for (const w of batch) {
      try {
        const [row] = await this.insertRows([w.row]);
        w.resolve(row);
      } catch (err) {
        w.reject(err);
      }
    }
  }

  private insertRows(rows: NewAppRow[]): Promise<AppRow[]> {
    const now = this.sql.now();
    const values = rows.flatMap((r) => [
      r.name,
      r.uid,
      r.generation,
      r.resourceVersion,
      r.source,
      JSON.stringify(r.labels),
      JSON.stringify(r.spec),
      JSON.stringify(r.status),
      now,
      now,
    ]);
    const marks = rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    return this.sql.select<AppRow>(`INSERT INTO apps (${COLUMNS}) VALUES ${marks} RETURNING ${RETURNED}`, values);
  }
}
