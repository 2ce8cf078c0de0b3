import assert from 'node:assert/strict';
import { requestRun, type RunRequest } from '../../src/controller/run-requests';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { Controller, ControllerOptions } from '../../src/controller/controller';
import { DockerExecutor } from '../../src/executors/docker';
import { LABEL_APP, LABEL_RUN, workloadName } from '../../src/executors/executor';
import type { Executor } from '../../src/executors/executor';
import { Runtimes } from '../../src/executors/runtimes';
import { createLogger } from '../../src/log';
import { createMetrics, createRegistry } from '../../src/metrics';
import type { Registry } from 'prom-client';
import { AppSpec, isTerminal, RunPhase, RunStatus } from '../../src/model/types';
import type { Store, StoreEvent, StoredApp, StoredRun } from '../../src/store/store';
import { appSpec, tempSqliteStore, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

describe('Controller on a real Docker engine and SQLite store', function () {
  this.timeout(60_000);

  const docker = new Docker();
  let store: Store;
  let appName: string;
  let started: Array<{ abort: AbortController; done: Promise<void> }>;
  /** The registry of the controller started last. */
  let registry: Registry;

  beforeEach(async () => {
    ({ store } = await tempSqliteStore());
    appName = uniqueName('ctl');
    started = [];
  });

  afterEach(async () => {
    await stopControllers();
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${appName}`] } });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
    await store.close();
  });

  function startController(options: Partial<ControllerOptions> = {}, executor: Executor = new DockerExecutor()): Controller {
    registry = createRegistry();
    const controller = new Controller({
      store,
      runtimes: new Runtimes([executor], 'docker'),
      retryBaseMs: 50,
      stopGraceSeconds: 1,
      pingMs: 200,
      logger: createLogger((process.env.BERTH_TEST_LOG as 'debug') ?? 'silent'),
      metrics: createMetrics(registry),
      // Other suites share the engine: adopt only this test's containers, or theirs would be removed as orphans.
      ownsWorkload: (workload) => workload.appName === appName,
      ...options,
    });
    const abort = new AbortController();
    started.push({ abort, done: controller.start(abort.signal) });
    return controller;
  }

  /** Aborts every controller started so far and waits for each to drain: like a crash, nothing is cleaned up. */
  async function stopControllers(): Promise<void> {
    for (const { abort } of started) abort.abort();
    await Promise.all(started.map(({ done }) => done));
    started = [];
  }

  const createApp = (spec: Partial<AppSpec> = {}): Promise<StoredApp> => store.createApp({ name: appName, spec: appSpec(spec), source: 'api' });
  const ask = async (app: StoredApp, input: RunRequest = {}): Promise<StoredRun> => (await requestRun(store, app, input)).run;
  const current = (run: StoredRun): Promise<StoredRun> => store.mustGetRun(run.id);

  const until = (run: StoredRun, what: string, test: (status: RunStatus) => boolean, timeoutMs = 20_000): Promise<StoredRun> =>
    waitFor(
      `run ${run.metadata.name} ${what}`,
      async () => {
        const now = await current(run);
        return test(now.status) ? now : undefined;
      },
      { timeoutMs },
    );
  const finished = (run: StoredRun) => until(run, 'to finish', (s) => isTerminal(s.phase));
  const runningNow = (run: StoredRun) => until(run, 'to be Running', (s) => s.phase === RunPhase.Running);

  const cancel = (run: StoredRun, message = 'cancelled by the test'): Promise<StoredRun> =>
    store.mutateRunStatus(run.id, (r) => ({ ...r.status, cancelRequested: { reason: 'Cancelled', message } }));

  const containerExists = async (name: string): Promise<boolean> =>
    docker
      .getContainer(name)
      .inspect()
      .then(
        () => true,
        (error: { statusCode?: number }) => {
          if (error.statusCode === 404) return false;
          throw error;
        },
      );

  it('runs a command to success, stores its output and removes the container', async () => {
    const controller = startController();
    const app = await createApp({ command: ['sh', '-c', 'echo hello $WHO; echo oops >&2'], env: { WHO: 'world' } });
    const run = await finished(await ask(app));
    assert.equal(run.status.phase, 'Succeeded');
    assert.equal(run.status.reason, 'Completed');
    assert.equal(run.status.exitCode, 0);
    assert.equal(run.status.attempts, 1);
    assert.equal(run.status.containerName, workloadName(run.metadata.uid, 1));
    assert.ok(run.status.startedAt && run.status.finishedAt && run.status.startedAt <= run.status.finishedAt);
    assert.deepEqual(
      run.status.history?.map((a) => [a.attempt, a.exitCode, a.reason]),
      [[1, 0, 'Completed']],
    );
    const logs = await store.getLogs(run.id);
    // stdout and stderr are separate pipes: both are kept, in whichever order the engine read them.
    assert.deepEqual(logs?.content.split('\n').sort(), ['', 'hello world', 'oops']);
    assert.equal(logs?.droppedBytes, 0);
    await waitFor('the container to be removed', async () => !(await containerExists(workloadName(run.metadata.uid, 1))));
    await waitFor('the controller to be ready', () => controller.health().ready);
    const exposition = await registry.metrics();
    assert.match(exposition, /^berth_run_transitions_total\{phase="Running",reason=""\} 1$/m);
    assert.match(exposition, /^berth_run_transitions_total\{phase="Succeeded",reason="Completed"\} 1$/m);
    assert.match(exposition, /^berth_run_duration_seconds_count\{phase="Succeeded"\} 1$/m);
    assert.match(exposition, /^berth_runs\{phase="Succeeded"\} 1$/m);
    assert.match(exposition, /^berth_workqueue_depth \d+$/m);
    assert.match(exposition, /^berth_workqueue_latency_seconds_count \d+$/m);
  });

  it('records a non-zero exit as Failed with its exit code', async () => {
    startController();
    const app = await createApp({ command: ['sh', '-c', 'echo failing; exit 3'] });
    const run = await finished(await ask(app));
    assert.equal(run.status.phase, 'Failed');
    assert.equal(run.status.reason, 'Error');
    assert.equal(run.status.exitCode, 3);
    assert.equal(run.status.message, 'exited with code 3');
    assert.equal((await store.getLogs(run.id))?.content, 'failing\n');
  });

  it('applies a run request’s env and command overrides', async () => {
    startController();
    const app = await createApp({ command: ['sh', '-c', 'echo app'], env: { WHO: 'app', KEEP: 'kept' } });
    const run = await finished(await ask(app, { overrides: { env: { WHO: 'override' }, command: ['sh', '-c', 'echo $WHO $KEEP'] } }));
    assert.equal(run.status.phase, 'Succeeded');
    assert.equal((await store.getLogs(run.id))?.content, 'override kept\n');
  });

  it('stops a run past its timeoutSeconds and fails it with DeadlineExceeded', async () => {
    startController();
    const app = await createApp({ command: ['sh', '-c', 'echo started; sleep 30'], timeoutSeconds: 1 });
    const asked = Date.now();
    const run = await finished(await ask(app));
    assert.equal(run.status.phase, 'Failed');
    assert.equal(run.status.reason, 'DeadlineExceeded');
    assert.equal(run.status.message, 'the run took longer than its timeoutSeconds (1)');
    assert.ok(Date.now() - asked < 15_000, 'stopped near its deadline, not after the sleep');
    assert.equal((await store.getLogs(run.id))?.content, 'started\n');
  });

  it('retries a failing attempt with backoff, recording each attempt and keeping each attempt’s logs', async () => {
    startController({ retryBaseMs: 100 });
    const app = await createApp({ command: ['sh', '-c', 'echo try; exit 2'], retries: 2 });
    const run = await finished(await ask(app));
    assert.equal(run.status.phase, 'Failed');
    assert.equal(run.status.reason, 'Error');
    assert.equal(run.status.exitCode, 2);
    assert.equal(run.status.attempts, 3);
    assert.equal(run.status.message, 'exited with code 2 (attempt 3 of 3)');
    const history = run.status.history ?? [];
    assert.deepEqual(
      history.map((a) => [a.attempt, a.exitCode, a.reason]),
      [
        [1, 2, 'Error'],
        [2, 2, 'Error'],
        [3, 2, 'Error'],
      ],
    );
    // The backoff: attempt 2 began at least 100 ms after attempt 1 ended, attempt 3 at least 200 ms after attempt 2.
    assert.ok(Date.parse(history[1].startedAt!) - Date.parse(history[0].finishedAt!) >= 100);
    assert.ok(Date.parse(history[2].startedAt!) - Date.parse(history[1].finishedAt!) >= 200);
    const logs = await store.getLogs(run.id);
    assert.equal(logs?.content, 'try\n--- berth: attempt 2 ---\ntry\n--- berth: attempt 3 ---\ntry\n');
  });

  it('cancels a Running run: the container is stopped and removed, the run Cancelled', async () => {
    startController();
    const app = await createApp({ command: ['sh', '-c', 'echo working; sleep 30'] });
    const run = await runningNow(await ask(app));
    await waitFor('output to appear', async () => (await docker.getContainer(workloadName(run.metadata.uid, 1)).logs({ stdout: true })).length > 0);
    await cancel(run);
    const done = await finished(run);
    assert.equal(done.status.phase, 'Cancelled');
    assert.equal(done.status.reason, 'Cancelled');
    assert.equal(done.status.message, 'cancelled by the test');
    assert.equal((await store.getLogs(run.id))?.content, 'working\n');
    await waitFor('the container to be removed', async () => !(await containerExists(workloadName(run.metadata.uid, 1))));
  });

  it('cancels a Pending run without ever launching it', async () => {
    startController({ maxParallel: 1 });
    const app = await createApp({ command: ['sh', '-c', 'sleep 30'] });
    const first = await runningNow(await ask(app));
    const second = await until(await ask(app), 'to wait for a slot', (s) => s.reason === 'Waiting');
    assert.equal(second.status.message, 'waiting for a free slot (next in line): at most 1 runs run at once (--max-parallel)');
    assert.equal(second.status.pendingReason, 'MaxParallel');
    assert.equal(second.status.queuePosition, 1);
    await cancel(second);
    const done = await finished(second);
    assert.equal(done.status.phase, 'Cancelled');
    assert.equal(done.status.attempts, 0);
    assert.equal(await containerExists(workloadName(second.metadata.uid, 1)), false);
    await cancel(first);
    await finished(first);
  });

  it('with concurrencyPolicy Replace, cancels the active run as Replaced and starts the new one', async () => {
    startController();
    const app = await createApp({ command: ['sh', '-c', 'sleep 30'], concurrencyPolicy: 'Replace' });
    const older = await runningNow(await ask(app));
    const newer = await ask(app);
    const replaced = await finished(older);
    assert.equal(replaced.status.phase, 'Cancelled');
    assert.equal(replaced.status.reason, 'Replaced');
    assert.equal(replaced.status.message, `replaced by run "${newer.metadata.name}"`);
    const started = await runningNow(newer);
    assert.ok(Date.parse(started.status.startedAt!) >= Date.parse(replaced.status.finishedAt!), 'the new run starts after the old one stopped');
    await cancel(newer);
    await finished(newer);
  });

  it('never runs more than maxParallel at once, and starts waiting runs first come first served', async () => {
    const running = new Set<number>();
    let most = 0;
    const startOrder: number[] = [];
    const watch = (event: StoreEvent) => {
      if (event.kind !== 'Run') return;
      const { id, status } = event.object;
      if (status.phase === RunPhase.Running && !running.has(id)) {
        running.add(id);
        startOrder.push(id);
      }
      if (status.phase !== RunPhase.Running) running.delete(id);
      most = Math.max(most, running.size);
    };
    store.on('change', watch);
    try {
      const app = await createApp({ command: ['sh', '-c', 'sleep 1'] });
      const runs: StoredRun[] = [];
      for (let i = 0; i < 4; i++) runs.push(await ask(app));
      startController({ maxParallel: 2 });
      const done = await Promise.all(runs.map(finished));
      assert.ok(done.every((r) => r.status.phase === 'Succeeded'));
      assert.equal(most, 2);
      const ids = runs.map((r) => r.id);
      assert.deepEqual(new Set(startOrder.slice(0, 2)), new Set(ids.slice(0, 2)));
      assert.deepEqual(new Set(startOrder.slice(2)), new Set(ids.slice(2)));
    } finally {
      store.off('change', watch);
    }
  });

  it('records an OOM kill under a small memory limit as OOMKilled', async () => {
    startController();
    const app = await createApp({
      command: ['sh', '-c', 'x=$(head -c 64m /dev/zero | tr "\\0" a); echo ${#x}'],
      resources: { memory: '16Mi' },
    });
    const run = await finished(await ask(app));
    assert.equal(run.status.phase, 'Failed');
    assert.equal(run.status.reason, 'OOMKilled');
    assert.equal(run.status.exitCode, 137);
    assert.equal(run.status.message, 'killed for exceeding its memory limit (16Mi)');
  });

  it('keeps only the newest historyLimit finished runs of an App', async () => {
    startController();
    const app = await createApp({ command: ['true'], historyLimit: 2 });
    const runs: StoredRun[] = [];
    for (let i = 0; i < 4; i++) runs.push(await finished(await ask(app)));
    const kept = await waitFor('old runs to be pruned', async () => {
      const page = await store.listRuns({ appId: app.id });
      return page.total === 2 ? page.items : undefined;
    });
    assert.deepEqual(
      kept.map((r) => r.id),
      [runs[3].id, runs[2].id],
    );
    assert.equal(await store.getLogs(runs[0].id), null, 'a pruned run’s logs go with it');
  });

  it('stops and removes the containers of an App’s runs when the App is deleted', async () => {
    startController();
    const app = await createApp({ command: ['sh', '-c', 'sleep 30'] });
    const run = await runningNow(await ask(app));
    await store.deleteApp(app.id);
    await waitFor('the container to be removed', async () => !(await containerExists(workloadName(run.metadata.uid, 1))));
    assert.equal(await store.getRun(run.id), null);
  });

  it('adopts after a crash: records the exit that happened while down, without a second container', async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    startController();
    const app = await createApp({ command: ['sh', '-c', 'sleep 2; echo done; exit 7'] });
    const run = await runningNow(await ask(app));
    await stopControllers();
    const name = workloadName(run.metadata.uid, 1);
    await waitFor('the container to exit while no controller runs', async () => !(await docker.getContainer(name).inspect()).State.Running);
    assert.equal((await current(run)).status.phase, 'Running', 'nothing recorded the exit yet');

    startController();
    const done = await finished(run);
    assert.equal(done.status.phase, 'Failed');
    assert.equal(done.status.exitCode, 7);
    assert.equal(done.status.attempts, 1);
    assert.equal((await store.getLogs(run.id))?.content, 'done\n');
    const creates = await containerEvents(since, run.metadata.uid, 'create');
    assert.equal(creates, 1, 'exactly one container was ever created for the run');
  });

  it('removes at start a container whose run no longer exists', async () => {
    const executor = new DockerExecutor();
    const orphanUid = randomUUID();
    const orphan = workloadName(orphanUid, 1);
    await executor.launch({ name: orphan, runUid: orphanUid, runName: 'gone', appName, attempt: 1, template: appSpec({ command: ['sleep', '30'] }) });
    assert.equal(await containerExists(orphan), true);
    startController({}, executor);
    await waitFor('the orphan container to be removed', async () => !(await containerExists(orphan)));
  });

  it("stamps its containers with its store id and, at start, leaves other stores' containers alone", async () => {
    const executor = new DockerExecutor();
    const launchOrphan = async (storeId: string) => {
      const uid = randomUUID();
      await executor.launch({
        name: workloadName(uid, 1),
        runUid: uid,
        runName: 'gone',
        appName,
        attempt: 1,
        storeId,
        template: appSpec({ command: ['sleep', '30'] }),
      });
      return workloadName(uid, 1);
    };
    const ours = await launchOrphan(store.id);
    const theirs = await launchOrphan('another-store');
    // The default ownership: this store's workloads only.
    startController({ ownsWorkload: undefined }, executor);
    await waitFor('our orphan to be removed', async () => !(await containerExists(ours)));
    assert.equal(await containerExists(theirs), true);

    const run = await ask(await createApp({ command: ['sleep', '5'] }));
    const running = await runningNow(run);
    const info = await docker.getContainer(running.status.containerName!).inspect();
    assert.equal(info.Config.Labels['berth.dev/store'], store.id);
  });

  it('keeps runs Pending while Docker is unreachable, reports not ready, and runs them once it is back', async () => {
    const unreachable = startController({}, new DockerExecutor({ dockerHost: 'unix:///tmp/nonexistent.sock' }));
    const app = await createApp({ command: ['sh', '-c', 'echo finally'] });
    const run = await until(await ask(app), 'to say the runtime is unavailable', (s) => s.reason === 'RuntimeUnavailable');
    assert.equal(run.status.phase, 'Pending');
    assert.match(run.status.message ?? '', /docker engine at unix:\/\/\/tmp\/nonexistent\.sock is unreachable/);
    const health = await waitFor('health to say why it is not ready', () => {
      const h = unreachable.health();
      return !h.ready && h.reason?.includes('unreachable') ? h : undefined;
    });
    assert.match(health.reason!, /nonexistent\.sock/);
    await stopControllers();

    startController();
    const done = await finished(run);
    assert.equal(done.status.phase, 'Succeeded');
    assert.equal((await store.getLogs(run.id))?.content, 'finally\n');
  });

  /** How many times the engine reported `action` for the run's containers since `since` (seconds). */
  async function containerEvents(since: number, runUid: string, action: string): Promise<number> {
    const stream = (await docker.getEvents({
      since,
      until: Math.ceil(Date.now() / 1000),
      filters: { type: ['container'], label: [`${LABEL_RUN}=${runUid}`], event: [action] },
    })) as unknown as NodeJS.ReadableStream;
    let text = '';
    for await (const chunk of stream) text += chunk.toString();
    return text.split('\n').filter((line) => line.trim()).length;
  }
});
