import assert from 'node:assert/strict';
import { requestRun } from '../../src/controller/run-requests';
import { Readable } from 'node:stream';
import type { Executor, LogOptions } from '../../src/executors/executor';
import { Runtimes } from '../../src/executors/runtimes';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { startTestApi, type TestApi } from '../helpers/api';
import { waitFor } from '../helpers/wait';

describe('API: Runs', () => {
  let api: TestApi;
  let followed: { name: string; options?: LogOptions }[];
  before(async () => {
    followed = [];
    // A runtime whose every workload is running and prints three lines: enough to test following without Docker.
    const executor = {
      runtime: 'docker',
      observe: async () => ({ state: 'running', startedAt: new Date().toISOString() }),
      logs: async (name: string, options?: LogOptions) => {
        followed.push({ name, options });
        return Readable.from(['live 1\n', 'live 2\n', 'live 3\n']);
      },
    } as unknown as Executor;
    api = await startTestApi({ runtimes: new Runtimes([executor], 'docker') });
  });
  after(async () => {
    await api.close();
  });

  async function newApp(spec: Record<string, unknown> = {}): Promise<string> {
    const name = uniqueName('app');
    const res = await api.call('POST', '/apps/', {
      body: { apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name }, spec: { image: 'busybox', command: ['echo', 'hi'], ...spec } },
    });
    assert.equal(res.status, 201);
    return name;
  }

  describe('POST /apps/{id}/run/', () => {
    it('records a Pending run and answers 202 with a Location', async () => {
      const app = await newApp({ env: { WHO: 'app' } });
      const res = await api.call('POST', `/apps/${app}/run/`);
      assert.equal(res.status, 202);
      assert.equal(res.headers.get('location'), `/apps/${app}/run/${res.body.id}/`);
      assert.equal(res.body.app, app);
      assert.equal(res.body.kind, 'Run');
      assert.equal(res.body.status.phase, 'Pending');
      assert.deepEqual(res.body.spec.template.env, { WHO: 'app' });
      assert.ok(res.body.metadata.name.startsWith(`${app}-`));
    });

    it('applies env and command overrides, a string command split like a shell', async () => {
      const app = await newApp({ env: { WHO: 'app', KEEP: '1' } });
      const res = await api.call('POST', `/apps/${app}/run`, { body: { env: { WHO: 'run' }, command: "sh -c 'echo $WHO'", name: `${app}-first` } });
      assert.equal(res.status, 202);
      assert.equal(res.body.metadata.name, `${app}-first`);
      assert.deepEqual(res.body.spec.template.env, { WHO: 'run', KEEP: '1' });
      assert.deepEqual(res.body.spec.template.command, ['sh', '-c', 'echo $WHO']);
      const again = await api.call('POST', `/apps/${app}/run`, { body: { name: `${app}-first` } });
      assert.equal(again.status, 409);
      assert.equal(again.body.message, `run "${app}-first" already exists`);
    });

    it('returns the same run for the same Idempotency-Key (200), a new one for another key', async () => {
      const app = await newApp();
      const first = await api.call('POST', `/apps/${app}/run/`, { headers: { 'idempotency-key': 'job-42' } });
      assert.equal(first.status, 202);
      const replay = await api.call('POST', `/apps/${app}/run/`, { headers: { 'idempotency-key': 'job-42' } });
      assert.equal(replay.status, 200);
      assert.equal(replay.body.id, first.body.id);
      const other = await api.call('POST', `/apps/${app}/run/`, { headers: { 'idempotency-key': 'job-43' } });
      assert.equal(other.status, 202);
      assert.notEqual(other.body.id, first.body.id);
    });

    it('holds one run per key under concurrent requests', async () => {
      const app = await newApp();
      const answers = await Promise.all(Array.from({ length: 8 }, () => api.call('POST', `/apps/${app}/run/`, { headers: { 'idempotency-key': 'burst' } })));
      assert.equal(new Set(answers.map((a) => a.body.id)).size, 1);
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 200, 200, 200, 200, 200, 200, 202]);
    });

    it('refuses a second active run of a Forbid App with 409', async () => {
      const app = await newApp({ concurrencyPolicy: 'Forbid' });
      const first = await api.call('POST', `/apps/${app}/run/`);
      assert.equal(first.status, 202);
      const second = await api.call('POST', `/apps/${app}/run/`);
      assert.equal(second.status, 409);
      assert.equal(second.body.message, `app "${app}" has concurrencyPolicy Forbid and run "${first.body.metadata.name}" is still Pending`);
    });

    it('refuses an invalid body with 422 and a missing App with 404', async () => {
      const app = await newApp();
      const bad = await api.call('POST', `/apps/${app}/run/`, { body: { bogus: 1 } });
      assert.equal(bad.status, 422);
      assert.equal(bad.body.message, 'bogus: is not a known field');
      const key = await api.call('POST', `/apps/${app}/run/`, { headers: { 'idempotency-key': 'has space' } });
      assert.equal(key.status, 422);
      assert.equal(key.body.message, 'Idempotency-Key: must be 1 to 255 visible ASCII characters');
      const missing = await api.call('POST', '/apps/no-such-app/run/');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.message, 'app "no-such-app" not found');
    });
  });

  describe('reading runs', () => {
    it("lists an App's runs newest first, paginated, with X-Total-Count", async () => {
      const app = await newApp();
      const ids: number[] = [];
      for (let i = 0; i < 4; i++) ids.push((await api.call('POST', `/apps/${app}/run/`)).body.id);
      const all = await api.call('GET', `/apps/${app}/run/`);
      assert.deepEqual(
        all.body.map((r: { id: number }) => r.id),
        [...ids].reverse(),
      );
      assert.equal(all.headers.get('x-total-count'), '4');
      const page = await api.call('GET', `/apps/${app}/run?limit=2&offset=1`);
      assert.deepEqual(
        page.body.map((r: { id: number }) => r.id),
        [ids[2], ids[1]],
      );
      assert.equal(page.headers.get('x-total-count'), '4');
    });

    it('reads one run under its App by id or name, and not under another App', async () => {
      const app = await newApp();
      const other = await newApp();
      const run = (await api.call('POST', `/apps/${app}/run/`)).body;
      for (const path of [`/apps/${app}/run/${run.id}/`, `/apps/${app}/run/${run.metadata.name}`, `/runs/${run.id}`, `/runs/${run.metadata.name}/`]) {
        const res = await api.call('GET', path);
        assert.equal(res.status, 200, path);
        assert.equal(res.body.metadata.uid, run.metadata.uid);
      }
      const elsewhere = await api.call('GET', `/apps/${other}/run/${run.id}/`);
      assert.equal(elsewhere.status, 404);
      assert.equal(elsewhere.body.message, `run "${run.id}" not found`);
    });

    it('lists all runs filtered by phase and App; refuses an unknown phase', async () => {
      const app = await newApp();
      const pending = (await api.call('POST', `/apps/${app}/run/`)).body;
      const done = (await api.call('POST', `/apps/${app}/run/`)).body;
      await api.store.mutateRunStatus(done.id, (r) => ({ ...r.status, phase: 'Succeeded', exitCode: 0 }));
      const active = await api.call('GET', `/runs/?phase=Pending,Running&app=${app}`);
      assert.deepEqual(
        active.body.map((r: { id: number }) => r.id),
        [pending.id],
      );
      assert.equal(active.headers.get('x-total-count'), '1');
      const finished = await api.call('GET', `/runs?phase=Succeeded&app=${app}`);
      assert.deepEqual(
        finished.body.map((r: { id: number }) => r.id),
        [done.id],
      );
      const all = await api.call('GET', '/runs/?limit=1');
      assert.equal(all.body.length, 1);
      const bad = await api.call('GET', '/runs/?phase=Pending,Sleeping');
      assert.equal(bad.status, 422);
      assert.equal(bad.body.message, 'phase: "Sleeping" is not a run phase; use Pending, Running, Succeeded, Failed, Cancelled');
    });
  });

  describe('cancel', () => {
    it('marks a Pending run for cancellation with 202, and refuses a finished one with 409', async () => {
      const app = await newApp();
      const run = (await api.call('POST', `/apps/${app}/run/`)).body;
      const res = await api.call('POST', `/apps/${app}/run/${run.id}/cancel/`);
      assert.equal(res.status, 202);
      assert.deepEqual(res.body.status.cancelRequested, { reason: 'Cancelled', message: 'cancelled through the API' });
      assert.equal((await api.call('POST', `/apps/${app}/run/${run.id}/cancel`)).status, 202);

      await api.store.mutateRunStatus(run.id, (r) => ({ ...r.status, phase: 'Failed', exitCode: 3 }));
      const late = await api.call('POST', `/apps/${app}/run/${run.id}/cancel/`);
      assert.equal(late.status, 409);
      assert.equal(late.body.message, `run "${run.metadata.name}" is already Failed; only Pending or Running runs can be cancelled`);
    });
  });

  describe('logs', () => {
    it('answers the stored logs as text, the last N lines with ?tail=', async () => {
      const app = await newApp();
      const run = (await api.call('POST', `/apps/${app}/run/`)).body;
      assert.equal((await api.call('GET', `/apps/${app}/run/${run.id}/logs/`)).text, '');
      await api.store.setLogs(run.id, { content: 'one\ntwo\nthree\n', droppedBytes: 0 });
      const res = await api.call('GET', `/apps/${app}/run/${run.id}/logs/`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.equal(res.text, 'one\ntwo\nthree\n');
      assert.equal((await api.call('GET', `/apps/${app}/run/${run.id}/logs?tail=2`)).text, 'two\nthree\n');
      assert.equal((await api.call('GET', `/apps/${app}/run/${run.id}/logs?tail=0`)).text, '');
      const bad = await api.call('GET', `/apps/${app}/run/${run.id}/logs?tail=x`);
      assert.equal(bad.status, 422);
      assert.equal(bad.body.message, 'tail: must be an integer from 0 to 1000000');
    });

    it('follows a live workload with ?follow=1, and answers stored logs for a finished run', async () => {
      const app = await newApp();
      const run = (await api.call('POST', `/apps/${app}/run/`)).body;
      await api.store.mutateRunStatus(run.id, (r) => ({ ...r.status, phase: 'Running', containerName: `berth-run-${r.metadata.uid}` }));
      const live = await api.call('GET', `/apps/${app}/run/${run.id}/logs/?follow=1&tail=5`);
      assert.equal(live.status, 200);
      assert.equal(live.text, 'live 1\nlive 2\nlive 3\n');
      assert.deepEqual(followed.at(-1), { name: `berth-run-${run.metadata.uid}`, options: { follow: true, tail: 5 } });

      await api.store.mutateRunStatus(run.id, (r) => ({ ...r.status, phase: 'Succeeded', exitCode: 0 }));
      await api.store.setLogs(run.id, { content: 'kept\n', droppedBytes: 0 });
      const calls = followed.length;
      const stored = await api.call('GET', `/apps/${app}/run/${run.id}/logs/?follow=1`);
      assert.equal(stored.text, 'kept\n');
      assert.equal(followed.length, calls);
    });
  });

  describe('GET /events/', () => {
    it('streams store changes as Server-Sent Events, filtered, and lets go when the client leaves', async () => {
      const name = uniqueName('sse');
      const listeners = api.store.listenerCount('change');
      const abort = new AbortController();
      const res = await fetch(`${api.url}/events/?kind=App&app=${name}`, { signal: abort.signal });
      assert.equal(res.status, 200);
      assert.ok((res.headers.get('content-type') ?? '').startsWith('text/event-stream'));
      await waitFor('the subscription', () => api.store.listenerCount('change') === listeners + 1);

      await api.call('POST', '/apps/', { body: { name: uniqueName('other'), image: 'busybox' } });
      await api.call('POST', '/apps/', { body: { name, image: 'busybox' } });
      await api.call('POST', `/apps/${name}/run/`);

      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      await waitFor('an ADDED event', async () => {
        const { value } = await reader.read();
        text += decoder.decode(value);
        return text.includes('\n\n') && text.includes('event: ADDED');
      });
      const event = text.split('\n\n').find((block) => block.startsWith('event: ADDED'))!;
      const data = JSON.parse(event.split('\n')[1].slice('data: '.length));
      assert.equal(data.name, name);
      assert.equal(data.kind, 'App');
      assert.ok(!text.includes('"kind":"Run"'), 'a Run event passed the kind=App filter');
      assert.ok(!text.includes('other-'), 'an event of another App passed the app filter');

      abort.abort();
      await waitFor('the listener to be removed', () => api.store.listenerCount('change') === listeners);
    });

    it('refuses an unknown kind', async () => {
      const res = await api.call('GET', '/events?kind=Pod');
      assert.equal(res.status, 422);
      assert.equal(res.body.message, 'kind: must be App, Run or Source');
    });
  });

  it('keeps runs of an App made by the store helper readable', async () => {
    const name = uniqueName('direct');
    const app = await api.store.createApp({ name, spec: appSpec(), source: 'api' });
    const { run } = await requestRun(api.store, app);
    assert.equal((await api.call('GET', `/apps/${name}/run/${run.metadata.name}/`)).body.id, run.id);
  });
});
