import assert from 'node:assert/strict';
import { Notifier } from '../../src/controller/notifier';
import { Scheduler } from '../../src/controller/scheduler';
import { createLogger } from '../../src/log';
import { createMetrics, createRegistry, type BerthMetrics } from '../../src/metrics';
import { SCHEDULE_DEFAULTS } from '../../src/model/schedule';
import type { NotifyWebhook, RunStatus, ScheduleSpec } from '../../src/model/types';
import { Store, type StoredApp, type StoredRun } from '../../src/store/store';
import type { Registry } from 'prom-client';
import { startTestApi } from '../helpers/api';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { signatureIsValid, startReceiver, type Receiver } from '../helpers/notification-receiver';
import { STORE_DIALECTS, TestClock } from '../helpers/stores';
import { waitFor } from '../helpers/wait';

const SECRET_ENV = 'BERTH_TEST_NOTIFY_SECRET';
const SECRET = 'a-webhook-secret-for-tests';

for (const [dialect, openStore] of STORE_DIALECTS) {
  describe(`Notifier (real ${dialect} store, real HTTP receivers, injected clock)`, () => {
    let store: Store;
    let drop: (() => Promise<void>) | undefined;
    let clock: TestClock;
    let registry: Registry;
    let metrics: BerthMetrics;
    const receivers: Receiver[] = [];
    const stops: AbortController[] = [];
    const running: Promise<void>[] = [];

    before(() => (process.env[SECRET_ENV] = SECRET));
    after(() => delete process.env[SECRET_ENV]);
    beforeEach(async () => {
      ({ store, drop } = await openStore());
      clock = new TestClock(Date.parse('2026-05-01T12:00:20Z'));
      registry = createRegistry();
      metrics = createMetrics(registry);
    });
    afterEach(async () => {
      for (const stop of stops.splice(0)) stop.abort();
      await Promise.all(running.splice(0));
      for (const receiver of receivers.splice(0)) await receiver.close();
      await store.close();
      await drop?.();
    });

    const receiver = async (statuses?: (number | 'hang')[]) => {
      const made = await startReceiver(statuses);
      receivers.push(made);
      return made;
    };
    const startNotifier = (options: Partial<ConstructorParameters<typeof Notifier>[0]> = {}) => {
      const notifier = new Notifier({
        store,
        clock: clock.now,
        metrics,
        pollMs: 10,
        logger: createLogger('silent'),
        publicUrl: 'https://berth.example/',
        ...options,
      });
      const stop = new AbortController();
      stops.push(stop);
      running.push(notifier.start(stop.signal));
      return { notifier, stop: async () => (stop.abort(), await running[running.length - 1]) };
    };
    const appWith = (notify: NotifyWebhook[], fields = {}): Promise<StoredApp> =>
      store.createApp({ name: uniqueName('notify'), source: 'api', spec: appSpec({ notify, ...fields }) });
    /** A run of `app` that ends in `phase`, written as the controller writes it. */
    const finishedRun = async (app: StoredApp, phase: 'Succeeded' | 'Failed'): Promise<StoredRun> => {
      const inserted = await store.insertRun(app, { name: uniqueName(app.metadata.name), spec: { app: app.metadata.name, template: app.spec } });
      assert.equal(inserted.outcome, 'created');
      const status: RunStatus = {
        phase,
        attempts: 1,
        reason: phase === 'Failed' ? 'Error' : 'Completed',
        exitCode: phase === 'Failed' ? 3 : 0,
        startedAt: clock.now().toISOString(),
        finishedAt: clock.now().toISOString(),
      };
      return store.updateRunStatus(inserted.run, status);
    };
    const listed = async (app: StoredApp) => (await store.notifications.list(app.id, { limit: 100, offset: 0 })).items;

    it('posts a signed JSON summary of the run with a link, which the receiver can check', async () => {
      const hook = await receiver();
      const app = await appWith([{ url: hook.url, on: ['Failed'], secretRef: { env: SECRET_ENV } }]);
      startNotifier();
      const run = await finishedRun(app, 'Failed');
      await waitFor('the notification', () => hook.received.length === 1);
      const [request] = hook.received;
      assert.ok(signatureIsValid(request, SECRET, 300, clock.now().getTime()), 'the signature checks out with the secret');
      assert.ok(!signatureIsValid(request, 'another-secret', 300, clock.now().getTime()), 'and not with another');
      assert.ok(!signatureIsValid(request, SECRET, 300, clock.now().getTime() + 3600_000), 'and an old request is refused as a replay');
      assert.equal(request.headers['x-berth-event'], 'Failed');
      assert.equal(request.headers['content-type'], 'application/json');
      assert.deepEqual(request.body, {
        apiVersion: 'berth.dev/v1',
        kind: 'Notification',
        event: 'Failed',
        app: app.metadata.name,
        run: {
          name: run.metadata.name,
          uid: run.metadata.uid,
          phase: 'Failed',
          reason: 'Error',
          exitCode: 3,
          attempts: 1,
          startedAt: run.status.startedAt,
          finishedAt: run.status.finishedAt,
        },
        consecutiveFailures: 1,
        link: `https://berth.example/apps/${app.metadata.name}/run/${run.metadata.name}/`,
      });
      await waitFor('Delivered', async () => (await listed(app))[0]?.state === 'Delivered');
    });

    it('retries a receiver that answers 500, with backoff by the clock, and records both attempts', async () => {
      const hook = await receiver([500, 200]);
      const app = await appWith([{ url: hook.url, on: ['Succeeded'] }]);
      startNotifier({ retryBaseMs: 30_000 });
      await finishedRun(app, 'Succeeded');
      const first = await waitFor('the first attempt recorded', async () => (await listed(app)).find((n) => n.attempts.length === 1));
      assert.equal(first.state, 'Pending');
      assert.equal(first.attempts[0].status, 500);
      assert.equal(first.attempts[0].error, 'the receiver answered 500');
      assert.equal(first.nextAttemptAt, new Date(clock.now().getTime() + 30_000).toISOString());
      clock.advance(29_000);
      // The notifier keeps polling, but nothing is due: still one request.
      await waitFor('a few polls', async () => (await store.notifications.due(clock.now(), 10)).length === 0);
      assert.equal(hook.received.length, 1);
      clock.advance(1_000);
      const done = await waitFor('the retry delivered', async () => (await listed(app)).find((n) => n.state === 'Delivered'));
      assert.deepEqual(
        done.attempts.map((a) => a.status),
        [500, 200],
      );
      assert.equal(hook.received.length, 2);
      assert.equal(hook.received[0].raw, hook.received[1].raw, 'every attempt sends the same body');
      assert.equal(hook.received[0].headers['x-berth-delivery'], hook.received[1].headers['x-berth-delivery']);
    });

    it('gives up after maxAttempts, recorded as Failed and counted', async () => {
      const hook = await receiver([503]);
      const app = await appWith([{ url: hook.url, on: ['Failed'] }]);
      startNotifier({ maxAttempts: 2, retryBaseMs: 1000 });
      await finishedRun(app, 'Failed');
      await waitFor('the first attempt', async () => (await listed(app))[0]?.attempts.length === 1);
      clock.advance(1000);
      const record = await waitFor('given up', async () => (await listed(app)).find((n) => n.state === 'Failed'));
      assert.equal(record.attempts.length, 2);
      assert.match(await registry.metrics(), /berth_notifications_total\{event="Failed",state="Failed"\} 1/);
    });

    it('Failed with after: N fires only when the last N runs all failed; Recovered ends the streak', async () => {
      const every = await receiver();
      const third = await receiver();
      const app = await appWith([
        { url: every.url, on: ['Failed', 'Recovered', 'Succeeded'] },
        { url: third.url, on: ['Failed', 'Recovered'], after: 3 },
      ]);
      startNotifier();
      const events = (r: Receiver) => r.received.map((n) => `${n.body.event}:${n.body.consecutiveFailures ?? 0}`);
      await finishedRun(app, 'Succeeded');
      await finishedRun(app, 'Failed');
      await finishedRun(app, 'Failed');
      await waitFor('three notifications', () => every.received.length === 3);
      assert.deepEqual(third.received, [], 'two failures are not three');
      await finishedRun(app, 'Failed');
      await finishedRun(app, 'Failed');
      await finishedRun(app, 'Succeeded');
      await finishedRun(app, 'Succeeded');
      await waitFor('every notification', () => every.received.length === 7 && third.received.length === 3).catch(async (err) => {
        throw new Error(
          `${err.message}: every ${events(every)}, third ${events(third)}, outbox ${JSON.stringify((await listed(app)).map((n) => [n.event, n.state, n.attempts.length]))}`,
        );
      });
      const ordered = (r: Receiver) => [...events(r)].sort();
      assert.deepEqual(ordered(every), ['Failed:1', 'Failed:2', 'Failed:3', 'Failed:4', 'Recovered:4', 'Succeeded:0', 'Succeeded:0'].sort());
      assert.deepEqual(ordered(third), ['Failed:3', 'Failed:4', 'Recovered:4'].sort());
    });

    it('a run seen to end twice is notified once', async () => {
      const hook = await receiver();
      const app = await appWith([{ url: hook.url, on: ['Succeeded'] }]);
      const { notifier } = startNotifier();
      const run = await finishedRun(app, 'Succeeded');
      await notifier.runFinished(run);
      await notifier.runFinished(run);
      await waitFor('Delivered', async () => (await listed(app))[0]?.state === 'Delivered');
      assert.equal((await listed(app)).length, 1);
      assert.equal(hook.received.length, 1);
    });

    it('a receiver that never answers is cut off at the timeout and retried; other webhooks are not held up', async () => {
      const silent = await receiver(['hang']);
      const quick = await receiver();
      const app = await appWith([
        { url: silent.url, on: ['Succeeded'] },
        { url: quick.url, on: ['Succeeded'] },
      ]);
      startNotifier({ timeoutMs: 300, concurrency: 1 });
      await finishedRun(app, 'Succeeded');
      await waitFor('the quick receiver', () => quick.received.length === 1);
      const cut = await waitFor('the silent one cut off', async () => (await listed(app)).find((n) => n.url === silent.url && n.attempts.length === 1));
      assert.equal(cut.state, 'Pending');
      assert.equal(cut.attempts[0].error, 'no answer within 300 ms');
    });

    it('a full outbox records the notification as Dropped and counts it', async () => {
      const hook = await receiver(['hang']);
      const app = await appWith([{ url: hook.url, on: ['Failed'] }]);
      startNotifier({ maxPending: 1, timeoutMs: 60_000 });
      await finishedRun(app, 'Failed');
      await finishedRun(app, 'Failed');
      const states = await waitFor('both recorded', async () => {
        const rows = await listed(app);
        return rows.length === 2 && rows.map((n) => n.state);
      });
      assert.deepEqual(states, ['Dropped', 'Pending']);
      assert.match(await registry.metrics(), /berth_notifications_total\{event="Failed",state="Dropped"\} 1/);
    });

    it('a notification not yet delivered is sent by the next notifier: the outbox is the table', async () => {
      const hook = await receiver([500, 200]);
      const app = await appWith([{ url: hook.url, on: ['Failed'] }]);
      const first = startNotifier({ retryBaseMs: 5000 });
      await finishedRun(app, 'Failed');
      await waitFor('the first attempt', async () => (await listed(app))[0]?.attempts.length === 1);
      await first.stop();
      clock.advance(5000);
      startNotifier();
      await waitFor('delivered by the second notifier', async () => (await listed(app))[0]?.state === 'Delivered');
      assert.equal(hook.received.length, 2);
    });

    it('a scheduled due time past its starting deadline fires Missed once', async () => {
      const hook = await receiver();
      const schedule = { ...SCHEDULE_DEFAULTS, cron: '* * * * *', startingDeadlineSeconds: 5 } as ScheduleSpec;
      const app = await appWith([{ url: hook.url, on: ['Missed'] }], { schedule });
      const { notifier } = startNotifier();
      const scheduler = new Scheduler({ store, clock: clock.now, metrics, logger: createLogger('silent'), onMissed: (a, due) => notifier.missed(a, due) });
      await scheduler.tick(); // 12:00:20: first sight; 12:00 is the latest due time, handled.
      clock.set('2026-05-01T12:01:30Z'); // 12:01 is 30 s late: past its deadline of 5 s.
      await scheduler.tick();
      await scheduler.tick();
      await waitFor('Missed', () => hook.received.length === 1);
      assert.equal((await store.listRuns({ appId: app.id })).total, 0);
      assert.deepEqual(hook.received[0].body, {
        apiVersion: 'berth.dev/v1',
        kind: 'Notification',
        event: 'Missed',
        app: app.metadata.name,
        scheduledAt: '2026-05-01T12:01:00.000Z',
        link: `https://berth.example/apps/${app.metadata.name}/`,
      });
      clock.set('2026-05-01T12:02:01Z'); // on time: a run, and no notification
      await scheduler.tick();
      assert.equal((await store.listRuns({ appId: app.id })).total, 1);
      assert.equal((await listed(app)).length, 1);
    });
  });
}

describe('GET /apps/{app}/notifications/', () => {
  it("lists the App's notifications newest first, paged, with their attempts; an unknown App is 404", async () => {
    const api = await startTestApi();
    try {
      const app = await api.store.createApp({
        name: uniqueName('notify'),
        source: 'api',
        spec: appSpec({ notify: [{ url: 'http://127.0.0.1:9/hook', on: ['Missed'] }] }),
      });
      const notifier = new Notifier({ store: api.store, logger: createLogger('silent') });
      for (const minute of [1, 2, 3]) await notifier.missed(app, new Date(Date.UTC(2026, 4, 1, 12, minute)));
      const answer = await api.call('GET', `/apps/${app.metadata.name}/notifications/?limit=2`);
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('x-total-count'), '3');
      assert.deepEqual(
        answer.body.map((n: { payload: { scheduledAt: string } }) => n.payload.scheduledAt),
        ['2026-05-01T12:03:00.000Z', '2026-05-01T12:02:00.000Z'],
      );
      assert.equal(answer.body[0].state, 'Pending');
      assert.equal(answer.body[0].event, 'Missed');
      assert.deepEqual(answer.body[0].attempts, []);
      const missing = await api.call('GET', '/apps/no-such-app/notifications');
      assert.equal(missing.status, 404);
    } finally {
      await api.close();
    }
  });
});
