/**
 * The Kubernetes executor when its API server goes away and comes back: it
 * says so (ping, reads), keeps watching quietly, and catches up by itself,
 * including when the history it would resume from has been compacted away
 * (410 Gone → relist). These tests kill and restart the test cluster's
 * kube-apiserver (.ci/k8s/restart-apiserver.sh); etcd, the kubelet and the
 * pods keep running meanwhile.
 */

import { Watch } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { RuntimeUnavailableError } from '../../src/errors';
import { WorkloadAction, workloadName, type LaunchRequest, type Observation, type WorkloadEvent } from '../../src/executors/executor';
import { KubernetesExecutor } from '../../src/executors/kubernetes';
import { readText } from '../contract/executor.contract';
import { TEST_IMAGE, appSpec, uniqueName } from '../helpers/fixtures';
import { compactEtcd, killApiserver, startApiserver, testCluster, testNamespace, waitForPodsToRun, type Cluster, type TestNamespace } from '../helpers/kube';
import { waitFor } from '../helpers/wait';

/**
 * After an API server restart, the cluster's own scheduler and controllers take up to half a minute to
 * reconnect (measured: a Job's pod was scheduled 34 s after the restart): waits on the cluster allow for it.
 */
const AFTER_RESTART_MS = 90_000;

describe('KubernetesExecutor when the API server goes away', function () {
  this.timeout(300_000);

  const docker = new Docker();
  let cluster: Cluster;
  let namespace: TestNamespace;
  let executor: KubernetesExecutor;
  let watching: AbortController;
  let watched: Promise<void>;
  let events: WorkloadEvent[];
  let watchErrors: Error[];
  let appName: string;

  before(async () => {
    cluster = await testCluster();
    namespace = await testNamespace(cluster);
  });

  after(async () => {
    // Whatever happened, the next file finds a cluster that answers and runs pods again.
    await startApiserver();
    if (namespace) await waitForPodsToRun(cluster, namespace.name, TEST_IMAGE);
    await namespace?.remove();
  });

  beforeEach(() => {
    appName = uniqueName('k8s-api');
    events = [];
    watchErrors = [];
    executor = new KubernetesExecutor({
      kubeconfig: namespace.kubeconfig,
      requestTimeoutMs: 5_000,
      watchInitialBackoffMs: 200,
      watchMaxBackoffMs: 1_000,
      onWatchError: (error) => watchErrors.push(error),
    });
    watching = new AbortController();
    watched = executor.watch((event) => events.push(event), watching.signal);
  });

  afterEach(async () => {
    await startApiserver();
    watching.abort();
    await watched;
    for (const workload of (await executor.listOwned()).filter((w) => w.appName === appName)) await executor.remove(workload.name);
  });

  const launchShell = async (script: string): Promise<LaunchRequest> => {
    const runUid = randomUUID();
    const launch: LaunchRequest = {
      name: workloadName(runUid, 1),
      runUid,
      runName: uniqueName('run'),
      appName,
      attempt: 1,
      template: appSpec({ image: TEST_IMAGE, command: ['sh', '-c', script] }),
    };
    await executor.launch(launch);
    return launch;
  };

  const waitForObservation = <S extends Observation['state']>(
    name: string,
    state: S,
    timeoutMs = AFTER_RESTART_MS,
  ): Promise<Extract<Observation, { state: S }>> =>
    waitFor(
      `${name} to be ${state}`,
      async () => {
        const observation = await executor.observe(name);
        return observation.state === state ? (observation as Extract<Observation, { state: S }>) : undefined;
      },
      { timeoutMs },
    );

  const actionsOf = (name: string): WorkloadAction[] => events.filter((event) => event.name === name).map((event) => event.action);

  /** The Docker container of a workload's pod, as the kubelet made it: what the tests look at while the API server is away. */
  const containerOf = async (name: string): Promise<Docker.ContainerInfo | undefined> => {
    const containers = await docker.listContainers({
      all: true,
      filters: { label: ['io.kubernetes.container.name=main', `io.kubernetes.pod.namespace=${namespace.name}`] },
    });
    return containers.find((container) => container.Labels['io.kubernetes.pod.name']?.startsWith(`${name}-`));
  };

  it('says it is unavailable while the API server is down, and sees the exit that happened meanwhile once it is back', async () => {
    const launch = await launchShell('echo started; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo finishing; exit 3');
    await waitForObservation(launch.name, 'running');
    await waitFor('a started event', () => actionsOf(launch.name).includes(WorkloadAction.Started));
    const container = await waitFor('the container', () => containerOf(launch.name));

    await killApiserver();
    await assert.rejects(executor.ping(), (error: unknown) => {
      assert.ok(error instanceof RuntimeUnavailableError, String(error));
      assert.match(error.message, new RegExp(`^Kubernetes API server at ${cluster.server} is unreachable \\(reading /version\\): .*(ECONNREFUSED|ECONNRESET)`));
      return true;
    });
    // The caches still hold what was last seen: a reading, never a made-up end.
    try {
      assert.equal((await executor.observe(launch.name)).state, 'running');
    } catch (error) {
      assert.ok(error instanceof RuntimeUnavailableError, String(error));
    }
    await assert.rejects(executor.launch({ ...launch, name: workloadName(randomUUID(), 1) }), RuntimeUnavailableError);

    // The process ends while nobody can tell the API server.
    const exec = await docker.getContainer(container.Id).exec({ Cmd: ['touch', '/tmp/go'] });
    await exec.start({});
    await waitFor('the container to exit', async () => (await docker.getContainer(container.Id).inspect()).State.Status === 'exited');
    await waitFor('the watch to report failing to reconnect', () => watchErrors.some((error) => error instanceof RuntimeUnavailableError));
    assert.ok(!actionsOf(launch.name).includes(WorkloadAction.Exited));

    await startApiserver();
    await executor.ping();
    const exited = await waitForObservation(launch.name, 'exited');
    assert.equal(exited.exitCode, 3);
    await waitFor('an exited event from the resumed watch', () => actionsOf(launch.name).includes(WorkloadAction.Exited), { timeoutMs: AFTER_RESTART_MS });
    assert.equal(await readText(await executor.logs(launch.name)), 'started\nfinishing\n');
    const named = watchErrors.find((error) => error instanceof RuntimeUnavailableError);
    assert.match(named?.message ?? '', new RegExp(`^Kubernetes API server at ${cluster.server} is unreachable \\(watching (Jobs|pods)\\)`));
  });

  it('relists when the history it would resume from was compacted (410 Gone), and goes on reporting', async () => {
    // Only Jobs matter here, not pods: right after an API server restart the cluster's own scheduler is slow to
    // schedule (see AFTER_RESTART_MS), and the watch's resumption shows in Job events alone.
    const first = await launchShell('sleep 300');
    await waitFor('the watch to see the first Job', () => actionsOf(first.name).length > 0);
    // Nothing the executor watches changes from here on: whatever it saw last is at or before this version.
    const seen = (await cluster.batch.listNamespacedJob({ namespace: namespace.name })).metadata?.resourceVersion;
    assert.ok(seen);
    // Two writes elsewhere, so compacting at the newest revision leaves the one after `seen` behind too (a watch from
    // `seen` starts at the revision after it).
    for (let write = 0; write < 2; write += 1) {
      await cluster.core.createNamespacedConfigMap({
        namespace: namespace.name,
        body: { metadata: { name: uniqueName('bump') }, data: { at: new Date().toISOString() } },
      });
    }

    await killApiserver();
    await compactEtcd();
    await startApiserver();

    // Resuming a Jobs watch (served by etcd: the Jobs watch cache is off) from what the executor saw is 410 Gone now.
    assert.equal(await rawWatchStatus(cluster, `/apis/batch/v1/namespaces/${namespace.name}/jobs`, seen), 410);

    const second = await launchShell('echo two');
    await waitFor('an event for a Job created after the compaction', () => actionsOf(second.name).length > 0, { timeoutMs: 30_000 });
    assert.equal((await executor.observe(second.name)).state, 'waiting');
    await executor.remove(first.name);
    await waitFor('a removed event for the Job listed before the compaction', () => actionsOf(first.name).includes(WorkloadAction.Removed), {
      timeoutMs: 30_000,
    });
  });
});

/**
 * The answer to a watch from `resourceVersion`: its HTTP status, or the code
 * of the error event it opens with (how the API server says 410 once the
 * watch has started); 200 when the watch simply runs (for 5 s).
 */
async function rawWatchStatus(cluster: Cluster, path: string, resourceVersion: string): Promise<number> {
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<number>((resolve, reject) => {
      timer = setTimeout(() => resolve(200), 5_000);
      new Watch(cluster.kubeConfig)
        .watch(
          path,
          { resourceVersion },
          (type, object: { code?: number }) => {
            if (type === 'ERROR') resolve(object.code ?? 0);
          },
          // A stream that ends cleanly may end before its last line is read: only a status of its own is an answer here.
          (error: { statusCode?: number } | null) => {
            if (error?.statusCode) resolve(error.statusCode);
          },
        )
        .then((opened) => (controller = opened), reject);
    });
  } finally {
    clearTimeout(timer);
    controller?.abort();
  }
}
