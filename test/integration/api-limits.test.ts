import assert from 'node:assert/strict';
import { RunPhase } from '../../src/model/types';
import { startTestApi, type TestApi } from '../helpers/api';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

describe('API: bounds on lists, waiting runs and event streams', () => {
  let api: TestApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it('answers 100 items of a list by default, the total in X-Total-Count, and up to 1000 on request', async () => {
    api = await startTestApi();
    const prefix = uniqueName('page');
    const apps = await api.store.createApps(
      Array.from({ length: 105 }, (_, i) => ({ name: `${prefix}-${i}`, labels: {}, spec: appSpec(), source: 'api' as const })),
    );
    for (let i = 0; i < 105; i++) await api.store.insertRun(apps[0], { name: `${prefix}-run-${i}`, spec: { app: apps[0].metadata.name, template: appSpec() } });

    for (const path of ['/apps/', '/runs/', `/apps/${apps[0].metadata.name}/run/`]) {
      const first = await api.call('GET', path);
      assert.equal(first.status, 200, path);
      assert.ok(Array.isArray(first.body), path);
      assert.equal(first.body.length, 100, path);
      assert.equal(first.headers.get('x-total-count'), '105', path);
      assert.equal((await api.call('GET', `${path}?offset=100`)).body.length, 5, path);
      assert.equal((await api.call('GET', `${path}?limit=1000`)).body.length, 105, path);
      assert.equal((await api.call('GET', `${path}?limit=1001`)).status, 422, path);
    }
  });

  it('refuses a run over the per-App or the overall cap of Pending runs with 429 and Retry-After, and takes it once one has started', async () => {
    api = await startTestApi({ limits: { pending: { total: 5, perApp: 3 } } });
    const [first, second] = [uniqueName('busy'), uniqueName('other')];
    for (const name of [first, second]) assert.equal((await api.call('POST', '/apps/', { body: { name, image: 'busybox:1.36' } })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await api.call('POST', `/apps/${first}/run/`)).status, 202);
    const perApp = await api.call('POST', `/apps/${first}/run/`);
    assert.equal(perApp.status, 429);
    assert.equal(perApp.headers.get('retry-after'), '10');
    assert.deepEqual(perApp.body, {
      error: 'TooManyRequests',
      message: `app "${first}" has 3 runs Pending, the most one App may have waiting (--max-pending-per-app 3); ask again once some have started`,
      details: [],
    });
    for (let i = 0; i < 2; i++) assert.equal((await api.call('POST', `/apps/${second}/run/`)).status, 202);
    const overall = await api.call('POST', `/apps/${second}/run/`);
    assert.equal(overall.status, 429);
    assert.equal(overall.body.message, '5 runs are Pending, the most this server lets wait (--max-pending 5); ask again once some have started');
    assert.equal((await api.store.listRuns({})).total, 5);

    // One run starts: there is room again, for its App and in all.
    const waiting = (await api.store.listRuns({ appId: (await api.store.mustGetApp(first)).id })).items[0];
    await api.store.updateRunStatus(waiting, { ...waiting.status, phase: RunPhase.Running, attempts: 1 });
    assert.equal((await api.call('POST', `/apps/${first}/run/`)).status, 202);
  });

  it('refuses an event stream beyond the cap with 503 and Retry-After, and takes one again once a client leaves', async () => {
    api = await startTestApi({ limits: { eventStreams: 2 } });
    const clients = [new AbortController(), new AbortController()];
    const open = await Promise.all(clients.map((client) => fetch(`${api!.url}/events/`, { signal: client.signal })));
    assert.deepEqual(
      open.map((res) => res.status),
      [200, 200],
    );
    const refused = await api.call('GET', '/events/');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.deepEqual(refused.body, {
      error: 'ServerBusy',
      message: 'this server has 2 event streams open, the most it allows (--max-event-streams 2); try again later',
      details: [],
    });
    clients[0].abort();
    const again = new AbortController();
    try {
      const res = await waitFor('a stream to be free again', async () => {
        const attempt = await fetch(`${api!.url}/events/`, { signal: again.signal });
        if (attempt.status === 200) return attempt;
        await attempt.body?.cancel();
        return undefined;
      });
      assert.equal(res.status, 200);
    } finally {
      again.abort();
      clients[1].abort();
    }
  });
});
