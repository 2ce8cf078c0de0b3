import assert from 'node:assert/strict';
import path from 'node:path';
import { QueryTypes, Sequelize } from 'sequelize';
import { requestRun } from '../../src/controller/run-requests';
import { NotFoundError } from '../../src/errors';
import { connect } from '../../src/store/db';
import { migrate } from '../../src/store/migrations';
import { Store, type StoreEvent, type StoredApp } from '../../src/store/store';
import { appSpec, POSTGRES_URL, tempDir, uniqueName } from '../helpers/fixtures';

/** A database of its own for each suite: the migration test starts from an empty schema. */
interface Database {
  name: string;
  /** A location no other test uses, and how to drop it afterwards. */
  create(): Promise<{ location: string; drop(): Promise<void> }>;
  /** A trigger that makes deleting `runId`'s logs fail, and how to remove it. */
  failingTrigger(name: string, runId: number): { create: string[]; drop: string[] };
}

const databases: Database[] = [
  {
    name: 'SQLite',
    create: async () => ({ location: path.join(tempDir(), 'berth.sqlite'), drop: async () => undefined }),
    failingTrigger: (name, runId) => ({
      create: [`CREATE TRIGGER ${name} BEFORE DELETE ON run_logs WHEN OLD.run_id = ${runId} BEGIN SELECT RAISE(ABORT, 'the disk failed'); END`],
      drop: [`DROP TRIGGER ${name}`],
    }),
  },
  {
    name: 'PostgreSQL',
    async create() {
      const database = uniqueName('berth_test').replace(/-/g, '_');
      const admin = new Sequelize(POSTGRES_URL, { logging: false });
      await admin.query(`CREATE DATABASE ${database}`);
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${database}`;
      return {
        location: url.toString(),
        async drop() {
          await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
          await admin.close();
        },
      };
    },
    failingTrigger: (name, runId) => ({
      create: [
        `CREATE FUNCTION ${name}() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the disk failed'; END $$ LANGUAGE plpgsql`,
        `CREATE TRIGGER ${name} BEFORE DELETE ON run_logs FOR EACH ROW WHEN (OLD.run_id = ${runId}) EXECUTE FUNCTION ${name}()`,
      ],
      drop: [`DROP TRIGGER ${name} ON run_logs`, `DROP FUNCTION ${name}()`],
    }),
  },
];

for (const database of databases) {
  describe(`Deleting an App on ${database.name}`, () => {
    let location: string;
    let drop: () => Promise<void>;
    let store: Store;
    /** A second store on the same database: another replica, or just another connection. */
    let other: Store;
    before(async () => {
      ({ location, drop } = await database.create());
      store = await Store.open(location);
      other = await Store.open(location);
    });
    after(async () => {
      await other?.close();
      await store?.close();
      await drop?.();
    });

    const count = async (sql: string, id: number): Promise<number> => {
      const [row] = (await store.sequelize.query(sql, { replacements: { id }, type: QueryTypes.SELECT })) as { count: number | string }[];
      return Number(row.count);
    };
    /** Rows of the App, its runs, their logs and launch records, counted in the database itself. */
    const rowsOf = async (app: StoredApp) => ({
      apps: await count('SELECT COUNT(*) AS count FROM apps WHERE id = :id', app.id),
      runs: await count('SELECT COUNT(*) AS count FROM runs WHERE app_id = :id', app.id),
      logs: await count('SELECT COUNT(*) AS count FROM run_logs WHERE run_id IN (SELECT id FROM runs WHERE app_id = :id)', app.id),
      launches: await count('SELECT COUNT(*) AS count FROM run_launches WHERE run_id IN (SELECT id FROM runs WHERE app_id = :id)', app.id),
    });
    /** A term launches can be recorded under (written directly: takeOver is PostgreSQL's, for leader election). */
    const leaderTerm = async () => {
      const term = { name: uniqueName('lock'), holder: 'me', epoch: 1 };
      await store.sequelize
        .getQueryInterface()
        .bulkInsert('leadership', [{ name: term.name, holder: term.holder, epoch: term.epoch, acquired_at: new Date() }]);
      return term;
    };
    const recordEvents = (on: Store): { events: StoreEvent[]; stop(): void } => {
      const events: StoreEvent[] = [];
      const listen = (e: StoreEvent): void => void events.push(e);
      on.on('change', listen);
      return { events, stop: () => on.off('change', listen) };
    };

    it('leaves the App, its runs, logs and launch records as they were when the delete fails halfway, and emits nothing', async () => {
      const app = await store.createApp({ name: uniqueName('del'), spec: appSpec(), source: 'api' });
      const runs = [(await requestRun(store, app)).run, (await requestRun(store, app)).run];
      const term = await leaderTerm();
      for (const run of runs) {
        await store.setLogs(run.id, { content: `output of ${run.metadata.name}\n`, droppedBytes: 0 });
        assert.equal(await store.leadership.recordLaunch(term, { runId: run.id, attempt: 1, workload: `w-${run.id}` }), true);
      }
      const before = await rowsOf(app);
      assert.deepEqual(before, { apps: 1, runs: 2, logs: 2, launches: 2 });

      // The second run's logs cannot be deleted: the database fails in the middle of the delete.
      const trigger = database.failingTrigger(uniqueName('fail').replace(/-/g, '_'), runs[1].id);
      for (const sql of trigger.create) await store.sequelize.query(sql);
      const recorded = recordEvents(store);
      try {
        // sequelize wraps SQLite's RAISE as a constraint error; the database's words are in its parent.
        await assert.rejects(store.deleteApp(app.id), (err: Error & { parent?: Error }) => /the disk failed/.test(err.parent?.message ?? err.message));
      } finally {
        recorded.stop();
        for (const sql of trigger.drop) await store.sequelize.query(sql);
      }
      assert.deepEqual(await rowsOf(app), before);
      assert.deepEqual(await store.mustGetApp(app.id), app);
      assert.equal((await store.getLogs(runs[0].id))?.content, `output of ${runs[0].metadata.name}\n`);
      assert.deepEqual(recorded.events, []);

      // And once the database works again, all of it goes.
      await store.deleteApp(app.id);
      assert.deepEqual(await rowsOf(app), { apps: 0, runs: 0, logs: 0, launches: 0 });
    });

    it('leaves no run behind when runs are asked for while the App is deleted: each is deleted with it or refused as not found', async () => {
      const app = await store.createApp({ name: uniqueName('race'), spec: appSpec(), source: 'api' });
      await requestRun(store, app);
      const recorded = recordEvents(store);
      try {
        // Runs asked for through both stores (this process, and another connection or replica) around the delete.
        const asks = Array.from({ length: 12 }, (_, i) => requestRun(i % 2 ? other : store, app));
        const deleted = store.deleteApp(app.id);
        const late = deleted.then(() => requestRun(other, app));
        const results = await Promise.allSettled([...asks, late]);
        await deleted;

        const deletedRuns = new Set(recorded.events.filter((e) => e.type === 'DELETED' && e.kind === 'Run').map((e) => e.object.id));
        for (const result of results) {
          if (result.status === 'fulfilled') {
            assert.ok(deletedRuns.has(result.value.run.id), `run ${result.value.run.metadata.name} was created but not deleted with its App`);
          } else {
            assert.ok(result.reason instanceof NotFoundError, `expected NotFoundError, got ${result.reason}`);
            assert.equal(result.reason.message, `app "${app.metadata.name}" not found: it was deleted as the run was asked for; no run was created`);
            assert.equal(result.reason.status, 404);
          }
        }
        assert.equal(results.at(-1)?.status, 'rejected', 'a run asked for after the delete must be refused');
        assert.deepEqual(await rowsOf(app), { apps: 0, runs: 0, logs: 0, launches: 0 });
      } finally {
        recorded.stop();
      }
    });

    it('ignores the logs and refuses the launch of a run deleted since it was read', async () => {
      const app = await store.createApp({ name: uniqueName('gone'), spec: appSpec(), source: 'api' });
      const { run } = await requestRun(store, app);
      const term = await leaderTerm();
      await store.deleteApp(app.id);
      await store.setLogs(run.id, { content: 'late output\n', droppedBytes: 0 });
      assert.equal(await store.getLogs(run.id), null);
      assert.equal(await store.leadership.recordLaunch(term, { runId: run.id, attempt: 1, workload: 'w' }), false);
    });

    it('migrates a store with orphaned rows: the orphans go, the rest stays, and the keys cascade from then on', async () => {
      const fresh = await database.create();
      const sequelize = await connect(fresh.location);
      try {
        await migrate(sequelize, { to: '0003-leadership-and-launches' });
        const now = new Date();
        const insert = (table: string, row: Record<string, unknown>) => sequelize.getQueryInterface().bulkInsert(table, [row]);
        const json = (value: unknown) => JSON.stringify(value);
        await insert('apps', {
          id: 1,
          name: 'kept',
          uid: 'u-app',
          generation: 1,
          resource_version: 1,
          source: 'api',
          labels: json({}),
          spec: json(appSpec()),
          status: json({ source: 'api' }),
          created_at: now,
          updated_at: now,
        });
        const run = (id: number, appId: number) => ({
          id,
          name: `run-${id}`,
          uid: `u-run-${id}`,
          app_id: appId,
          app_name: 'x',
          generation: 1,
          resource_version: 1,
          phase: 'Succeeded',
          idempotency_key: null,
          labels: json({}),
          spec: json({}),
          status: json({ phase: 'Succeeded' }),
          created_at: now,
          updated_at: now,
        });
        await insert('runs', run(1, 1));
        await insert('runs', run(2, 99)); // its App is gone
        for (const runId of [1, 2, 3]) {
          await insert('run_logs', { run_id: runId, content: 'x', dropped_bytes: 0, updated_at: now });
          await insert('run_launches', { run_id: runId, attempt: 1, workload: 'w', holder: 'h', epoch: 1, launched_at: now });
        }

        // 0004 first; later migrations follow it.
        assert.equal((await migrate(sequelize))[0], '0004-cascading-keys');
        const ids = async (table: string, column: string) =>
          ((await sequelize.query(`SELECT ${column} AS id FROM ${table} ORDER BY ${column}`, { type: QueryTypes.SELECT })) as { id: number }[]).map((r) =>
            Number(r.id),
          );
        assert.deepEqual(await ids('runs', 'id'), [1]);
        assert.deepEqual(await ids('run_logs', 'run_id'), [1]);
        assert.deepEqual(await ids('run_launches', 'run_id'), [1]);
        if (database.name === 'SQLite') {
          // Every connection enforces the keys, a transaction's own included.
          const [pragma] = (await sequelize.transaction((transaction) => sequelize.query('PRAGMA foreign_keys', { type: QueryTypes.SELECT, transaction }))) as {
            foreign_keys: number;
          }[];
          assert.equal(pragma.foreign_keys, 1);
        }
        await sequelize.query('DELETE FROM apps WHERE id = 1');
        assert.deepEqual([await ids('runs', 'id'), await ids('run_logs', 'run_id'), await ids('run_launches', 'run_id')], [[], [], []]);
        await assert.rejects(insert('runs', run(3, 1)), /foreign key/i);
      } finally {
        await sequelize.close();
        await fresh.drop();
      }
    });
  });
}
