import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sqlite3 from 'sqlite3';
import { ConflictError } from '../../src/errors';
import type { StoreEvent } from '../../src/store/store';
import { Store } from '../../src/store/store';
import { scheduledWhere } from '../../src/store/migrations';
import { QueryTypes } from 'sequelize';
import { requestRun } from '../../src/controller/run-requests';
import { SCHEDULE_DEFAULTS } from '../../src/model/schedule';
import type { ScheduleSpec } from '../../src/model/types';
import { appSpec, POSTGRES_URL, tempSqliteStore, tracedCount, uniqueName } from '../helpers/fixtures';

/** The same cases against each database the store supports. */
const databases: { name: string; open: () => Promise<Store> }[] = [
  { name: 'SQLite', open: async () => (await tempSqliteStore()).store },
  { name: 'PostgreSQL', open: () => Store.open(POSTGRES_URL) },
];

for (const database of databases) {
  describe(`Store on ${database.name}`, () => {
    let store: Store;
    before(async () => {
      store = await database.open();
    });
    after(async () => {
      await store.close();
    });

    const newApp = (labels: Record<string, string> = {}, spec = appSpec()) => store.createApp({ name: uniqueName('st'), labels, spec, source: 'api' });

    it('refuses a duplicate name with ConflictError', async () => {
      const app = await newApp();
      await assert.rejects(
        store.createApp({ name: app.metadata.name, spec: appSpec(), source: 'api' }),
        (err: Error) => err instanceof ConflictError && err.message === `app "${app.metadata.name}" already exists`,
      );
    });

    it('answers creates made at once each with its own App and ADDED event; a name taken, or given twice, fails only its own create', async () => {
      const taken = await newApp();
      const names = Array.from({ length: 40 }, () => uniqueName('st'));
      const twice = uniqueName('st');
      const added: string[] = [];
      const onChange = (event: StoreEvent) => {
        if (event.type === 'ADDED' && event.kind === 'App') added.push(event.object.metadata.name);
      };
      store.on('change', onChange);
      try {
        // The creates after the first wait for its statement and go together in the next (src/store/app-inserts.ts).
        const results = await Promise.allSettled([
          ...names.map((name, i) => store.createApp({ name, labels: { i: String(i) }, spec: appSpec({ env: { AT: String(i) } }), source: 'api' })),
          store.createApp({ name: taken.metadata.name, spec: appSpec(), source: 'api' }),
          store.createApp({ name: twice, spec: appSpec(), source: 'api' }),
          store.createApp({ name: twice, spec: appSpec(), source: 'api' }),
        ]);
        const created = results
          .slice(0, names.length)
          .map((r) => (r.status === 'fulfilled' ? r.value : assert.fail(String((r as PromiseRejectedResult).reason))));
        assert.deepEqual(
          created.map((app) => [app.metadata.name, app.metadata.labels.i, app.spec.env.AT, app.metadata.resourceVersion]),
          names.map((name, i) => [name, String(i), String(i), '1']),
        );
        assert.equal(new Set(created.map((app) => app.id)).size, names.length);
        const refusals = results.slice(names.length).filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        // The taken name, and one of the two creates of the same name.
        assert.equal(refusals.length, 2);
        for (const { reason } of refusals) assert.ok(reason instanceof ConflictError, String(reason));
        assert.deepEqual([...added].sort(), [...names, twice].sort());
        for (const app of created) assert.deepEqual(await store.getApp(app.id), app);
      } finally {
        store.off('change', onChange);
      }
    });

    it('answers reads of one App made at once, by id and by name, each with its own App or null', async () => {
      const apps = await Promise.all(Array.from({ length: 12 }, (_, i) => newApp({ i: String(i) })));
      const refs: (string | number)[] = [...apps.map((app) => app.id), ...apps.map((app) => app.metadata.name), String(apps[3].id), uniqueName('st'), 0];
      // The reads after the first go together in one statement (src/store/gathered-apps.ts).
      const read = await Promise.all(refs.map((ref) => store.getApp(ref)));
      assert.deepEqual(read, [...apps, ...apps, apps[3], null, null]);
      // Each its own: changing one read changes no other.
      read[0]!.metadata.labels.changed = 'yes';
      assert.equal(read[apps.length]!.metadata.labels.changed, undefined);
      assert.deepEqual(await store.getApp(apps[0].id), apps[0]);
    });

    it('bumps resourceVersion on every write and generation on spec changes; refuses a stale write', async () => {
      const app = await newApp();
      const relabelled = await store.updateApp(app.id, { labels: { a: 'b' } }, { resourceVersion: '1' });
      assert.equal(relabelled.metadata.resourceVersion, '2');
      assert.equal(relabelled.metadata.generation, 1);
      const respecced = await store.updateApp(app.id, { spec: appSpec({ retries: 2 }) });
      assert.equal(respecced.metadata.resourceVersion, '3');
      assert.equal(respecced.metadata.generation, 2);
      await assert.rejects(
        store.updateApp(app.id, { labels: {} }, { resourceVersion: '2' }),
        (err: Error) => err instanceof ConflictError && /resourceVersion 2 is stale \(current is 3\)/.test(err.message),
      );
      await assert.rejects(store.deleteApp(app.id, { resourceVersion: '1' }), ConflictError);
    });

    it('lets exactly one of two concurrent writes from the same version win', async () => {
      const app = await newApp();
      const results = await Promise.allSettled([
        store.updateApp(app.id, { labels: { w: '1' } }, { resourceVersion: '1' }),
        store.updateApp(app.id, { labels: { w: '2' } }, { resourceVersion: '1' }),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.ok(rejected.reason instanceof ConflictError);
    });

    it('filters by labels (every pair must match) and pages with a total', async () => {
      const team = uniqueName('team');
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await newApp({ team, parity: i % 2 ? 'odd' : 'even' }));
      const even = await store.listApps({ labels: { team, parity: 'even' } });
      assert.deepEqual(
        even.items.map((a) => a.id),
        [made[0].id, made[2].id, made[4].id],
      );
      assert.equal(even.total, 3);
      const page = await store.listApps({ labels: { team }, limit: 2, offset: 1 });
      assert.deepEqual(
        page.items.map((a) => a.id),
        [made[1].id, made[2].id],
      );
      assert.equal(page.total, 5);
      assert.equal((await store.listApps({ labels: { team: `${team}-none` } })).total, 0);
    });

    it('returns the earlier run for a repeated idempotency key, also under concurrency', async () => {
      const app = await newApp();
      const results = await Promise.all(Array.from({ length: 5 }, () => requestRun(store, app, { idempotencyKey: 'k1' })));
      assert.equal(new Set(results.map((r) => r.run.id)).size, 1);
      assert.equal(results.filter((r) => r.created).length, 1);
      const other = await requestRun(store, app, { idempotencyKey: 'k2' });
      assert.ok(other.created);
      assert.equal((await store.listRuns({ appId: app.id })).total, 2);
    });

    it('refuses a run of a Forbid App while one is active, also under concurrency, and allows it once that run finished', async () => {
      const app = await newApp({}, appSpec({ concurrencyPolicy: 'Forbid' }));
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => requestRun(store, app)));
      const made = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.run] : []));
      assert.equal(made.length, 1);
      for (const refused of results.filter((r) => r.status === 'rejected')) {
        assert.ok(refused.reason instanceof ConflictError);
        assert.match(refused.reason.message, new RegExp(`concurrencyPolicy Forbid and run "${made[0].metadata.name}" is still Pending`));
      }
      await store.mutateRunStatus(made[0].id, (r) => ({ ...r.status, phase: 'Succeeded', exitCode: 0 }));
      const next = await requestRun(store, app);
      assert.ok(next.created);
    });

    it('snapshots the App spec with overrides into the run, lists newest first and by phase', async () => {
      const app = await newApp({}, appSpec({ env: { A: '1', B: '2' } }));
      const first = (await requestRun(store, app, { overrides: { env: { B: 'x' }, command: ['true'] } })).run;
      assert.deepEqual(first.spec.template.env, { A: '1', B: 'x' });
      assert.deepEqual(first.spec.template.command, ['true']);
      const second = (await requestRun(store, app)).run;
      await store.mutateRunStatus(second.id, (r) => ({ ...r.status, phase: 'Running' }));
      const all = await store.listRuns({ appId: app.id });
      assert.deepEqual(
        all.items.map((r) => r.id),
        [second.id, first.id],
      );
      const running = await store.listRuns({ appId: app.id, phases: ['Running'] });
      assert.deepEqual(
        running.items.map((r) => r.id),
        [second.id],
      );
    });

    it('lists only the Apps with a schedule when asked, as the scheduler does', async () => {
      const scheduled = appSpec({ schedule: { ...SCHEDULE_DEFAULTS, cron: '*/5 * * * *' } as ScheduleSpec });
      const label = { scheduled: uniqueName('sc') };
      const [a, , c] = [await newApp(label, scheduled), await newApp(label), await newApp(label, scheduled)];
      const names = async () => (await store.listApps({ labels: label, scheduled: true })).items.map((app) => app.metadata.name);
      assert.deepEqual(await names(), [a.metadata.name, c.metadata.name]);
      await store.updateApp(c.id, { spec: appSpec() });
      assert.deepEqual(await names(), [a.metadata.name]);
    });

    it('lists the distinct files that own Apps, once each', async () => {
      const file = `file:${uniqueName('team')}/jobs.yaml` as const;
      await store.createApp({ name: uniqueName('st'), spec: appSpec(), source: file });
      await store.createApp({ name: uniqueName('st'), spec: appSpec(), source: file });
      await newApp();
      const sources = await store.listFileSources();
      assert.equal(sources.filter((s) => s === file).length, 1);
      assert.ok(sources.every((s) => s.startsWith('file:')));
    });

    it('counts runs by phase', async () => {
      const app = await newApp();
      const before = await store.countRunsByPhase();
      await requestRun(store, app);
      const second = (await requestRun(store, app)).run;
      await store.mutateRunStatus(second.id, (r) => ({ ...r.status, phase: 'Running' }));
      const after = await store.countRunsByPhase();
      assert.equal((after.Pending ?? 0) - (before.Pending ?? 0), 1);
      assert.equal((after.Running ?? 0) - (before.Running ?? 0), 1);
    });

    it('deletes an App with its runs and logs, emitting DELETED for each', async () => {
      const app = await newApp();
      const { run } = await requestRun(store, app);
      await store.setLogs(run.id, { content: 'out\n', droppedBytes: 0 });
      const events: StoreEvent[] = [];
      const listen = (e: StoreEvent) => events.push(e);
      store.on('change', listen);
      try {
        await store.deleteApp(app.metadata.name);
      } finally {
        store.off('change', listen);
      }
      assert.equal(await store.getApp(app.id), null);
      assert.equal(await store.getRun(run.id), null);
      assert.equal(await store.getLogs(run.id), null);
      assert.deepEqual(
        events.filter((e) => e.object.id === app.id || e.object.id === run.id).map((e) => `${e.type} ${e.kind}`),
        ['DELETED App', 'DELETED Run'],
      );
    });
  });
}

describe('Opening a store', () => {
  /** Opens the store at `file` in a process of its own and says whether umzug was loaded to do it. */
  const openAndTell = (file: string): string =>
    execFileSync(
      process.execPath,
      [
        '-e',
        `require(${JSON.stringify(path.join(__dirname, '../../src/store/store'))}).Store.open(${JSON.stringify(file)})
           .then((s) => s.close()).then(() => console.log(Object.keys(require.cache).some((m) => m.includes('/node_modules/umzug/')) ? 'umzug' : 'plain'))`,
      ],
      { encoding: 'utf8' },
    ).trim();

  it('migrates a new SQLite store with umzug, and opens one already up to date without loading it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-open-'));
    try {
      const file = path.join(dir, 'berth.sqlite');
      assert.equal(openAndTell(file), 'umzug');
      assert.equal(openAndTell(file), 'plain');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Listing Apps, read again only when they changed (SQLite)', () => {
  it('shows each App as it is after every kind of write, however often the list was read before', async () => {
    const { store } = await tempSqliteStore();
    try {
      const label = { list: uniqueName('l') };
      const a = await store.createApp({ name: uniqueName('la'), labels: label, spec: appSpec(), source: 'api' });
      const b = await store.createApp({
        name: uniqueName('lb'),
        labels: label,
        spec: appSpec({ schedule: { ...SCHEDULE_DEFAULTS, cron: '* * * * *' } as ScheduleSpec }),
        source: 'api',
      });
      const list = async () => (await store.listApps({ labels: label })).items;
      const first = await list();
      assert.deepEqual(
        first.map((app) => app.metadata.name),
        [a.metadata.name, b.metadata.name],
      );
      // The same objects while nothing changed, and frozen: every reader shares them.
      const again = await list();
      assert.equal(again[0], first[0]);
      assert.ok(Object.isFrozen(again[0].spec.env));

      await store.updateApp(a.id, { spec: appSpec({ image: 'busybox:changed' }) });
      await store.setScheduleStatus(b.id, { lastScheduleTime: '2026-05-01T12:00:00.000Z' }); // no resourceVersion bump
      const changed = await list();
      assert.equal(changed[0].spec.image, 'busybox:changed');
      assert.equal(changed[1].status.schedule?.lastScheduleTime, '2026-05-01T12:00:00.000Z');
      assert.equal(changed[1].metadata.resourceVersion, b.metadata.resourceVersion);

      await store.deleteApp(a.id);
      assert.deepEqual(
        (await list()).map((app) => app.metadata.name),
        [b.metadata.name],
      );
    } finally {
      await store.close();
    }
  });
});

describe('Listing Apps on SQLite, the page kept while the database is unchanged', () => {
  it('reads neither the page nor the count again until a write, from this store or another connection, changes the database', async () => {
    const { store, file } = await tempSqliteStore();
    const other = new sqlite3.Database(file);
    const run = (sql: string, values: unknown[] = []) =>
      new Promise<void>((resolve, reject) => other.run(sql, values, (err) => (err ? reject(err) : resolve())));
    try {
      const scheduled = appSpec({ schedule: { ...SCHEDULE_DEFAULTS, cron: '* * * * *' } as ScheduleSpec });
      for (let i = 0; i < 3; i++) await store.createApp({ name: uniqueName('pm'), spec: scheduled, source: 'api' });
      const pageReads = await tracedCount(store, 'json_group_array');
      const list = () => store.listApps({ limit: 2, offset: 1 });

      const first = await list();
      assert.equal(first.total, 3);
      assert.equal(await pageReads(), 1);
      const again = await list();
      assert.deepEqual(again, first);
      assert.equal(await pageReads(), 1, 'an unchanged database is not read again');

      // Another connection, as another process would: data_version moves.
      await run(`UPDATE apps SET spec = json_set(spec, '$.image', 'busybox:other'), resource_version = resource_version + 1 WHERE id = ?`, [first.items[0].id]);
      const updated = await list();
      assert.equal(updated.items[0].spec.image, 'busybox:other');
      await run(
        `INSERT INTO apps (name, uid, generation, resource_version, source, labels, spec, status, created_at, updated_at) ` +
          `SELECT name || '-copy', uid || '-copy', generation, resource_version, source, labels, spec, status, created_at, updated_at FROM apps WHERE id = ?`,
        [first.items[0].id],
      );
      assert.equal((await list()).total, 4);
      assert.equal(await pageReads(), 3);

      // This store's own connection: total_changes moves.
      await store.setScheduleStatus(first.items[1].id, { lastScheduleTime: '2026-11-29T08:00:00.000Z' });
      assert.equal((await list()).items[1].status.schedule?.lastScheduleTime, '2026-11-29T08:00:00.000Z');
      assert.equal(await pageReads(), 4);
      await list();
      assert.equal(await pageReads(), 4);
    } finally {
      await new Promise((resolve) => other.close(resolve));
      await store.close();
    }
  });
});

describe('The scheduled Apps on SQLite', () => {
  it('are found through their own index, not by reading every App', async () => {
    const { store } = await tempSqliteStore();
    try {
      const plan = (await store.sequelize.query(`EXPLAIN QUERY PLAN SELECT id FROM apps WHERE ${scheduledWhere('sqlite')} ORDER BY id`, {
        type: QueryTypes.SELECT,
      })) as { detail: string }[];
      assert.equal(plan.length, 1);
      assert.match(plan[0].detail, /^SCAN apps USING (COVERING )?INDEX apps_scheduled$/);
    } finally {
      await store.close();
    }
  });
});
