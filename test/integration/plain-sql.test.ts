import assert from 'node:assert/strict';
import sqlite3 from 'sqlite3';
import { PlainSql } from '../../src/store/plain-sql';
import { tempSqliteStore } from '../helpers/fixtures';

describe('Plain SQL on SQLite, each statement prepared once and kept', () => {
  /** The store's own connection, its prepares counted (the real method, called through). */
  async function countedPrepares(sequelize: { connectionManager: unknown }): Promise<{ connection: sqlite3.Database; prepares: string[] }> {
    const manager = sequelize.connectionManager as { getConnection(options: object): Promise<sqlite3.Database> };
    const connection = await manager.getConnection({});
    const prepares: string[] = [];
    const prepare = connection.prepare.bind(connection) as (...args: unknown[]) => sqlite3.Statement;
    (connection as unknown as { prepare: (...args: unknown[]) => sqlite3.Statement }).prepare = (...args: unknown[]) => {
      prepares.push(args[0] as string);
      return prepare(...args);
    };
    return { connection, prepares };
  }

  /**
   * After another write, a TRUNCATE checkpoint from another connection: busy (1) while a
   * connection still reads a snapshot from before that write (a statement not run to its end).
   */
  async function checkpointBusy(other: sqlite3.Database): Promise<number> {
    await new Promise<void>((resolve, reject) => other.run('INSERT INTO t VALUES (0)', (err) => (err ? reject(err) : resolve())));
    return new Promise((resolve, reject) =>
      other.get('PRAGMA wal_checkpoint(TRUNCATE)', (err, row: { busy: number }) => (err ? reject(err) : resolve(row.busy))),
    );
  }

  /** A fresh store with plain SQL of its own over the store's connection; both closed after `test`, which fails if a statement is left open. */
  async function withSql(test: (t: { sql: PlainSql; file: string; connection: sqlite3.Database; prepares: string[] }) => Promise<void>): Promise<void> {
    const { store, file } = await tempSqliteStore();
    const sql = new PlainSql(store.sequelize);
    try {
      await test({ sql, file, ...(await countedPrepares(store.sequelize)) });
    } finally {
      await sql.close();
      // SQLite refuses to close a connection with a statement still open: this would reject.
      await store.close();
    }
  }

  it('prepares a statement once, holds no read between runs, and closes with the connection', () =>
    withSql(async ({ sql, file, connection, prepares }) => {
      const other = new sqlite3.Database(file);
      try {
        for (let i = 0; i < 5; i++) assert.deepEqual(await sql.select('SELECT ? AS n', [i]), [{ n: i }]);
        assert.equal(await sql.execute('UPDATE apps SET generation = generation WHERE id = ?', [-1]), 0);
        assert.deepEqual(prepares, ['SELECT ? AS n', 'UPDATE apps SET generation = generation WHERE id = ?']);

        // A kept statement ran to its end, which ended its read: another connection can checkpoint the whole log.
        await new Promise<void>((resolve, reject) =>
          other.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3)', (err) => (err ? reject(err) : resolve())),
        );
        assert.deepEqual(await sql.select('SELECT x FROM t ORDER BY x', []), [{ x: 1 }, { x: 2 }, { x: 3 }]);
        assert.equal(await checkpointBusy(other), 0);
        // The check sees a read held open: a statement stepped once and not finished.
        const halfRun = connection.prepare('SELECT x FROM t');
        await new Promise<void>((resolve, reject) => halfRun.get((err) => (err ? reject(err) : resolve())));
        assert.equal(await checkpointBusy(other), 1);
        await new Promise<void>((resolve) => halfRun.finalize(() => resolve()));
        assert.equal(await checkpointBusy(other), 0);
      } finally {
        await new Promise((resolve) => other.close(resolve));
      }
    }));

  it('gives bad SQL its SQLite error every time, keeps nothing of it, and goes on', () =>
    withSql(async ({ sql, prepares }) => {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(sql.select('SELECT x FROM no_such_table', []), /SQLITE_ERROR: no such table: no_such_table/);
      }
      assert.equal(prepares.length, 2, 'a statement that failed to prepare is prepared again, not kept');
      assert.deepEqual(await sql.select('SELECT 1 AS one', []), [{ one: 1 }]);
    }));

  it('keeps nothing prepared while it was closing, so the connection still closes', async () => {
    const { store } = await tempSqliteStore();
    const sql = new PlainSql(store.sequelize);
    await sql.select('SELECT 1 AS one', []);
    const late = assert.rejects(sql.select('SELECT 2 AS two', []), /the store is closed/);
    await sql.close();
    // SQLite refuses to close a connection with a statement still open: this would reject.
    await store.close();
    await late;
  });

  it('keeps a bounded number: more distinct statements than it keeps all answer, concurrently too, and the store still closes', () =>
    withSql(async ({ sql, prepares }) => {
      const texts = Array.from({ length: 300 }, (_, i) => `SELECT ? + ${i} AS n`);
      const answers = await Promise.all([...texts, ...texts].map((text, i) => sql.select<{ n: number }>(text, [i])));
      assert.deepEqual(
        answers.map(([row]) => row.n),
        [...texts, ...texts].map((_, i) => i + (i % 300)),
      );
      // The first texts were evicted (finalized) since: they are prepared again, and answer.
      assert.deepEqual(await sql.select('SELECT ? + 0 AS n', [7]), [{ n: 7 }]);
      assert.ok(prepares.length > 300, `${prepares.length} prepares`);
    }));
});
