/**
 * The whole of berth as a user runs it: `berth serve` as a process, a real
 * Docker engine, a real SQLite file and a real apps folder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { LABEL_APP } from '../../src/executors/executor';
import { waitFor } from '../helpers/wait';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { Berth, exited, json, runOf, serve } from '../helpers/berth-process';
import { removeContainersOf } from '../helpers/containers';

const docker = new Docker();

/** Reads a Server-Sent Events answer until an event whose text holds `needle`; returns that event. */
async function readUntil(res: Response, needle: string): Promise<string> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the event stream ended without ${needle}: ${text}`);
    text += value;
    const event = text.split('\n\n').find((block) => block.startsWith('event: SYNC') && block.includes(needle));
    if (event) return event;
  }
}

describe('berth end to end (berth serve, Docker, SQLite, apps folder)', function () {
  this.timeout(120_000);
  let dir: string;
  let berth: Berth | undefined;
  let app: string;

  beforeEach(() => {
    dir = tempDir('berth-e2e-');
    fs.mkdirSync(path.join(dir, 'apps'));
    app = uniqueName('e2e');
  });

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
    await removeContainersOf([app]);
  });

  it('runs an App and a Run declared in the apps folder, once, and keeps their logs', async () => {
    berth = await serve(dir, undefined);
    const abort = new AbortController();
    const events = await fetch(`${berth.url}/events/?kind=Source&app=${app}`, { signal: abort.signal });
    const syncSeen = readUntil(events, `"path":"${app}.yaml"`).finally(() => abort.abort());
    fs.writeFileSync(
      path.join(dir, 'apps', `${app}.yaml`),
      [
        'apiVersion: berth.dev/v1',
        'kind: App',
        `metadata: {name: ${app}}`,
        'spec:',
        `  image: ${TEST_IMAGE}`,
        `  command: sh -c 'echo hello $WHO'`,
        '  env: {WHO: world}',
        '---',
        'apiVersion: berth.dev/v1',
        'kind: Run',
        `metadata: {name: ${app}-declared}`,
        `spec: {app: ${app}, env: {WHO: gitops}}`,
      ].join('\n'),
    );
    const run = await waitFor('the declared run to succeed', async () => {
      const r = await runOf(berth!.url, app, `${app}-declared`);
      return r?.status?.phase === 'Succeeded' ? r : undefined;
    });
    assert.equal(run.status.exitCode, 0);
    const logs = await fetch(`${berth.url}/apps/${app}/run/${run.id}/logs/`);
    assert.equal(await logs.text(), 'hello gitops\n');
    const sync = JSON.parse(
      (await syncSeen)
        .split('\n')
        .find((line) => line.startsWith('data:'))!
        .slice(5),
    );
    assert.equal(sync.kind, 'Source');
    assert.equal(sync.state, 'Synced');
    assert.deepEqual(sync.objects.map((o: { kind: string }) => o.kind).sort(), ['App', 'Run']);

    // An unrelated edit and a restart do not run it again.
    fs.appendFileSync(path.join(dir, 'apps', `${app}.yaml`), '\n# touched\n');
    berth.child.kill('SIGTERM');
    await exited(berth.child);
    berth = await serve(dir, undefined);
    const history = await json(`${berth.url}/apps/${app}/run/`);
    assert.equal(history.body.length, 1);
    const appAnswer = await json(`${berth.url}/apps/${app}/`);
    assert.equal(appAnswer.body.status.source, `file:${app}.yaml`);
  });

  it('runs through the seed API with overrides, streams follow logs and reports the exit code', async () => {
    berth = await serve(dir, undefined);
    const created = await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: TEST_IMAGE, command: "sh -c 'for i in 1 2 3; do echo line $i; sleep 0.3; done; exit 3'", envs: {} }),
    });
    assert.equal(created.status, 201);
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST', body: '{}' });
    assert.equal(asked.status, 202);
    assert.equal(asked.body.status.phase, 'Pending');

    await waitFor('the run to be Running', async () => (await runOf(berth!.url, app, asked.body.id)).status.phase === 'Running');
    const follow = await fetch(`${berth.url}/apps/${app}/run/${asked.body.id}/logs/?follow=1`);
    const streamed = await follow.text();
    assert.match(streamed, /line 1\nline 2\nline 3\n/);

    const run = await waitFor('the run to fail', async () => {
      const r = await runOf(berth!.url, app, asked.body.id);
      return r.status.phase === 'Failed' ? r : undefined;
    });
    assert.equal(run.status.exitCode, 3);
    assert.equal(run.status.reason, 'Error');
    assert.ok(run.status.startedAt <= run.status.finishedAt);
  });

  it('loses no run and starts none twice when killed with SIGKILL mid-run', async () => {
    berth = await serve(dir, undefined);
    await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'sleep 1.5; echo finished; exit 4'] }),
    });
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    const running = await waitFor('the run to be Running', async () => {
      const r = await runOf(berth!.url, app, asked.body.id);
      return r.status.phase === 'Running' ? r : undefined;
    });
    berth.child.kill('SIGKILL');
    await exited(berth.child);

    // The container goes on without berth and exits while berth is down.
    const container = docker.getContainer(running.status.containerName);
    await waitFor('the container to exit while berth is down', async () => (await container.inspect()).State.Status === 'exited');

    berth = await serve(dir, undefined);
    const run = await waitFor('the exit to be recorded after restart', async () => {
      const r = await runOf(berth!.url, app, asked.body.id);
      return r.status.phase === 'Failed' ? r : undefined;
    });
    assert.equal(run.status.exitCode, 4);
    assert.equal(run.status.attempts, 1);
    const logs = await fetch(`${berth.url}/apps/${app}/run/${run.id}/logs/`);
    assert.equal(await logs.text(), 'finished\n');
    await waitFor('the container to be removed', async () => {
      const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${app}`] } });
      return left.length === 0;
    });
  });

  it("keeps the newest --log-limit bytes of a run's output and --history-limit finished runs", async () => {
    berth = await serve(dir, undefined, ['--log-limit', '1Ki', '--history-limit', '2']);
    await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'seq 1 2000'] }),
    });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
      ids.push(asked.body.id);
      await waitFor(`run ${i} to succeed`, async () => (await runOf(berth!.url, app, asked.body.id))?.status?.phase === 'Succeeded');
    }
    const logs = await (await fetch(`${berth.url}/apps/${app}/run/${ids[2]}/logs/`)).text();
    assert.ok(Buffer.byteLength(logs) <= 1024, `kept ${Buffer.byteLength(logs)} bytes`);
    assert.ok(logs.endsWith('1999\n2000\n'));
    const kept = await waitFor('the oldest run to be pruned', async () => {
      const history = (await json(`${berth!.url}/apps/${app}/run/`)).body as { id: number }[];
      return history.length === 2 ? history : undefined;
    });
    assert.deepEqual(
      kept.map((r) => r.id),
      [ids[2], ids[1]],
    );
  });

  it('reports a missing image as ImagePullFailed with the reason, and keeps serving', async () => {
    berth = await serve(dir, undefined);
    await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: '127.0.0.1:5000/berth-test/does-not-exist:1', command: ['true'] }),
    });
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    const run = await waitFor('the run to fail on the pull', async () => {
      const r = await runOf(berth!.url, app, asked.body.id);
      return r.status.phase === 'Failed' ? r : undefined;
    });
    assert.equal(run.status.reason, 'ImagePullFailed');
    assert.match(run.status.message, /does-not-exist/);
    assert.equal((await fetch(`${berth.url}/healthz`)).status, 200);
  });
});
