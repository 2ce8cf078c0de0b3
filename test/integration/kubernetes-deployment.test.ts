/**
 * The `single` overlay really deployed on the test cluster (issue 8, "Tested
 * on the test cluster"): the image .ci/image/build.sh makes, the manifests as
 * kustomize renders them, in a namespace of the test's own. The pod becomes
 * Ready on its probes, and an App created through its API runs as a Job in the
 * cluster, its exit code and logs recorded in the SQLite file on the volume.
 *
 * What differs from a user's cluster, and only that, is set here:
 * - the image is the local berth:dev (`imagePullPolicy: Never`: nothing can be
 *   pulled);
 * - the volume is a hostPath PersistentVolume bound to the claim (the test
 *   cluster has no provisioner);
 * - the test cluster has no kube-proxy, so the `kubernetes` Service's cluster
 *   IP does not route: the pod is told the address its Endpoints advertise
 *   (KUBERNETES_SERVICE_HOST/PORT, which in-cluster clients read), the same
 *   API server behind it;
 * - the API is reached at the pod's IP, as the issue allows.
 */
import { AppsV1Api } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { appSpec, TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { buildImage, BUILD_TIMEOUT_MS, IMAGE } from '../helpers/image';
import { testCluster, type Cluster } from '../helpers/kube';
import { apply, find, intoNamespace, render, type K8sObject } from '../helpers/manifests';
import { waitFor } from '../helpers/wait';

const UID = 10001;
const TOKEN = randomBytes(24).toString('base64');

describe('deployment: the single overlay on the test cluster', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  const namespace = uniqueName('berth-deploy');
  const volumeName = `${namespace}-data`;
  let dataDir = '';
  let base = '';
  const apps = () => cluster.kubeConfig.makeApiClient(AppsV1Api);

  const api = async (route: string, init: RequestInit = {}): Promise<{ status: number; body: any }> => {
    const response = await fetch(`${base}${route}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, body: text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  };

  /** Where pods reach the API server: the address and port the `kubernetes` Endpoints advertise. */
  async function apiserverForPods(): Promise<{ host: string; port: string }> {
    const endpoints = await cluster.core.readNamespacedEndpoints({ name: 'kubernetes', namespace: 'default' });
    const subset = endpoints.subsets?.[0];
    const host = subset?.addresses?.[0]?.ip;
    const port = subset?.ports?.find((p) => p.name === 'https')?.port;
    assert.ok(host && port, `the kubernetes Endpoints advertise no address: ${JSON.stringify(endpoints.subsets)}`);
    return { host, port: String(port) };
  }

  /** The overlay's objects, moved into the test's namespace and set up for the test cluster as the header says. */
  async function objects(): Promise<K8sObject[]> {
    const rendered = intoNamespace(await render('single'), namespace);
    const deployment = find(rendered, 'Deployment');
    const container = deployment.spec.template.spec.containers[0];
    container.image = IMAGE;
    container.imagePullPolicy = 'Never';
    const { host, port } = await apiserverForPods();
    container.env.push({ name: 'KUBERNETES_SERVICE_HOST', value: host }, { name: 'KUBERNETES_SERVICE_PORT', value: port });
    const claim = find(rendered, 'PersistentVolumeClaim', 'berth-data');
    const volume: K8sObject = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: volumeName, labels: { 'dev.berth.test': namespace } },
      spec: {
        capacity: { storage: claim.spec.resources.requests.storage },
        accessModes: claim.spec.accessModes,
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: dataDir, type: 'Directory' },
        claimRef: { namespace, name: 'berth-data' },
      },
    };
    const token: K8sObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'berth-token', namespace }, stringData: { token: TOKEN } };
    return [volume, token, ...rendered];
  }

  before(async function () {
    this.timeout(BUILD_TIMEOUT_MS + 180_000);
    cluster = await testCluster();
    await buildImage();
    // berth runs as uid 10001, and a hostPath volume keeps its owner (fsGroup does not apply to it).
    dataDir = tempDir('berth-deploy-');
    fs.chownSync(dataDir, UID, UID);
    await cluster.core.createNamespace({ body: { metadata: { name: namespace } } });
    await apply(await objects());
    const pod = await waitFor(
      'the berth pod to be Ready',
      async () => {
        const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/name=berth' });
        return pods.items.find((p) => p.status?.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch(async (error) => {
      const pods = await cluster.core.listNamespacedPod({ namespace }).catch(() => undefined);
      const states = pods?.items.map((p) => `${p.metadata?.name}: ${p.status?.phase} ${JSON.stringify(p.status?.containerStatuses?.[0]?.state)}`).join('; ');
      throw new Error(`${(error as Error).message}; pods: ${states}`);
    });
    base = `http://${pod.status!.podIP}:8000`;
  });

  after(async function () {
    this.timeout(90_000);
    if (!cluster) return;
    // The pod first, so nothing writes to the volume's folder as it goes; the namespace (slow to finalise here) is not waited for.
    await apps().deleteNamespacedDeployment({ name: 'berth', namespace }).catch(() => undefined);
    await waitFor('the berth pod to be gone', async () => (await cluster.core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/name=berth' })).items.length === 0, {
      timeoutMs: 60_000,
      intervalMs: 500,
    }).catch(() => undefined);
    await cluster.core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await cluster.core.deletePersistentVolume({ name: volumeName }).catch(() => undefined);
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
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
      body: JSON.stringify({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: app }, spec: appSpec({ image: TEST_IMAGE, command: ['sh', '-c', 'echo from the cluster; sleep 3; exit 3'] }) }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const requested = await api(`/apps/${app}/run/`, { method: 'POST', body: '{}' });
    assert.equal(requested.status, 202, JSON.stringify(requested.body));

    const runRoute = `/apps/${app}/run/${requested.body.id}/`;
    // While it runs, it is a Job of the pod's namespace (berth removes it once the outcome and logs are kept).
    const running = await waitFor('the run to be Running', async () => ((await api(runRoute)).body.status?.phase === 'Running' ? (await api(runRoute)).body : undefined), { timeoutMs: 60_000, intervalMs: 250 });
    const jobs = await cluster.batch.listNamespacedJob({ namespace, labelSelector: 'app.kubernetes.io/managed-by=berth' });
    assert.deepEqual(jobs.items.map((job) => job.metadata?.name), [running.status.containerName]);

    const run = await waitFor('the run to finish', async () => {
      const { body } = await api(runRoute);
      return ['Succeeded', 'Failed'].includes(body.status?.phase) ? body : undefined;
    }, { timeoutMs: 90_000, intervalMs: 250 });
    assert.equal(run.status.phase, 'Failed', JSON.stringify(run.status));
    assert.equal(run.status.exitCode, 3);
    assert.equal(run.status.runtime, 'kubernetes');

    const logs = await api(`/apps/${app}/run/${requested.body.id}/logs/`);
    assert.equal(logs.status, 200);
    assert.match(String(logs.body), /from the cluster/);
    // The store is the SQLite file on the claim's volume, not the pod's own file system.
    assert.ok(fs.readdirSync(dataDir).some((f) => f.startsWith('berth.sqlite')), `nothing in ${dataDir}`);
  });
});
