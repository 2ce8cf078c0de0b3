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

/** The part of a sqlite3 Database that plain reads use. */
interface SqliteConnection {
  all(sql: string, values: unknown[], callback: (err: Error | null, rows: unknown[]) => void): void;
  run(sql: string, values: unknown[], callback: (this: { changes: number }, err: Error | null) => void): void;
}

/**
 * Plain SQL for the store's hot paths, beside sequelize's models for the rest.
 * On SQLite it goes straight to the connection: sequelize wraps every query
 * in `serialize()` (one query in flight at a time, each waiting for the
 * previous one's callback) and runs a `PRAGMA table_info` before each model
 * SELECT. Statements use `?` placeholders on both dialects.
 */
export class PlainSql {
  constructor(private readonly sequelize: Sequelize) {}

  /** A SELECT; rows as plain objects. */
  async select<T extends object>(sql: string, values: unknown[]): Promise<T[]> {
    if (this.sequelize.getDialect() !== 'sqlite') {
      return (await this.sequelize.query(sql, { replacements: values, type: QueryTypes.SELECT, raw: true })) as T[];
    }
    const connection = await this.connection();
    return new Promise((resolve, reject) => connection.all(sql, values, (err, rows) => (err ? reject(err) : resolve(rows as T[]))));
  }

  /** An INSERT, UPDATE or DELETE; returns how many rows it changed. */
  async execute(sql: string, values: unknown[]): Promise<number> {
    if (this.sequelize.getDialect() !== 'sqlite') {
      const [, meta] = await this.sequelize.query(sql, { replacements: values, type: QueryTypes.UPDATE, raw: true });
      return Number(meta);
    }
    const connection = await this.connection();
    return new Promise((resolve, reject) =>
      connection.run(sql, values, function (err) {
        if (err) reject(err);
        else resolve(this.changes);
      }),
    );
  }

  /** A timestamp as each dialect's DATE columns hold it. */
  now(): string | Date {
    // sequelize writes SQLite dates as 'YYYY-MM-DD HH:MM:SS.SSS +00:00'; keep the column uniform.
    return this.sequelize.getDialect() === 'sqlite' ? new Date().toISOString().replace('T', ' ').replace('Z', ' +00:00') : new Date();
  }

  private connection(): Promise<SqliteConnection> {
    const manager = this.sequelize.connectionManager as unknown as { getConnection(options: object): Promise<SqliteConnection> };
    return manager.getConnection({});
  }
}
