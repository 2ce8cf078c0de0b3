/**
 * Reads of one App on SQLite answered from memory (src/store/known-apps.ts),
 * on real SQLite files: kept after the first read, forgotten by every App
 * write of the store, never keeping what a read in flight across a write
 * found, and another connection's write seen within the check time.
 */
import assert from 'node:assert/strict';
import sqlite3 from 'sqlite3';
import { SCHEDULE_DEFAULTS } from '../../src/model/schedule';
import type { ScheduleSpec } from '../../src/model/types';
import { KnownApps } from '../../src/store/known-apps';
import { PlainSql } from '../../src/store/plain-sql';
import type { Store, StoredApp } from '../../src/store/store';
import { appSpec, tempSqliteStore, tracedCount, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

/** The statement a read of one App makes (src/store/gathered-apps.ts). */
const ONE_APP_READ = 'AS rows FROM apps WHERE';

describe('Reads of one App on SQLite, from memory while unchanged', () => {
  let store: Store;
  let file: string;
  beforeEach(async () => {
    ({ store, file } = await tempSqliteStore());
  });
  afterEach(async () => {
    await store.close();
  });

  const create = (image = 'busybox:1') => store.createApp({ name: uniqueName('known'), spec: appSpec({ image }), source: 'api' });

  it('reads an App once, then answers by id and by name from memory, frozen and shared', async () => {
    const app = await create();
    const reads = await tracedCount(store, ONE_APP_READ);

    const first = await store.mustReadApp(app.id);
    assert.equal(await reads(), 1);
    const byId = await store.mustReadApp(String(app.id));
    const byName = await store.mustReadApp(app.metadata.name);
    assert.equal(await reads(), 1, 'no statement for an App read before');
    assert.equal(byId, first);
    assert.equal(byName, first);
    assert.ok(Object.isFrozen(first) && Object.isFrozen(first.spec) && Object.isFrozen(first.spec.command), 'frozen to its leaves');
    assert.deepEqual(first, app);
    // The store's own reads are the caller's to change, as before.
    assert.equal(Object.isFrozen(await store.mustGetApp(app.id)), false);
  });

  it('sees each of its own App writes at once: update, schedule bookkeeping, delete, create', async () => {
    const app = await store.createApp({
      name: uniqueName('known'),
      spec: appSpec({ schedule: { ...SCHEDULE_DEFAULTS, cron: '* * * * *' } as ScheduleSpec }),
      source: 'api',
    });
    await store.mustReadApp(app.id);

    const updated = await store.updateApp(app.id, { spec: { ...app.spec, image: 'busybox:2' } });
    const read = await store.mustReadApp(app.metadata.name);
    assert.equal(read.spec.image, 'busybox:2');
    assert.equal(read.metadata.resourceVersion, updated.metadata.resourceVersion);

    const lastScheduleTime = new Date().toISOString();
    await store.setScheduleStatus(app.id, { lastScheduleTime });
    assert.equal((await store.mustReadApp(app.id)).status.schedule?.lastScheduleTime, lastScheduleTime);

    // A write refused (a stale resourceVersion) changes nothing, and the App read after it is as it is.
    await assert.rejects(store.updateApp(app.id, { spec: { ...app.spec, image: 'busybox:3' } }, { resourceVersion: app.metadata.resourceVersion }), /modified/);
    assert.equal((await store.mustReadApp(app.id)).spec.image, 'busybox:2');

    await store.deleteApp(app.id);
    assert.equal(await store.readApp(app.id), null);
    assert.equal(await store.readApp(app.metadata.name), null);

    // An App not there is not kept as missing: created, it is read.
    const name = uniqueName('known');
    assert.equal(await store.readApp(name), null);
    await store.createApps([{ name, spec: appSpec(), source: 'api' }]);
    assert.equal((await store.mustReadApp(name)).metadata.name, name);
  });

  it('has forgotten the App by the time its change event is heard', async () => {
    const app = await create();
    await store.mustReadApp(app.id);
    const heard: Promise<Readonly<StoredApp> | null>[] = [];
    // Read in the listener itself, in the same turn as the event.
    store.on('change', (event) => {
      if (event.kind === 'App') heard.push(store.readApp(app.id));
    });
    await store.updateApp(app.id, { spec: { ...app.spec, image: 'busybox:heard' } });
    assert.equal(heard.length, 1);
    assert.equal((await heard[0])?.spec.image, 'busybox:heard');
  });

  it('answers many reads racing many writes with each write seen once it has returned', async () => {
    const app = await create();
    for (let i = 0; i < 30; i++) {
      const image = `busybox:race-${i}`;
      const reads = Array.from({ length: 5 }, () => store.readApp(app.id));
      const write = store.mustGetApp(app.id).then((current) => store.updateApp(app.id, { spec: { ...current.spec, image } }));
      await Promise.all([...reads, write]);
      assert.equal((await store.mustReadApp(app.id)).spec.image, image, `after write ${i}`);
    }
  });

  it('sees another connection’s update and delete within the check time', async () => {
    const app = await create();
    const gone = await create();
    await store.mustReadApp(app.id);
    await store.mustReadApp(gone.id);
    const other = new sqlite3.Database(file);
    const run = (sql: string, values: unknown[]) => new Promise<void>((resolve, reject) => other.run(sql, values, (err) => (err ? reject(err) : resolve())));
    try {
      // As another process, or a hand edit, would.
      await run(`UPDATE apps SET spec = json_set(spec, '$.image', 'busybox:other'), resource_version = resource_version + 1 WHERE id = ?`, [app.id]);
      await run('DELETE FROM apps WHERE id = ?', [gone.id]);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
    await waitFor('the other connection’s update', async () => (await store.mustReadApp(app.id)).spec.image === 'busybox:other', { timeoutMs: 2000 });
    assert.equal(await store.readApp(gone.id), null);
  });
});

describe('Known Apps, with a read the test holds', () => {
  let store: Store;
  let sql: PlainSql;
  /** Reads of the database the cache asked for, each answered when the test says. */
  let pending: { ref: string | number; answer: () => Promise<void> }[];
  const held = (ref: string | number): Promise<StoredApp | null> =>
    new Promise((resolve, reject) => {
      pending.push({ ref, answer: () => store.getApp(ref).then(resolve, reject) });
    });
  const asked = () => waitFor('the cache to read the database', () => pending.length > 0);

  beforeEach(async () => {
    ({ store } = await tempSqliteStore());
    sql = new PlainSql(store.sequelize);
    pending = [];
  });
  afterEach(async () => {
    await sql.close();
    await store.close();
  });

  it('keeps nothing a read found while it was in flight across a forget', async () => {
    const app = await store.createApp({ name: uniqueName('known'), spec: appSpec(), source: 'api' });
    const known = new KnownApps(sql, held);
    const reading = known.get(app.id);
    await asked();
    // A write ends while the read is in flight: what it read may be the App as before.
    known.forget();
    await pending.shift()!.answer();
    assert.equal((await reading)?.id, app.id, 'answered all the same');

    const again = known.get(app.id);
    await asked();
    await pending.shift()!.answer();
    assert.equal((await again)?.id, app.id);
    // Kept this time: no read of the database.
    assert.equal(await known.get(app.id), await again);
    assert.equal(pending.length, 0);
  });

  it('keeps at most its capacity of Apps, the earliest kept going first', async () => {
    const apps = [];
    for (let i = 0; i < 3; i++) apps.push(await store.createApp({ name: uniqueName('known'), spec: appSpec(), source: 'api' }));
    const known = new KnownApps(sql, (ref) => store.getApp(ref), 100, 2);
    for (const app of apps) await known.get(app.id);
    const reads = await tracedCount(store, ONE_APP_READ);
    await known.get(apps[2].id);
    await known.get(apps[1].metadata.name);
    assert.equal(await reads(), 0, 'the last two kept');
    await known.get(apps[0].id);
    assert.equal(await reads(), 1, 'the first one read again');
  });
});
