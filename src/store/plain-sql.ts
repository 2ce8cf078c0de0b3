import { ForeignKeyConstraintError, QueryTypes, Sequelize } from 'sequelize';

/**
 * Whether a write was refused because a row it references is gone (an App or
 * run deleted meanwhile), from sequelize or from a plain statement on either dialect.
 */
export function isForeignKeyViolation(err: unknown): boolean {
  if (err instanceof ForeignKeyConstraintError) return true;
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  return code === '23503' || (code === 'SQLITE_CONSTRAINT' && typeof message === 'string' && message.includes('FOREIGN KEY constraint failed'));
}

/** Whether a plain statement on SQLite was refused by a unique or foreign key (it changed nothing). */
export function isConstraintViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT';
}

/** `?, ?, ?`: a placeholder for each of `values`, as in `IN (…)` on either dialect. */
export const marks = (values: unknown[]): string => values.map(() => '?').join(', ');

/** The parts of a sqlite3 Database and of its prepared Statements that plain SQL uses. */
interface SqliteConnection {
  prepare(sql: string, callback: (err: Error | null) => void): SqliteStatement;
}

interface SqliteStatement {
  all(values: unknown[], callback: (err: Error | null, rows: unknown[]) => void): void;
  run(values: unknown[], callback: (this: { changes: number }, err: Error | null) => void): void;
  finalize(callback: () => void): void;
}

/** Prepared statements kept, by text; the least recently used is finalized first. */
const STATEMENTS_KEPT = 128;

/**
 * Plain SQL for the store's hot paths, beside sequelize's models for the rest.
 * On SQLite it goes straight to the connection: sequelize wraps every query
 * in `serialize()` (one query in flight at a time, each waiting for the
 * previous one's callback) and runs a `PRAGMA table_info` before each model
 * SELECT. Statements use `?` placeholders on both dialects.
 *
 * On SQLite each statement is prepared once and kept: sqlite3 runs a
 * prepare and each run of a statement as separate trips to its thread, and
 * a trip (a thread woken, its answer handed back) cost more than most of
 * these statements do. A statement runs to its end each time, which ends its
 * read (SQLite commits an implicit transaction when its statement halts), so
 * a kept one holds no lock. `close` finalizes them: SQLite will not close a
 * connection with statements open.
 */
export class PlainSql {
  private readonly statements = new Map<string, SqliteStatement>();
  private closed = false;

  constructor(private readonly sequelize: Sequelize) {}

  /** A SELECT; rows as plain objects. */
  async select<T extends object>(sql: string, values: unknown[]): Promise<T[]> {
    if (this.sequelize.getDialect() !== 'sqlite') {
      return (await this.sequelize.query(sql, { replacements: values, type: QueryTypes.SELECT, raw: true })) as T[];
    }
    // Used in the same turn it is looked up in: a statement is finalized only when it is evicted, in another turn.
    const statement = this.kept(sql) ?? (await this.prepare(sql));
    return new Promise((resolve, reject) => statement.all(values, (err, rows) => (err ? reject(err) : resolve(rows as T[]))));
  }

  /** An INSERT, UPDATE or DELETE; returns how many rows it changed. */
  async execute(sql: string, values: unknown[]): Promise<number> {
    if (this.sequelize.getDialect() !== 'sqlite') {
      const [, meta] = await this.sequelize.query(sql, { replacements: values, type: QueryTypes.UPDATE, raw: true });
      return Number(meta);
    }
    const statement = this.kept(sql) ?? (await this.prepare(sql));
    return new Promise((resolve, reject) =>
      statement.run(values, function (err) {
        if (err) reject(err);
        else resolve(this.changes);
      }),
    );
  }

  /** Finalizes the kept statements (before the connection closes); a statement after this is an error. */
  async close(): Promise<void> {
    this.closed = true;
    const statements = [...this.statements.values()];
    this.statements.clear();
    await Promise.all(statements.map((statement) => new Promise<void>((resolve) => statement.finalize(resolve))));
  }

  /** A timestamp as each dialect's DATE columns hold it. */
  now(): string | Date {
    // sequelize writes SQLite dates as 'YYYY-MM-DD HH:MM:SS.SSS +00:00'; keep the column uniform.
    return this.sequelize.getDialect() === 'sqlite' ? new Date().toISOString().replace('T', ' ').replace('Z', ' +00:00') : new Date();
  }

  private kept(sql: string): SqliteStatement | undefined {
    const statement = this.statements.get(sql);
    if (statement) {
      // To the end of the line, away from eviction.
      this.statements.delete(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Prepares `sql` and keeps it; one that fails to prepare (bad SQL) is the caller's error and is not kept. */
  private async prepare(sql: string): Promise<SqliteStatement> {
    if (this.closed) throw new Error('the store is closed');
    const connection = await this.connection();
    // Kept or finalized in sqlite3's callback itself: a close already waiting on the connection runs right after it.
    return new Promise<SqliteStatement>((resolve, reject) => {
      const prepared = connection.prepare(sql, (err) => {
        if (err) reject(err);
        else if (this.closed) {
          // Closed while it was being prepared: kept, it would stop the connection from closing.
          prepared.finalize(() => undefined);
          reject(new Error('the store is closed'));
        } else resolve(this.keep(sql, prepared));
      });
    });
  }

  /** Keeps a statement just prepared, finalizing the least recently used beyond the bound; returns the one to use. */
  private keep(sql: string, statement: SqliteStatement): SqliteStatement {
    // Two callers may have prepared the same text at once: the first one kept is used, the other finalized.
    const kept = this.kept(sql);
    if (kept) {
      statement.finalize(() => undefined);
      return kept;
    }
    this.statements.set(sql, statement);
    if (this.statements.size > STATEMENTS_KEPT) {
      const [oldest, evicted] = this.statements.entries().next().value!;
      this.statements.delete(oldest);
      // sqlite3 finalizes it after the runs already asked of it.
      evicted.finalize(() => undefined);
    }
    return statement;
  }

  private connection(): Promise<SqliteConnection> {
    const manager = this.sequelize.connectionManager as unknown as { getConnection(options: object): Promise<SqliteConnection> };
    return manager.getConnection({});
  }
}
