import assert from 'node:assert/strict';
import { SCHEDULED_AT_LABEL, Scheduler } from '../../src/controller/scheduler';
import { createLogger } from '../../src/log';
import { createMetrics, createRegistry, type BerthMetrics } from '../../src/metrics';
import { SCHEDULE_DEFAULTS } from '../../src/model/schedule';
import type { ScheduleSpec } from '../../src/model/types';
import { Store, type StoredApp, type StoredRun } from '../../src/store/store';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { STORE_DIALECTS, TestClock } from '../helpers/stores';
import { waitFor } from '../helpers/wait';

for (const [dialect, openStore] of STORE_DIALECTS) {
  describe(`Scheduler (real ${dialect} store, injected clock)`, () => {
    let store: Store;
    let drop: (() => Promise<void>) | undefined;
    let clock: TestClock;
    let metrics: BerthMetrics;

    beforeEach(async () => {
      ({ store, drop } = await openStore());
      clock = new TestClock(Date.parse('2026-05-01T12:00:20Z'));
      metrics = createMetrics(createRegistry());
    });
    afterEach(async () => {
      await store.close();
      await drop?.();
    });

    const scheduler = () => new Scheduler({ store, clock: clock.now, metrics, tickMs: 10, logger: createLogger('silent') });
    const scheduledApp = (fields: Partial<ScheduleSpec> = {}, spec = {}): Promise<StoredApp> =>
      store.createApp({
        name: uniqueName('sched'),
        source: 'api',
        spec: appSpec({ ...spec, schedule: { ...SCHEDULE_DEFAULTS, cron: '* * * * *', ...fields } as ScheduleSpec }),
      });
    const runNames = async (app: StoredApp) => (await store.listRuns({ appId: app.id })).items.map((r) => r.metadata.name).sort();
    const minutes = (iso: string) => Date.parse(iso) / 60_000;

    it('makes one run per due time, named after it, however often and by however many schedulers it is asked', async () => {
      const app = await scheduledApp();
      await scheduler().tick(); // first sight at 12:00:20: 12:00 is the latest due time, nothing is owed before it
      assert.deepEqual(await runNames(app), []);

      clock.set('2026-05-01T12:01:00.300Z');
      await scheduler().tick();
      await scheduler().tick(); // a restarted berth
      // A crash after the insert but before the bookkeeping: the due time is asked for again, and finds its run.
      await store.setScheduleStatus(app.id, { lastScheduleTime: '2026-05-01T12:00:00.000Z' });
      await Promise.all([scheduler().tick(), scheduler().tick()]);
      assert.deepEqual(await runNames(app), [`${app.metadata.name}-${minutes('2026-05-01T12:01:00Z')}`]);

      const [run] = (await store.listRuns({ appId: app.id })).items;
      assert.equal(run.metadata.labels[SCHEDULED_AT_LABEL], String(minutes('2026-05-01T12:01:00Z')));
      const after = await store.mustGetApp(app.id);
      assert.deepEqual(after.status.schedule, { lastScheduleTime: '2026-05-01T12:01:00.000Z', nextScheduleTime: '2026-05-01T12:02:00.000Z' });
      // Bookkeeping, not a change of the App: a client's resourceVersion stays good.
      assert.equal(after.metadata.resourceVersion, app.metadata.resourceVersion);
      const lateness = await metrics.scheduleLateness.get();
      assert.equal(lateness.values.find((v) => v.metricName === 'berth_schedule_lateness_seconds_count')?.value, 1);
      assert.equal(lateness.values.find((v) => v.metricName === 'berth_schedule_lateness_seconds_sum')?.value, 0.3);
    });

    it('says when the earliest next run is due, jitter included, so the loop wakes then and not a tick later', async () => {
      await scheduledApp({ cron: '*/5 * * * *' });
      const jittered = await scheduledApp({ cron: '* * * * *', jitterSeconds: 30 });
      await scheduledApp({ suspend: true });
      clock.set('2026-05-01T12:00:40Z');
      const nextFire = await scheduler().tick();
      const due = Date.parse('2026-05-01T12:01:00Z');
      // The jittered App's next due time is 12:01, fired at most 30 s after it (jitter is in [0, 30] s): before the */5 App's 12:05.
      assert.ok(nextFire !== undefined && nextFire >= due && nextFire <= due + 30_000, `next fire ${nextFire && new Date(nextFire).toISOString()}`);
      assert.equal((await store.mustGetApp(jittered.id)).status.schedule?.nextScheduleTime, '2026-05-01T12:01:00.000Z');
      await store.deleteApp(jittered.id);
      assert.equal(await scheduler().tick(), Date.parse('2026-05-01T12:05:00Z'));
    });

    for (const [policy, expected] of [
      ['RunAll', ['12:02', '12:03', '12:04', '12:05']],
      ['RunOnce', ['12:05']],
      ['Skip', []],
    ] as const) {
      it(`after berth was down from 12:01 to 12:05:30, ${policy} makes runs for ${expected.length ? expected.join(', ') : 'none'}`, async () => {
        const app = await scheduledApp({ missedRunPolicy: policy });
        clock.set('2026-05-01T12:01:00Z');
        await scheduler().tick();
        clock.set('2026-05-01T12:05:30Z');
        await scheduler().tick();
        assert.deepEqual(await runNames(app), expected.map((hm) => `${app.metadata.name}-${minutes(`2026-05-01T${hm}:00Z`)}`).sort());
        assert.equal((await store.mustGetApp(app.id)).status.schedule?.lastScheduleTime, '2026-05-01T12:05:00.000Z');
      });
    }

    it('makes no run while suspended, and treats the suspended time as missed when resumed', async () => {
      const app = await scheduledApp({ suspend: true });
      for (const t of ['12:00:20', '12:01:00', '12:02:00', '12:03:00']) {
        clock.set(`2026-05-01T${t}Z`);
        await scheduler().tick();
      }
      assert.deepEqual(await runNames(app), []);
      assert.deepEqual((await store.mustGetApp(app.id)).status.schedule, { lastScheduleTime: '2026-05-01T12:00:00.000Z' });

      await store.updateApp(app.id, { spec: { ...app.spec, schedule: { ...app.spec.schedule!, suspend: false } } });
      clock.set('2026-05-01T12:03:40Z');
      await scheduler().tick();
      assert.deepEqual(await runNames(app), [`${app.metadata.name}-${minutes('2026-05-01T12:03:00Z')}`]);
    });

    it('makes the runs of every App due at once together, and a run refused for one App does not hold up the others', async () => {
      const apps = await Promise.all(Array.from({ length: 20 }, () => scheduledApp()));
      await scheduler().tick();
      // A run made by hand under the name 12:01's scheduled run of one App will want.
      const taken = apps[7];
      await store.insertRun(taken, {
        name: `${taken.metadata.name}-${minutes('2026-05-01T12:01:00Z')}`,
        spec: { app: taken.metadata.name, template: taken.spec },
      });
      const ours = new Set(apps.map((app) => app.id));
      const inStoreAtFirstEvent: number[] = [];
      store.on('change', (event) => {
        if (event.type !== 'ADDED' || event.kind !== 'Run' || !ours.has(event.object.appId) || inStoreAtFirstEvent.length) return;
        inStoreAtFirstEvent.push(-1);
        void store.listRuns({ limit: 1000 }).then((page) => (inStoreAtFirstEvent[0] = page.items.filter((r) => ours.has(r.appId)).length));
      });

      clock.set('2026-05-01T12:01:00.200Z');
      await scheduler().tick();
      for (const app of apps) {
        const names = await runNames(app);
        assert.deepEqual(names, [`${app.metadata.name}-${minutes('2026-05-01T12:01:00Z')}`], app.metadata.name);
        assert.equal((await store.mustGetApp(app.id)).status.schedule?.lastScheduleTime, '2026-05-01T12:01:00.000Z');
      }
      const scheduled = (await store.listRuns({ limit: 1000 })).items.filter((r) => ours.has(r.appId) && r.metadata.labels[SCHEDULED_AT_LABEL]);
      assert.equal(scheduled.length, 19, 'every App but the one whose run name was taken');
      await waitFor('the count taken at the first ADDED event', () => inStoreAtFirstEvent[0] >= 0);
      // No run was announced before the last of them was in: made together, not one by one.
      assert.equal(inStoreAtFirstEvent[0], 20);
    });

    it('makes 300 due runs at once while other writes go on, none of which waits for the lock or fails', async () => {
      const apps = await Promise.all(Array.from({ length: 300 }, () => scheduledApp()));
      await scheduler().tick();
      const busy: StoredRun[] = [];
      for (const app of apps.slice(0, 16))
        busy.push(((await store.insertRun(app, { name: uniqueName('busy'), spec: { app: app.metadata.name, template: app.spec } })) as { run: StoredRun }).run);
      // The controller's kind of writes, many at once, as fast as they go, for as long as the due runs take.
      let writing = true;
      let writes = 0;
      let slowest = 0;
      const writer = Promise.all(
        busy.map(async (run) => {
          while (writing) {
            const started = Date.now();
            await store.mutateRunStatus(run.id, (current) => ({ ...current.status, message: `write ${writes}` }));
            slowest = Math.max(slowest, Date.now() - started);
            writes++;
          }
        }),
      );
      clock.set('2026-05-01T12:01:00.100Z');
      const started = Date.now();
      await scheduler().tick();
      const took = Date.now() - started;
      writing = false;
      await writer;
      assert.equal((await store.listRuns({ limit: 1000 })).items.filter((r) => r.metadata.labels[SCHEDULED_AT_LABEL]).length, 300);
      assert.ok(writes > 0, 'the other writes went on');
      // Waiting out the busy timeout (5 s) would mean a write stood in line behind a lock held across statements.
      assert.ok(slowest < 4000, `the slowest other write took ${slowest} ms (the due runs ${took} ms)`);
    });

    it('gives a due time no run while a Forbid App still has one going, and moves on', async () => {
      const app = await scheduledApp({}, { concurrencyPolicy: 'Forbid' });
      await scheduler().tick();
      clock.set('2026-05-01T12:01:00Z');
      await scheduler().tick();
      clock.set('2026-05-01T12:02:00Z');
      await scheduler().tick(); // 12:01's run is still Pending
      assert.deepEqual(await runNames(app), [`${app.metadata.name}-${minutes('2026-05-01T12:01:00Z')}`]);
      assert.equal((await store.mustGetApp(app.id)).status.schedule?.lastScheduleTime, '2026-05-01T12:02:00.000Z');
    });
  });
}
