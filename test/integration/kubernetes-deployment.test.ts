/**
 * The overlays really deployed on the test cluster (issue 8, "Tested on the
 * test cluster"): the image .ci/image/build.sh makes, the manifests as
 * kustomize renders them, each in a namespace of the test's own.
 * - `single`: the pod becomes Ready on its probes, and an App created through
 *   its API runs as a Job in the cluster, its exit code and logs recorded in
 *   the SQLite file on the volume.
 * - `ha`: two pods on one PostgreSQL elect a leader on a real Lease; the
 *   leader's container SIGKILLed with runs in flight, the other pod leads
 *   within the lease duration, every run finishes once, and the killed one,
 *   restarted by the kubelet, rejoins as a follower.
 *
 * What differs from a user's cluster, and only that, is set here:
 * - the image is the local berth:dev (`imagePullPolicy: Never`: nothing can be
 *   pulled);
 * - the volume is a hostPath PersistentVolume bound to the claim (the test
 *   cluster has no provisioner);
 * - PostgreSQL listens on the host's loopback: pods reach it through a
 *   forwarder on the node IP that the test runs for itself;
 * - the test cluster has no kube-proxy, so the `kubernetes` Service's cluster
 *   IP does not route: the pod is told the address its Endpoints advertise
 *   (KUBERNETES_SERVICE_HOST/PORT, which in-cluster clients read), the same
 *   API server behind it;
 * - the API is reached at the pod's IP, as the issue allows.
 */
import { AppsV1Api, CoordinationV1Api, Watch, type V1Job, type V1Pod } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { exited, freePort } from '../helpers/berth-process';
import { appSpec, TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { buildImage, BUILD_TIMEOUT_MS, IMAGE } from '../helpers/image';
import { testCluster, type Cluster } from '../helpers/kube';
import { apply, find, intoNamespace, render, type K8sObject } from '../helpers/manifests';
import { createDatabase } from '../helpers/postgres';
import { waitFor } from '../helpers/wait';
import { LABEL_RUN } from '../../src/executors/executor';

const UID = 10001;
const TOKEN = randomBytes(24).toString('base64');
const SELECTOR = 'app.kubernetes.io/name=berth';

type Answer = { status: number; body: any };

/** The API of one berth pod, at its IP. */
function podApi(pod: V1Pod) {
  const base = `http://${pod.status!.podIP}:8000`;
  return async (route: string, init: RequestInit = {}): Promise<Answer> => {
    const response = await fetch(`${base}${route}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, body: text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  };
}

const isReady = (pod: V1Pod): boolean => Boolean(pod.status?.podIP && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));

/** One overlay deployed into a namespace of its own, and taken down again. */
class Deployed {
  readonly namespace = uniqueName('berth-deploy');
  private readonly volumes: string[] = [];
  private readonly dirs: string[] = [];

  constructor(private readonly cluster: Cluster) {}

  /** Where pods reach the API server: the address and port the `kubernetes` Endpoints advertise. */
  async apiserverForPods(): Promise<{ host: string; port: number }> {
    const endpoints = await this.cluster.core.readNamespacedEndpoints({ name: 'kubernetes', namespace: 'default' });
    const subset = endpoints.subsets?.[0];
    const host = subset?.addresses?.[0]?.ip;
    const port = subset?.ports?.find((p) => p.name === 'https')?.port;
    assert.ok(host && port, `the kubernetes Endpoints advertise no address: ${JSON.stringify(endpoints.subsets)}`);
    return { host, port };
  }

  /** The overlay's objects, moved into the namespace and set up for the test cluster as the header says, plus EXTRA. */
  async apply(overlay: string, extra: K8sObject[] = []): Promise<void> {
    const rendered = intoNamespace(await render(overlay), this.namespace);
    const container = find(rendered, 'Deployment').spec.template.spec.containers[0];
    container.image = IMAGE;
    container.imagePullPolicy = 'Never';
    const { host, port } = await this.apiserverForPods();
    container.env.push({ name: 'KUBERNETES_SERVICE_HOST', value: host }, { name: 'KUBERNETES_SERVICE_PORT', value: String(port) });
    for (const claim of rendered.filter((o) => o.kind === 'PersistentVolumeClaim')) rendered.unshift(this.volumeFor(claim));
    // The test cluster (1.20) predates policy/v1.
    for (const budget of rendered.filter((o) => o.kind === 'PodDisruptionBudget')) budget.apiVersion = 'policy/v1beta1';
    const token: K8sObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'berth-token', namespace: this.namespace }, stringData: { token: TOKEN } };
    await this.cluster.core.createNamespace({ body: { metadata: { name: this.namespace } } });
    await apply([token, ...extra.map((o) => ({ ...o, metadata: { ...o.metadata, namespace: this.namespace } })), ...rendered]);
  }

  /** A hostPath PersistentVolume bound to CLAIM, in a folder berth's uid owns (fsGroup does not apply to hostPath). */
  private volumeFor(claim: K8sObject): K8sObject {
    const dir = tempDir('berth-deploy-');
    fs.chownSync(dir, UID, UID);
    this.dirs.push(dir);
    const name = `${this.namespace}-${claim.metadata.name}`;
    this.volumes.push(name);
    return {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name },
      spec: {
        capacity: { storage: claim.spec.resources.requests.storage },
        accessModes: claim.spec.accessModes,
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: dir, type: 'Directory' },
        claimRef: { namespace: this.namespace, name: claim.metadata.name },
      },
    };
  }

  get dataDir(): string {
    return this.dirs[0];
  }

  async pods(): Promise<V1Pod[]> {
    return (await this.cluster.core.listNamespacedPod({ namespace: this.namespace, labelSelector: SELECTOR })).items;
  }

  /** COUNT Ready berth pods; the failure names every pod's state. */
  async ready(count: number, timeoutMs = 120_000): Promise<V1Pod[]> {
    return waitFor(
      `${count} berth pod(s) to be Ready`,
      async () => {
        const ready = (await this.pods()).filter(isReady);
        return ready.length === count ? ready : undefined;
      },
      { timeoutMs, intervalMs: 500 },
    ).catch(async (error) => {
      const states = (await this.pods().catch(() => []))
        .map((p) => `${p.metadata?.name}: ${p.status?.phase} ${JSON.stringify(p.status?.containerStatuses?.[0]?.state)}`)
        .join('; ');
      throw new Error(`${(error as Error).message}; pods: ${states}`);
    });
  }

  /** The pods first, so nothing writes to a volume's folder as it goes; the namespace (slow to finalise here) is not waited for. */
  async remove(): Promise<void> {
    await this.cluster.kubeConfig
      .makeApiClient(AppsV1Api)
      .deleteNamespacedDeployment({ name: 'berth', namespace: this.namespace })
      .catch(() => undefined);
    await waitFor('the berth pods to be gone', async () => (await this.pods()).length === 0, { timeoutMs: 60_000, intervalMs: 500 }).catch(() => undefined);
    await this.cluster.core.deleteNamespace({ name: this.namespace }).catch(() => undefined);
    for (const name of this.volumes) await this.cluster.core.deletePersistentVolume({ name }).catch(() => undefined);
    for (const dir of this.dirs) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Waits for a run asked of API to reach a terminal phase. */
const finished = (api: ReturnType<typeof podApi>, route: string, timeoutMs = 90_000) =>
  waitFor(
    `${route} to finish`,
    async () => {
      const { body } = await api(route);
      return ['Succeeded', 'Failed'].includes(body.status?.phase) ? body : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );

describe('deployment: the overlays on the test cluster', function () {
  this.timeout(120_000);
  let cluster: Cluster;

  before(async function () {
    this.timeout(BUILD_TIMEOUT_MS + 60_000);
    cluster = await testCluster();
    await buildImage();
  });

  describe('single', () => {
    let deployed: Deployed;
    let api: ReturnType<typeof podApi>;

    before(async function () {
      this.timeout(180_000);
      deployed = new Deployed(cluster);
      await deployed.apply('single');
      api = podApi((await deployed.ready(1))[0]);
    });

    after(async function () {
      this.timeout(90_000);
      await deployed?.remove();
    });

    it('is Ready with the kubernetes runtime in its own namespace, and synced the Apps of its ConfigMap', async () => {
      const ready = await api('/readyz');
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
      const hello = await api('/apps/hello/');
      assert.equal(hello.status, 200, JSON.stringify(hello.body));
    });

    it('runs an App created through its API as a Job in the cluster, with the exit code and logs kept on its volume', async () => {
      const app = uniqueName('deployed');
      const created = await api('/apps/', {
        method: 'POST',
        body: JSON.stringify({
          apiVersion: 'berth.dev/v1',
          kind: 'App',
          metadata: { name: app },
          spec: appSpec({ image: TEST_IMAGE, command: ['sh', '-c', 'echo from the cluster; sleep 3; exit 3'] }),
        }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const requested = await api(`/apps/${app}/run/`, { method: 'POST', body: '{}' });
      assert.equal(requested.status, 202, JSON.stringify(requested.body));
      const runRoute = `/apps/${app}/run/${requested.body.id}/`;
      // While it runs, it is a Job of the pod's namespace (berth removes it once the outcome and logs are kept).
      const running = await waitFor(
        'the run to be Running',
        async () => {
          const { body } = await api(runRoute);
          return body.status?.phase === 'Running' ? body : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      const jobs = await cluster.batch.listNamespacedJob({ namespace: deployed.namespace, labelSelector: 'app.kubernetes.io/managed-by=berth' });
      assert.deepEqual(
        jobs.items.map((job) => job.metadata?.name),
        [running.status.containerName],
      );

      const run = await finished(api, runRoute);
      assert.equal(run.status.phase, 'Failed', JSON.stringify(run.status));
      assert.equal(run.status.exitCode, 3);
      assert.equal(run.status.runtime, 'kubernetes');
      const logs = await api(`${runRoute}logs/`);
      assert.equal(logs.status, 200);
      assert.match(String(logs.body), /from the cluster/);
      // The store is the SQLite file on the claim's volume, not the pod's own file system.
      assert.ok(
        fs.readdirSync(deployed.dataDir).some((f) => f.startsWith('berth.sqlite')),
        `nothing in ${deployed.dataDir}`,
      );
    });
  });

  describe('ha', () => {
    let deployed: Deployed;
    let database: Awaited<ReturnType<typeof createDatabase>>;
    let forwarder: ChildProcess | undefined;
    let stopJobWatch: (() => void) | undefined;
    /** Job creations seen, per run uid: a run started twice would show two. */
    const jobsCreated = new Map<string, string[]>();
    let pods: V1Pod[] = [];
    /** The Lease the overlay elects on (manifests/overlays/ha/leader-election-role.yaml). */
    const LEASE = 'berth-controller';
    /** The overlay's own election settings (deployment-patch.yaml): 15 s lease, 2 s retry period. */
    const LEASE_MS = 15_000;
    const RETRY_MS = 2_000;

    const holder = async (): Promise<string | undefined> =>
      (
        await cluster.kubeConfig
          .makeApiClient(CoordinationV1Api)
          .readNamespacedLease({ name: LEASE, namespace: deployed.namespace })
          .catch(() => undefined)
      )?.spec?.holderIdentity;
    /** Whether the Lease HOLDER is a process of POD (its name and a random suffix). */
    const holdsIt = (holder: string | undefined, pod: V1Pod): boolean => Boolean(holder?.startsWith(`${pod.metadata?.name}_`));
    const leads = async (pod: V1Pod): Promise<boolean> => /^berth_leader 1/m.test(String((await podApi(pod)('/metrics')).body));

    before(async function () {
      this.timeout(180_000);
      deployed = new Deployed(cluster);
      // PostgreSQL listens on loopback; the pods reach it on the node IP through a forwarder of the test's own.
      database = await createDatabase('berth_deploy');
      const { host } = await deployed.apiserverForPods();
      const port = await freePort();
      forwarder = spawn('socat', [`TCP-LISTEN:${port},bind=${host},reuseaddr,fork`, 'TCP:127.0.0.1:5432'], { stdio: 'ignore' });
      const url = new URL(database.url);
      url.hostname = host;
      url.port = String(port);
      await deployed.apply('ha', [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'berth-db' }, stringData: { url: url.toString() } }]);
      const watch = await new Watch(cluster.kubeConfig).watch(
        `/apis/batch/v1/namespaces/${deployed.namespace}/jobs`,
        {},
        (type: string, job: V1Job) => {
          const run = job.metadata?.labels?.[LABEL_RUN];
          if (type === 'ADDED' && run) jobsCreated.set(run, [...(jobsCreated.get(run) ?? []), job.metadata!.name!]);
        },
        () => undefined,
      );
      stopJobWatch = () => watch.abort();
      pods = await deployed.ready(2);
    });

    after(async function () {
      this.timeout(90_000);
      stopJobWatch?.();
      await deployed?.remove();
      if (forwarder && forwarder.exitCode === null) {
        forwarder.kill();
        await exited(forwarder);
      }
      await database?.drop();
    });

    it('fails over on a real Lease when the leader is SIGKILLed mid-run; every run finishes once; the restarted pod rejoins', async () => {
      const oldHolder = await waitFor('a replica to hold the Lease', holder, { timeoutMs: LEASE_MS * 2 });
      const leader = pods.find((p) => holdsIt(oldHolder, p));
      const follower = pods.find((p) => p !== leader);
      assert.ok(leader && follower, `the Lease names ${oldHolder}, not one of ${pods.map((p) => p.metadata?.name).join(', ')}`);
      await waitFor('the leader to say so on /metrics', () => leads(leader), { timeoutMs: 10_000 });
      assert.equal(await leads(follower), false);
      const api = podApi(follower);

      // Every replica serves the API: the App and its runs are asked of the follower.
      const app = uniqueName('ha');
      const created = await api('/apps/', {
        method: 'POST',
        body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['sh', '-c', 'echo started $TAG; sleep 6; echo done $TAG; exit $CODE'] }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const codes = [0, 7, 0, 3];
      const asked: { id: number }[] = [];
      for (const [i, code] of codes.entries()) {
        const answer = await api(`/apps/${app}/run/`, { method: 'POST', body: JSON.stringify({ env: { TAG: `r${i}`, CODE: String(code) } }) });
        assert.equal(answer.status, 202, JSON.stringify(answer.body));
        asked.push(answer.body);
      }
      await waitFor(
        'a run to be Running',
        async () => ((await api(`/apps/${app}/run/`)).body as { status: { phase: string } }[]).some((r) => r.status.phase === 'Running'),
        {
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );

      // SIGKILL of the leader's berth process: docker kill of its container; the kubelet restarts it in the same pod.
      const restartsBefore = leader.status?.containerStatuses?.[0]?.restartCount ?? 0;
      const containerId = leader.status?.containerStatuses?.[0]?.containerID?.replace(/^docker:\/\//, '');
      assert.ok(containerId, 'the leader pod has no container id');
      const killedAt = Date.now();
      await new Promise<void>((resolve, reject) => {
        const kill = spawn('docker', ['kill', '--signal', 'KILL', containerId], { stdio: 'ignore' });
        kill.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker kill ${containerId} exited ${code}`))));
      });
      // The killed process's successor in the same pod is a candidate of its own (a new identity), so it may win
      // the race when its first look at the Lease comes close to the follower's; either way one process leads.
      const newHolder = await waitFor(
        'another process to take the Lease',
        async () => {
          const now = await holder();
          return now && now !== oldHolder ? now : undefined;
        },
        { timeoutMs: LEASE_MS + 10_000, intervalMs: 100 },
      );
      const failoverMs = Date.now() - killedAt;
      // A follower counts the lease duration from when it saw the last renewal, not from the holder's clock (as
      // client-go does), and looks once per jittered retry period (up to 2.2 of them): it sees that renewal up to
      // one look late, and takes the expired Lease at its next look.
      const boundMs = LEASE_MS + 2 * 2.2 * RETRY_MS + 1_000;
      assert.ok(failoverMs < boundMs, `failover took ${failoverMs} ms (lease ${LEASE_MS} ms, bound ${boundMs} ms)`);
      const newLeader = holdsIt(newHolder, follower) ? follower : leader;
      assert.ok(holdsIt(newHolder, newLeader), `the Lease names ${newHolder}, a process of neither pod`);

      for (const [i, run] of asked.entries()) {
        const done = await finished(api, `/apps/${app}/run/${run.id}/`);
        assert.equal(done.status.exitCode, codes[i], `run r${i}: ${JSON.stringify(done.status)}`);
        assert.equal(done.status.phase, codes[i] === 0 ? 'Succeeded' : 'Failed', `run r${i}`);
        assert.equal(done.status.attempts, 1, `run r${i} ran one attempt`);
        assert.deepEqual(jobsCreated.get(done.metadata.uid), [done.status.containerName], `run r${i} had one Job`);
        const logs = await api(`/apps/${app}/run/${run.id}/logs/`);
        assert.equal(logs.body, `started r${i}\ndone r${i}\n`, `run r${i}'s logs`);
      }
      assert.equal(jobsCreated.size, codes.length);

      // The kubelet restarted the killed container: it serves again, and exactly one pod leads, the Lease's holder.
      const restarted = await waitFor(
        'the killed pod to be Ready again',
        async () => {
          const pod = (await deployed.pods()).find((p) => p.metadata?.name === leader.metadata?.name);
          return pod && isReady(pod) && (pod.status?.containerStatuses?.[0]?.restartCount ?? 0) > restartsBefore ? pod : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      await waitFor(
        "the Lease holder's pod alone to say it leads",
        async () => (await leads(restarted)) === (newLeader === leader) && (await leads(follower)) === (newLeader === follower),
      );
      assert.equal(await holder(), newHolder);
      console.log(`      failover ${failoverMs} ms; new leader: the ${newLeader === follower ? 'other pod' : "killed pod's restarted process"}`);
    });
  });
});
