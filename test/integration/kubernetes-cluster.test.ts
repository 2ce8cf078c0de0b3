/**
 * What only the Kubernetes executor does, on the real test cluster (.ci/k8s),
 * as berth's ServiceAccount bound to the shipped Role: the Job it makes, the
 * permissions it needs and names, the pod outcomes a cluster has and Docker
 * has not (an OOM kill the shell survives, a pull that fails for a while, a
 * pod deleted underneath its Job), and stopping without losing what was read.
 * What every executor does is the contract (kubernetes-executor.test.ts).
 */

import type { V1Job, V1Pod } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, NotFoundError, RuntimeRefusedError, RuntimeUnavailableError } from '../../src/errors';
import {
  LABEL_APP,
  LABEL_ATTEMPT,
  LABEL_MANAGED_BY,
  LABEL_RUN,
  LABEL_STORE,
  WaitingReason,
  workloadName,
  type LaunchRequest,
  type Observation,
} from '../../src/executors/executor';
import { KubernetesExecutor, type KubernetesExecutorOptions } from '../../src/executors/kubernetes';
import type { AppSpec } from '../../src/model/types';
import { readText } from '../contract/executor.contract';
import { TEST_IMAGE, appSpec, tempDir, uniqueName } from '../helpers/fixtures';
import { shippedRoleRules, testCluster, testNamespace, writeKubeconfig, type Cluster, type TestNamespace } from '../helpers/kube';
import { waitFor } from '../helpers/wait';

/** client-node's model objects as the plain JSON they stand for. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

describe('KubernetesExecutor on a real cluster', function () {
  this.timeout(90_000);

  let cluster: Cluster;
  let namespace: TestNamespace;
  let executor: KubernetesExecutor;
  let appName: string;
  const storeId = randomUUID();

  before(async () => {
    cluster = await testCluster();
    namespace = await testNamespace(cluster);
  });

  after(async () => {
    await namespace?.remove();
  });

  const make = (options: KubernetesExecutorOptions = {}): KubernetesExecutor =>
    new KubernetesExecutor({ kubeconfig: namespace.kubeconfig, imagePullGraceMs: 4_000, watchInitialBackoffMs: 100, watchMaxBackoffMs: 1_000, ...options });

  beforeEach(() => {
    executor = make();
    appName = uniqueName('k8s');
  });

  afterEach(async () => {
    for (const workload of (await executor.listOwned()).filter((w) => w.appName === appName)) await executor.remove(workload.name);
  });

  const request = (spec: Partial<AppSpec>): LaunchRequest => {
    const runUid = randomUUID();
    return {
      name: workloadName(runUid, 1),
      runUid,
      runName: uniqueName('run'),
      appName,
      attempt: 1,
      storeId,
      template: appSpec({ image: TEST_IMAGE, ...spec }),
    };
  };

  const waitForObservation = <S extends Observation['state']>(
    name: string,
    state: S,
    { timeoutMs = 30_000, using = executor }: { timeoutMs?: number; using?: KubernetesExecutor } = {},
  ): Promise<Extract<Observation, { state: S }>> =>
    waitFor(
      `${name} to be ${state}`,
      async () => {
        const observation = await using.observe(name);
        return observation.state === state ? (observation as Extract<Observation, { state: S }>) : undefined;
      },
      { timeoutMs },
    );

  const jobOf = (name: string): Promise<V1Job> => cluster.batch.readNamespacedJob({ name, namespace: namespace.name });
  const podsOf = async (name: string): Promise<V1Pod[]> =>
    (await cluster.core.listNamespacedPod({ namespace: namespace.name, labelSelector: `job-name=${name}` })).items;

  describe('the Job', () => {
    it('makes one Job per attempt with berth labels, no retries of its own, a deadline backstop and the App as the process', async () => {
      const launch = request({
        command: ['sh', '-c', 'echo "$GREETING"'],
        env: { GREETING: 'hello' },
        resources: { memory: '256Mi', cpu: '0.5' },
        timeoutSeconds: 60,
        kubernetes: {
          labels: { team: 'data', [LABEL_RUN]: 'not-this' },
          annotations: { 'example.com/owner': 'data team' },
          nodeSelector: { 'kubernetes.io/hostname': 'berth-node' },
          tolerations: [{ key: 'example.com/batch', operator: 'Exists', effect: 'NoSchedule' }],
        },
      });
      await make({ deadlineBackstopSeconds: 120 }).launch(launch);
      const job = await jobOf(launch.name);
      const labels = { [LABEL_RUN]: launch.runUid, [LABEL_APP]: appName, [LABEL_ATTEMPT]: '1', [LABEL_MANAGED_BY]: 'berth', [LABEL_STORE]: storeId };
      assert.deepEqual(job.metadata?.labels, labels);
      assert.equal(job.metadata?.annotations?.['berth.dev/run-name'], launch.runName);
      assert.equal(job.spec?.backoffLimit, 0);
      assert.equal(job.spec?.activeDeadlineSeconds, 60 + 120);
      const template = job.spec!.template;
      // berth's labels win a clash with the App's own; the Job API adds its own two.
      const { 'controller-uid': _uid, 'job-name': jobName, ...podLabels } = template.metadata?.labels ?? {};
      assert.equal(jobName, launch.name);
      assert.deepEqual(podLabels, { ...labels, team: 'data' });
      assert.deepEqual(template.metadata?.annotations, { 'example.com/owner': 'data team' });
      const pod = template.spec!;
      assert.equal(pod.restartPolicy, 'Never');
      assert.equal(pod.automountServiceAccountToken, false);
      assert.equal(pod.enableServiceLinks, false);
      assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/hostname': 'berth-node' });
      assert.deepEqual(plain(pod.tolerations), [{ key: 'example.com/batch', operator: 'Exists', effect: 'NoSchedule' }]);
      const [container] = pod.containers;
      assert.equal(container.command, undefined, "the image's entrypoint stays, as with Docker's Cmd");
      assert.deepEqual(container.args, ['sh', '-c', 'echo "$GREETING"']);
      assert.deepEqual(plain(container.env), [{ name: 'GREETING', value: 'hello' }]);
      assert.equal(container.imagePullPolicy, 'IfNotPresent');
      assert.deepEqual(plain(container.resources), { requests: { memory: '256Mi', cpu: '500m' }, limits: { memory: '256Mi', cpu: '500m' } });
      assert.equal((await waitForObservation(launch.name, 'exited')).exitCode, 0);
      assert.equal(await readText(await executor.logs(launch.name)), 'hello\n');
    });

    it('passes $(NAME) and $$ through to the process unexpanded, as Docker does', async () => {
      const launch = request({
        command: ['sh', '-c', 'printf "%s\\n" "$LITERAL" "$1"', 'sh', '$(WHO) costs $$5'],
        env: { WHO: 'world', LITERAL: 'a$(WHO)b$$c' },
      });
      await executor.launch(launch);
      assert.equal((await waitForObservation(launch.name, 'exited')).exitCode, 0);
      assert.equal(await readText(await executor.logs(launch.name)), 'a$(WHO)b$$c\n$(WHO) costs $$5\n');
    });

    it('gives an App name too long for a label a shortened label and its full name in an annotation', async () => {
      appName = `${uniqueName('k8s')}-${'x'.repeat(80)}`;
      const launch = request({ command: ['sh', '-c', 'exit 0'] });
      await executor.launch(launch);
      const label = (await jobOf(launch.name)).metadata?.labels?.[LABEL_APP] ?? '';
      assert.ok(label.length <= 63 && label.startsWith(appName.slice(0, 20)), `label ${label}`);
      const [owned] = (await executor.listOwned()).filter((w) => w.runUid === launch.runUid);
      assert.equal(owned.appName, appName);
    });
  });

  describe('permissions', () => {
    it('works with exactly the shipped Role, and names every missing permission in one line on ping', async () => {
      await executor.ping();
      const lacking = shippedRoleRules()
        .map((rule) => ({
          ...rule,
          verbs: rule.verbs.filter(
            (verb) => !(rule.resources?.includes('pods') && verb === 'delete') && !(rule.resources?.includes('jobs') && verb === 'create'),
          ),
        }))
        .filter((rule) => !rule.resources?.includes('pods/log'));
      const restricted = await testNamespace(cluster, { prefix: 'berth-test-rbac', rules: lacking });
      try {
        const limited = new KubernetesExecutor({ kubeconfig: restricted.kubeconfig });
        assert.equal(limited.namespace, restricted.name, "the namespace comes from the kubeconfig's context");
        await assert.rejects(limited.ping(), (error: unknown) => {
          assert.ok(error instanceof RuntimeUnavailableError, String(error));
          assert.equal(
            error.message,
            `berth's account lacks permissions in namespace ${restricted.name} on the Kubernetes API server at ${cluster.server}: create jobs, delete pods, get pods/log (manifests/base/role.yaml grants what berth needs)`,
          );
          return true;
        });
        await assert.rejects(limited.launch(request({})), (error: unknown) => {
          assert.ok(error instanceof RuntimeRefusedError, String(error));
          assert.equal(error.retryable, false);
          assert.match(
            error.message,
            new RegExp(`^Kubernetes API server refused creating Job berth-run-.*: berth's account lacks "create jobs" in namespace ${restricted.name}`),
          );
          return true;
        });
      } finally {
        await restricted.remove();
      }
    });
  });

  describe('outcomes', () => {
    it('reports an OOM kill of a child even though the shell, and so the Job, ends well', async () => {
      const launch = request({ command: ['sh', '-c', 'tail /dev/zero; echo "child ended $?"'], resources: { memory: '32Mi' } });
      await executor.launch(launch);
      const exited = await waitForObservation(launch.name, 'exited');
      assert.deepEqual({ exitCode: exited.exitCode, oomKilled: exited.oomKilled }, { exitCode: 0, oomKilled: true });
      // busybox's shell says "Killed" on stderr for a child ended by SIGKILL (stderr and stdout are two pipes: either may come first).
      const lines = (await readText(await executor.logs(launch.name))).split('\n').sort();
      assert.deepEqual(lines, ['', 'Killed', 'child ended 137']);
      // The Job completed: only the container says OOMKilled.
      await waitFor('the Job to complete', async () =>
        (await jobOf(launch.name)).status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True'),
      );
    });

    it('waits on a failing pull for the grace period from its first failure, then gives up with the registry’s words', async () => {
      const image = '127.0.0.1:5000/berth-test/busybox:no-such-tag';
      const launch = request({ image, command: ['sh', '-c', 'exit 0'] });
      await executor.launch(launch);
      const pulling = await waitFor('the pull to fail', async () => {
        const observation = await executor.observe(launch.name);
        return observation.state === 'waiting' && observation.reason === WaitingReason.Pulling ? observation : undefined;
      });
      const firstFailure = Date.now();
      assert.equal(pulling.terminal, false);
      const given = await waitFor('the pull to be given up', async () => {
        const observation = await executor.observe(launch.name);
        return observation.state === 'waiting' && observation.terminal ? observation : undefined;
      });
      const waited = Date.now() - firstFailure;
      assert.ok(waited >= 3_900 && waited < 4_000 + 10_000, `gave up ${waited} ms after the first failure seen, with a 4 s grace`);
      assert.equal(given.reason, WaitingReason.ImagePullFailed);
      assert.ok(given.message?.startsWith(`image "${image}" cannot be pulled: `), given.message);
      assert.match(given.message ?? '', /not found|manifest unknown/);
    });

    it('gives up at once on an image that is absent under imagePullPolicy Never', async () => {
      const image = `berth-test/no-such-image-${uniqueName('x')}:latest`;
      const launch = request({ image, imagePullPolicy: 'Never', command: ['sh', '-c', 'exit 0'] });
      await make({ imagePullGraceMs: 600_000 }).launch(launch);
      const given = await waitFor('the pod to say its image is never pulled', async () => {
        const observation = await executor.observe(launch.name);
        return observation.state === 'waiting' && observation.terminal ? observation : undefined;
      });
      assert.equal(given.reason, WaitingReason.ImagePullFailed);
      assert.match(given.message ?? '', new RegExp(`^image "${image}" cannot be pulled \\(ErrImageNeverPull\\)`));
    });
  });

  describe('a pod deleted underneath its Job', () => {
    it('reports the attempt lost, and never takes the replacement pod for it', async () => {
      const launch = request({ command: ['sh', '-c', 'sleep 300'] });
      await executor.launch(launch);
      await waitForObservation(launch.name, 'running');
      const [original] = await podsOf(launch.name);
      // Graceful, as `kubectl delete pod` is: the pod lingers, terminating, while the Job controller replaces it.
      await cluster.core.deleteNamespacedPod({ name: original.metadata!.name!, namespace: namespace.name, body: { gracePeriodSeconds: 3 } });
      const lost = await waitForObservation(launch.name, 'lost');
      assert.match(
        lost.message,
        new RegExp(`^pod ${original.metadata!.name} of Job ${launch.name} was deleted by something other than berth before its container ended`),
      );
      // The Job carries the loss, and no longer wants a pod: any replacement goes, and none comes.
      const job = await waitFor('the Job to be marked', async () => {
        const read = await jobOf(launch.name);
        return read.metadata?.annotations?.['berth.dev/lost'] ? read : undefined;
      });
      assert.equal(job.spec?.parallelism, 0);
      assert.equal(job.metadata?.annotations?.['berth.dev/lost-pod'], original.metadata!.name);
      await waitFor('every pod of the Job to be on its way out, a replacement included', async () =>
        (await podsOf(launch.name)).every((p) => p.metadata?.deletionTimestamp),
      );
      // A berth that did not see it happen (a restart) still reports the loss, from the Job.
      const restarted = make();
      assert.deepEqual(await restarted.observe(launch.name), { state: 'lost', message: lost.message });
      assert.deepEqual((await restarted.listOwned()).find((w) => w.name === launch.name)?.observation, { state: 'lost', message: lost.message });
    });

    it('sees a pod force-deleted at once while it watches, before any replacement can pass for it', async () => {
      const watching = new AbortController();
      const watched = executor.watch(() => undefined, watching.signal);
      try {
        const launch = request({ command: ['sh', '-c', 'sleep 300'] });
        await executor.launch(launch);
        await waitForObservation(launch.name, 'running');
        const [original] = await podsOf(launch.name);
        await cluster.core.deleteNamespacedPod({ name: original.metadata!.name!, namespace: namespace.name, body: { gracePeriodSeconds: 0 } });
        const lost = await waitForObservation(launch.name, 'lost');
        assert.match(lost.message, new RegExp(`^pod ${original.metadata!.name} of Job ${launch.name} was deleted`));
        await waitFor('the Job to be marked', async () => !!(await jobOf(launch.name)).metadata?.annotations?.['berth.dev/lost']);
        await waitFor('every pod of the Job to be on its way out, a replacement included', async () =>
          (await podsOf(launch.name)).every((p) => p.metadata?.deletionTimestamp),
        );
        assert.deepEqual(await make().observe(launch.name), { state: 'lost', message: lost.message });
      } finally {
        watching.abort();
        await watched;
      }
    });
  });

  describe('stop', () => {
    it('keeps what was read before a cancel, and a log followed through it gets the end', async () => {
      const launch = request({ command: ['sh', '-c', 'trap "echo got TERM; exit 3" TERM; echo before; while :; do sleep 0.1; done'] });
      await executor.launch(launch);
      const before = await waitFor('the first line', async () => {
        const text = await readText(await executor.logs(launch.name));
        return text.includes('before\n') ? text : undefined;
      });
      const followed = readText(await executor.logs(launch.name, { follow: true }));
      const [pod] = await podsOf(launch.name);
      await executor.stop(launch.name, 10);
      assert.equal(before, 'before\n');
      assert.equal(await followed, 'before\ngot TERM\n');
      assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
      await assert.rejects(executor.logs(launch.name), NotFoundError);
      // The Job went first, so nothing made a replacement: the only pod there ever was is going, or gone.
      await assert.rejects(jobOf(launch.name), (error: { code?: number }) => error.code === 404);
      const pods = await podsOf(launch.name);
      assert.ok(
        pods.every((p) => p.metadata?.uid === pod.metadata?.uid && p.metadata?.deletionTimestamp),
        JSON.stringify(pods.map((p) => p.metadata?.name)),
      );
    });

    it('stops a workload still waiting for its image', async () => {
      const launch = request({ image: '127.0.0.1:5000/berth-test/busybox:no-such-tag', command: ['sh', '-c', 'exit 0'] });
      await executor.launch(launch);
      await waitForObservation(launch.name, 'waiting');
      await executor.stop(launch.name, 1);
      assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
    });
  });

  describe('configuration', () => {
    it('refuses what it cannot start with, naming the option', () => {
      assert.throws(
        () => new KubernetesExecutor({ kubeconfig: path.join(tempDir(), 'missing') }),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, /^cannot read the Kubernetes configuration \(.*missing\): /);
          return true;
        },
      );
      assert.throws(() => new KubernetesExecutor({ kubeconfig: namespace.kubeconfig, namespace: 'Not_A_Label' }), {
        name: 'ConfigError',
        message: 'namespace: must be a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters), got "Not_A_Label"',
      });
      assert.throws(() => new KubernetesExecutor({ kubeconfig: namespace.kubeconfig, requestTimeoutMs: 0 }), {
        name: 'ConfigError',
        message: 'requestTimeoutMs: must be a number of milliseconds of at least 1, got 0',
      });
      assert.throws(() => new KubernetesExecutor({ kubeconfig: namespace.kubeconfig, imagePullGraceMs: -1 }), {
        name: 'ConfigError',
        message: 'imagePullGraceMs: must be a number of milliseconds of at least 0, got -1',
      });
    });

    it('takes the namespace given over the context’s, and the context’s over default', () => {
      assert.equal(new KubernetesExecutor({ kubeconfig: namespace.kubeconfig, namespace: 'elsewhere' }).namespace, 'elsewhere');
      assert.equal(new KubernetesExecutor({ kubeconfig: namespace.kubeconfig }).namespace, namespace.name);
      const bare = writeKubeconfig(path.join(tempDir(), 'kubeconfig'), { server: cluster.server });
      assert.equal(new KubernetesExecutor({ kubeconfig: bare }).namespace, 'default');
      assert.ok(fs.existsSync(bare));
    });

    it('names the API server and what it was doing when it cannot be reached', async () => {
      const offline = new KubernetesExecutor({ kubeconfig: writeKubeconfig(path.join(tempDir(), 'kubeconfig'), { server: 'https://127.0.0.1:1' }) });
      await assert.rejects(offline.launch(request({})), (error: unknown) => {
        assert.ok(error instanceof RuntimeUnavailableError);
        assert.match(error.message, /^Kubernetes API server at https:\/\/127\.0\.0\.1:1 is unreachable \(creating Job berth-run-.*\): .*ECONNREFUSED/);
        return true;
      });
    });
  });
});
