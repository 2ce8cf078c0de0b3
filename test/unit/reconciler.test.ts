/**
 * The controller's decisions, on the in-memory executor (real local
 * processes, no daemon) and a real SQLite store: fast enough to try every
 * path a runtime can take — outages, refusals, lost workloads, runtimes that
 * stop by deleting — which the real runtimes' suites cannot provoke cheaply.
 */
import assert from 'node:assert/strict';
import { Controller, type ControllerOptions } from '../../src/controller/controller';
import { requestRun } from '../../src/controller/run-requests';
import { RuntimeApiError, RuntimeRefusedError } from '../../src/errors';
import { WaitingReason, workloadName, type Observation } from '../../src/executors/executor';
import { Runtimes } from '../../src/executors/runtimes';
import { createLogger } from '../../src/log';
import { createMetrics, createRegistry } from '../../src/metrics';
import { isTerminal, type AppSpec, type RunStatus } from '../../src/model/types';
import type { Store, StoredApp, StoredRun } from '../../src/store/store';
import { appSpec, tempSqliteStore, uniqueName } from '../helpers/fixtures';
import { MemoryExecutor } from '../helpers/memory-executor';
import { waitFor } from '../helpers/wait';

/** A runtime that stops a workload by deleting it, output and all, as Kubernetes deletes a pod. */
class DeletingExecutor extends MemoryExecutor {
  override async stop(name: string, graceSeconds: number): Promise<void> {
    await super.stop(name, graceSeconds);
    await super.remove(name);
  }
}

/** A runtime whose chosen workloads never start, as a pod whose image cannot be pulled. */
class StuckExecutor extends MemoryExecutor {
  readonly stuck = new Map<string, Observation>();
  override async observe(name: string): Promise<Observation> {
    return this.stuck.get(name) ?? super.observe(name);
  }
}

/** Counts the workloads it really creates (a repeated launch finds the first and creates none). */
class CountingExecutor extends MemoryExecutor {
  readonly created: string[] = [];
  override async launch(request: Parameters<MemoryExecutor['launch']>[0]): Promise<void> {
    const existed = this.requestOf(request.name) !== undefined;
    await super.launch(request);
    if (!existed) this.created.push(request.name);
  }
}

describe('Controller decisions (in-memory executor)', function () {
  this.timeout(20_000);

  let store: Store;
  let executor: MemoryExecutor;
  let stops: Array<{ abort: AbortController; done: Promise<void> }>;

  beforeEach(async () => {
    ({ store } = await tempSqliteStore());
    stops = [];
  });

  afterEach(async () => {
    await stopControllers();
    await executor?.close();
    await store.close();
  });

  function start(using: MemoryExecutor, options: Partial<ControllerOptions> = {}): Controller {
    executor = using;
    const controller = new Controller({
      store,
      runtimes: new Runtimes([using], using.runtime),
      retryBaseMs: 20,
      stopGraceSeconds: 1,
      pingMs: 100,
      logger: createLogger('silent'),
      metrics: createMetrics(createRegistry()),
      ...options,
    });
    const abort = new AbortController();
    stops.push({ abort, done: controller.start(abort.signal) });
    return controller;
  }

  async function stopControllers(): Promise<void> {
    for (const { abort } of stops) abort.abort();
    await Promise.all(stops.map(({ done }) => done));
    stops = [];
  }

  const createApp = (spec: Partial<AppSpec>): Promise<StoredApp> => store.createApp({ name: uniqueName('rec'), spec: appSpec(spec), source: 'api' });
  const ask = async (app: StoredApp): Promise<StoredRun> => (await requestRun(store, app)).run;
  const until = (run: StoredRun, what: string, test: (status: RunStatus) => boolean): Promise<StoredRun> =>
    waitFor(`run ${run.metadata.name} ${what}`, async () => {
      const now = await store.mustGetRun(run.id);
      return test(now.status) ? now : undefined;
    });
  const finished = (run: StoredRun) => until(run, 'to finish', (s) => isTerminal(s.phase));

  it('gives each attempt a workload of its own and removes the failed one', async () => {
    start(new MemoryExecutor());
    const run = await finished(await ask(await createApp({ command: ['sh', '-c', 'echo try; exit 2'], retries: 2 })));
    assert.equal(run.status.phase, 'Failed');
    assert.equal(run.status.attempts, 3);
    assert.equal(run.status.containerName, workloadName(run.metadata.uid, 3));
    assert.equal((await store.getLogs(run.id))?.content, 'try\n--- berth: attempt 2 ---\ntry\n--- berth: attempt 3 ---\ntry\n');
    await waitFor('every attempt removed', async () => (await executor.listOwned()).length === 0);
  });

  it('keeps every attempt’s workload with keepContainers', async () => {
    start(new MemoryExecutor(), { keepContainers: true });
    const run = await finished(await ask(await createApp({ command: ['sh', '-c', 'exit 2'], retries: 1 })));
    const names = (await executor.listOwned()).map((w) => w.name);
    assert.deepEqual(names.sort(), [workloadName(run.metadata.uid, 1), workloadName(run.metadata.uid, 2)].sort());
  });

  it('retries an attempt whose workload was lost, saying why', async () => {
    start(new MemoryExecutor());
    const app = await createApp({ command: ['sh', '-c', 'if [ -e /tmp/never ]; then exit 9; fi; sleep 30'], retries: 1 });
    const running = await until(await ask(app), 'to run', (s) => s.phase === 'Running');
    await waitFor('the workload to run', async () => (await executor.observe(running.status.containerName!)).state === 'running');
    executor.lose(running.status.containerName!, 'pod evicted: the node ran low on memory');
    const retried = await until(running, 'to run its second attempt', (s) => s.attempts === 2 && s.phase === 'Running');
    assert.deepEqual(
      retried.status.history?.map((a) => [a.attempt, a.reason, a.message]),
      [
        [1, 'ContainerLost', 'pod evicted: the node ran low on memory'],
        [2, undefined, undefined],
      ],
    );
  });

  it('fails a run whose workload will never start, without waiting for its deadline', async () => {
    const stuckExecutor = new StuckExecutor();
    start(stuckExecutor);
    const app = await createApp({ command: ['sh', '-c', 'sleep 30'], timeoutSeconds: 600 });
    const run = await ask(app);
    stuckExecutor.stuck.set(workloadName(run.metadata.uid, 1), {
      state: 'waiting',
      reason: WaitingReason.ImagePullFailed,
      terminal: true,
      message: 'Back-off pulling image "registry.example/missing:1"',
    });
    const done = await finished(run);
    assert.equal(done.status.phase, 'Failed');
    assert.equal(done.status.reason, 'ImagePullFailed');
    assert.equal(done.status.message, 'Back-off pulling image "registry.example/missing:1"');
  });

  it('fails a launch the runtime refuses, once, and retries one the runtime failed on its side', async () => {
    start(new MemoryExecutor());
    executor.failNext(new RuntimeRefusedError('memory limit below the minimum the runtime allows'), { calls: ['launch'] });
    const refused = await finished(await ask(await createApp({ command: ['true'] })));
    assert.equal(refused.status.phase, 'Failed');
    assert.equal(refused.status.reason, 'LaunchFailed');
    assert.equal(refused.status.message, 'the docker runtime refused to launch the run: memory limit below the minimum the runtime allows');
    assert.equal(refused.status.attempts, 0);

    executor.failNext(() => new RuntimeApiError('the runtime answered 500'), { times: 3, calls: ['launch'] });
    const retried = await finished(await ask(await createApp({ command: ['true'] })));
    assert.equal(retried.status.phase, 'Succeeded');
    assert.equal(retried.status.attempts, 1);
  });

  it('keeps the output of a run stopped at its deadline on a runtime that stops by deleting', async () => {
    start(new DeletingExecutor());
    const run = await finished(await ask(await createApp({ command: ['sh', '-c', 'echo started; sleep 30'], timeoutSeconds: 1 })));
    assert.equal(run.status.phase, 'Failed');
    assert.equal(run.status.reason, 'DeadlineExceeded');
    assert.equal((await store.getLogs(run.id))?.content, 'started\n');
  });

  it('keeps the output of a cancelled run on a runtime that stops by deleting', async () => {
    start(new DeletingExecutor());
    const running = await until(await ask(await createApp({ command: ['sh', '-c', 'echo working; sleep 30'] })), 'to run', (s) => s.phase === 'Running');
    await waitFor('output', async () => (await executor.listOwned()).length === 1);
    await store.mutateRunStatus(running.id, (r) => ({ ...r.status, cancelRequested: { reason: 'Cancelled', message: 'cancelled by the test' } }));
    const done = await finished(running);
    assert.equal(done.status.phase, 'Cancelled');
    assert.equal((await store.getLogs(running.id))?.content, 'working\n');
  });

  it('at start, adopts a launch a crash left unrecorded and removes an attempt the run has moved past', async () => {
    const memory = new CountingExecutor();
    const app = await createApp({ command: ['sh', '-c', 'echo adopted'], retries: 1 });
    const run = await ask(app);
    // A first attempt recorded as failed, its workload left behind; a second launched but never recorded.
    await store.mutateRunStatus(run.id, (r) => ({
      ...r.status,
      attempts: 1,
      containerName: workloadName(run.metadata.uid, 1),
      reason: 'Error',
      history: [{ attempt: 1, startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(), exitCode: 1, reason: 'Error' }],
    }));
    const launch = (attempt: number) => ({
      name: workloadName(run.metadata.uid, attempt),
      runUid: run.metadata.uid,
      runName: run.metadata.name,
      appName: app.metadata.name,
      attempt,
      storeId: store.id,
      template: run.spec.template,
    });
    await memory.launch(launch(1));
    await memory.launch(launch(2));
    start(memory);
    const done = await finished(run);
    assert.equal(done.status.phase, 'Succeeded');
    assert.equal(done.status.attempts, 2);
    assert.equal((await store.getLogs(run.id))?.content, '--- berth: attempt 2 ---\nadopted\n');
    // The second attempt is the one launched before the start: no workload was created after it.
    assert.deepEqual(memory.created, [launch(1).name, launch(2).name]);
    await waitFor('both workloads removed', async () => (await executor.listOwned()).length === 0);
  });

  it('stops and removes the workload of a run that is deleted while it runs', async () => {
    start(new MemoryExecutor());
    const app = await createApp({ command: ['sh', '-c', 'sleep 30'] });
    await until(await ask(app), 'to run', (s) => s.phase === 'Running');
    await store.deleteApp(app.id);
    await waitFor('the workload removed', async () => (await executor.listOwned()).length === 0);
  });
});
