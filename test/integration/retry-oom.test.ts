import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { Controller } from '../../src/controller/controller';
import { requestRun } from '../../src/controller/run-requests';
import { DockerExecutor } from '../../src/executors/docker';
import { LABEL_APP, workloadName } from '../../src/executors/executor';
import { Runtimes } from '../../src/executors/runtimes';
import { createLogger } from '../../src/log';
import { isTerminal } from '../../src/model/types';
import type { Store, StoredRun } from '../../src/store/store';
import { appSpec, tempSqliteStore, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

const Mi = 2 ** 20;
/** The command needs no network; none keeps the test off the engine's bridge. */
const network = 'none';

describe('retryPolicy.onOOM on a real Docker engine', function () {
  this.timeout(60_000);

  const docker = new Docker();
  let store: Store;
  let appName: string;
  let abort: AbortController;
  let done: Promise<void>;

  beforeEach(async () => {
    ({ store } = await tempSqliteStore());
    appName = uniqueName('oom');
    abort = new AbortController();
    const controller = new Controller({
      store,
      runtimes: new Runtimes([new DockerExecutor()], 'docker'),
      retryBaseMs: 50,
      stopGraceSeconds: 1,
      pingMs: 200,
      // Every attempt's container stays, to be inspected for the limit it really had.
      keepContainers: true,
      logger: createLogger((process.env.BERTH_TEST_LOG as 'debug') ?? 'silent'),
      // Other suites share the engine: adopt only this test's containers.
      ownsWorkload: (workload) => workload.appName === appName,
    });
    done = controller.start(abort.signal);
  });

  afterEach(async () => {
    abort.abort();
    await done;
    const leftovers = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${appName}`] } });
    await Promise.all(leftovers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
    await store.close();
  });

  it('retries an OOM-killed attempt with twice the memory until it fits', async () => {
    // Holds 18 MiB in a shell variable, which takes more than 32Mi and less than 48Mi (measured on this engine):
    // killed under 16Mi and 32Mi, fits in 64Mi with room to spare. (24 MiB needed 48–64Mi: too near the last limit.)
    const app = await store.createApp({
      name: appName,
      source: 'api',
      spec: appSpec({
        command: ['sh', '-c', 'x=$(head -c 18m /dev/zero | tr "\\0" a); echo ${#x}'],
        retries: 3,
        network,
        resources: { memory: '16Mi' },
        retryPolicy: { onOOM: { memoryFactor: 2, maxMemory: '1Gi' } },
      }),
    });
    const asked = (await requestRun(store, app, {})).run;
    const run = await waitFor(`run ${asked.metadata.name} to finish`, async () => {
      const now = await store.mustGetRun(asked.id);
      return isTerminal(now.status.phase) ? now : undefined;
    });

    assert.equal(run.status.phase, 'Succeeded', JSON.stringify(run.status));
    assert.equal(run.status.attempts, 3);
    assert.deepEqual(
      run.status.history?.map((a) => [a.attempt, a.memory, a.reason]),
      [
        [1, '16Mi', 'OOMKilled'],
        [2, '32Mi', 'OOMKilled'],
        [3, '64Mi', 'Completed'],
      ],
    );
    assert.equal(run.status.history?.[1].message, 'killed for exceeding its memory limit (32Mi)');
    const limits = await Promise.all(
      [1, 2, 3].map(async (attempt) => (await docker.getContainer(workloadName(run.metadata.uid, attempt)).inspect()).HostConfig.Memory),
    );
    assert.deepEqual(limits, [16 * Mi, 32 * Mi, 64 * Mi]);
    assert.match((await store.getLogs(run.id))?.content ?? '', /18874368/);
  });

  it('without onOOM retries an OOM kill with the same memory', async () => {
    const app = await store.createApp({
      name: appName,
      source: 'api',
      spec: appSpec({ command: ['sh', '-c', 'x=$(head -c 18m /dev/zero | tr "\\0" a); echo ${#x}'], retries: 1, network, resources: { memory: '16Mi' } }),
    });
    const asked = (await requestRun(store, app, {})).run;
    const run: StoredRun = await waitFor(`run ${asked.metadata.name} to finish`, async () => {
      const now = await store.mustGetRun(asked.id);
      return isTerminal(now.status.phase) ? now : undefined;
    });
    assert.equal(run.status.phase, 'Failed');
    assert.deepEqual(
      run.status.history?.map((a) => [a.memory, a.reason]),
      [
        ['16Mi', 'OOMKilled'],
        ['16Mi', 'OOMKilled'],
      ],
    );
    assert.equal((await docker.getContainer(workloadName(run.metadata.uid, 2)).inspect()).HostConfig.Memory, 16 * Mi);
  });
});
