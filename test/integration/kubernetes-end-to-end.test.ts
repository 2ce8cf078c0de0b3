/**
 * The whole of berth on the kubernetes runtime, as a user runs it: `berth
 * serve --runtime kubernetes` as a process, the real test cluster (.ci/k8s),
 * berth's ServiceAccount bound to exactly the shipped Role, a real SQLite
 * file and a real apps folder.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LABEL_RUN } from '../../src/executors/executor';
import { Berth, exited, json, runOf, serve } from '../helpers/berth-process';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { testCluster, testNamespace, type Cluster, type TestNamespace } from '../helpers/kube';
import { waitFor } from '../helpers/wait';

describe('berth end to end on Kubernetes (berth serve --runtime kubernetes, a real cluster)', function () {
  this.timeout(180_000);

  let cluster: Cluster;
  let namespace: TestNamespace;
  let dir: string;
  let berth: Berth | undefined;
  let app: string;

  before(async () => {
    cluster = await testCluster();
    namespace = await testNamespace(cluster, { prefix: 'berth-e2e' });
  });

  after(async () => {
    await namespace?.remove();
  });

  beforeEach(() => {
    dir = tempDir('berth-k8s-e2e-');
    fs.mkdirSync(path.join(dir, 'apps'));
    app = uniqueName('k8s');
  });

  afterEach(async () => {
    if (berth && berth.child.exitCode === null && berth.child.signalCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
    // Whatever a test left: berth's Jobs are found by its labels, as berth finds them.
    await cluster.batch.deleteCollectionNamespacedJob({ namespace: namespace.name, propagationPolicy: 'Background' }).catch(() => undefined);
  });

  const start = (flags: string[] = []): Promise<Berth> =>
    serve(dir, undefined, ['--runtime', 'kubernetes', '--kubeconfig', namespace.kubeconfig, '--image-pull-grace', '5', ...flags]);

  const finished = (id: number, phase: string) =>
    waitFor(
      `run ${id} to be ${phase}`,
      async () => {
        const run = await runOf(berth!.url, app, id);
        return run.status.phase === phase ? run : undefined;
      },
      { timeoutMs: 90_000 },
    );

  const jobsOf = async (runUid: string) =>
    (await cluster.batch.listNamespacedJob({ namespace: namespace.name, labelSelector: `${LABEL_RUN}=${runUid}` })).items;

  it('runs through the seed API as a Job, streams follow logs, and records the exit code and history', async () => {
    berth = await start();
    const created = await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({
        name: app,
        image: TEST_IMAGE,
        command: "sh -c 'for i in 1 2 3; do echo line $i $WHO; sleep 1; done; exit 3'",
        envs: { WHO: 'k8s' },
      }),
    });
    assert.equal(created.status, 201);
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    assert.equal(asked.status, 202);

    const running = await finished(asked.body.id, 'Running');
    assert.equal(running.status.runtime, 'kubernetes');
    assert.equal((await jobsOf(running.metadata.uid)).map((job) => job.metadata?.name).join(), running.status.containerName);
    const follow = await fetch(`${berth.url}/apps/${app}/run/${asked.body.id}/logs/?follow=1`);
    assert.match(await follow.text(), /line 3 k8s\n$/);

    const run = await finished(asked.body.id, 'Failed');
    assert.equal(run.status.exitCode, 3);
    assert.equal(run.status.reason, 'Error');
    const history = await json(`${berth.url}/apps/${app}/run/`);
    assert.deepEqual(
      history.body.map((r: { id: number; status: { exitCode: number } }) => [r.id, r.status.exitCode]),
      [[asked.body.id, 3]],
    );
    assert.equal(await (await fetch(`${berth.url}/apps/${app}/run/${run.id}/logs/`)).text(), 'line 1 k8s\nline 2 k8s\nline 3 k8s\n');
    await waitFor('the Job to be removed', async () => (await jobsOf(run.metadata.uid)).length === 0);
  });

  it('runs a kind: Run committed to the apps folder, once', async () => {
    fs.writeFileSync(
      path.join(dir, 'apps', `${app}.yaml`),
      [
        'apiVersion: berth.dev/v1',
        'kind: App',
        `metadata: {name: ${app}}`,
        `spec: {image: "${TEST_IMAGE}", command: ["sh", "-c", "echo hello $WHO"], runtime: kubernetes}`,
        '---',
        'apiVersion: berth.dev/v1',
        'kind: Run',
        `metadata: {name: ${app}-once}`,
        `spec: {app: ${app}, env: {WHO: gitops}}`,
        '',
      ].join('\n'),
    );
    berth = await start();
    const run = await finished((await runOf(berth.url, app, `${app}-once`)).id, 'Succeeded');
    assert.equal(await (await fetch(`${berth.url}/apps/${app}/run/${run.id}/logs/`)).text(), 'hello gitops\n');
    assert.equal((await json(`${berth.url}/apps/${app}/run/`)).body.length, 1);
  });

  it('stops a run at its timeoutSeconds with DeadlineExceeded, keeping what it printed', async () => {
    // The deadline counts from the launch, as a Job's activeDeadlineSeconds does: long enough for a loaded kubelet to start the pod.
    berth = await start();
    await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({
        apiVersion: 'berth.dev/v1',
        kind: 'App',
        metadata: { name: app },
        spec: { image: TEST_IMAGE, command: ['sh', '-c', 'echo started; sleep 300'], timeoutSeconds: 8 },
      }),
    });
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    const run = await finished(asked.body.id, 'Failed');
    assert.equal(run.status.reason, 'DeadlineExceeded');
    assert.equal(await (await fetch(`${berth.url}/apps/${app}/run/${run.id}/logs/`)).text(), 'started\n');
  });

  it('cancels a running Job, keeping its output', async () => {
    berth = await start();
    await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'echo working; sleep 300'] }),
    });
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    await finished(asked.body.id, 'Running');
    // Followed until the first line, so the cancel comes once there is output to keep.
    const reader = (await fetch(`${berth.url}/apps/${app}/run/${asked.body.id}/logs/?follow=1`)).body!.pipeThrough(new TextDecoderStream()).getReader();
    for (let seen = ''; !seen.includes('working\n'); ) {
      const { value, done } = await reader.read();
      if (done) assert.fail(`the log ended before any output: ${seen}`);
      seen += value;
    }
    await reader.cancel();
    const cancel = await json(`${berth.url}/apps/${app}/run/${asked.body.id}/cancel/`, { method: 'POST' });
    assert.equal(cancel.status, 202);
    const run = await finished(asked.body.id, 'Cancelled');
    assert.equal(await (await fetch(`${berth.url}/apps/${app}/run/${run.id}/logs/`)).text(), 'working\n');
    await waitFor('the Job to be removed', async () => (await jobsOf(run.metadata.uid)).length === 0);
  });

  it('fails a run whose image cannot be had, within the pull grace', async () => {
    berth = await start();
    await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: '127.0.0.1:5000/berth-test/does-not-exist:1', command: ['true'] }),
    });
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    const run = await finished(asked.body.id, 'Failed');
    assert.equal(run.status.reason, 'ImagePullFailed');
    assert.match(run.status.message, /does-not-exist/);
  });

  it('loses no run and starts no second Job when killed with SIGKILL mid-run', async () => {
    berth = await start(['--keep-containers']);
    await json(`${berth.url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'sleep 4; echo finished; exit 4'] }),
    });
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    const running = await finished(asked.body.id, 'Running');
    berth.child.kill('SIGKILL');
    await exited(berth.child);

    // The Job goes on without berth and completes while berth is down.
    await waitFor(
      'the Job to finish while berth is down',
      async () =>
        (await jobsOf(running.metadata.uid))[0]?.status?.conditions?.some((c) => c.status === 'True' && (c.type === 'Failed' || c.type === 'Complete')),
      { timeoutMs: 60_000 },
    );
    berth = await start(['--keep-containers']);
    const run = await finished(asked.body.id, 'Failed');
    assert.equal(run.status.exitCode, 4);
    assert.equal(run.status.attempts, 1);
    assert.equal(await (await fetch(`${berth.url}/apps/${app}/run/${run.id}/logs/`)).text(), 'finished\n');
    assert.equal((await jobsOf(run.metadata.uid)).length, 1, 'exactly one Job was ever made for the run');
  });
});
