/**
 * The Kubernetes test cluster (.ci/k8s), as the kubernetes executor's tests
 * use it: found through BERTH_TEST_KUBECONFIG, never skipped when missing;
 * a namespace of their own per file with berth's ServiceAccount bound to
 * exactly the Role in manifests/base/role.yaml; and the levers that break the
 * cluster on purpose (an API server that dies, an etcd that compacts).
 */

import { BatchV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, VersionApi, type V1PolicyRule, type V1Role } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { tempDir } from './fixtures';
import { waitFor } from './wait';

const run = promisify(execFile);

const REPO = path.join(__dirname, '..', '..', '..');
/** The admin kubeconfig of the test cluster. */
export const TEST_KUBECONFIG = process.env.BERTH_TEST_KUBECONFIG || '/var/lib/berth-k8s/admin.kubeconfig';
/** Where start.sh keeps the cluster's pid files, and the binaries setup.sh built. */
const STATE = process.env.BERTH_TEST_K8S_STATE || '/var/lib/berth-k8s';
const BIN = process.env.BERTH_TEST_K8S_BIN || '/var/cache/berth-k8s/bin';
const ETCD = 'http://127.0.0.1:23790';
/** The Role berth ships. */
export const ROLE_MANIFEST = path.join(REPO, 'manifests', 'base', 'role.yaml');
const HOW_TO_START =
  'start the test cluster with `bash .ci/k8s/start.sh` (build it first with `bash .ci/k8s/setup.sh`) and set BERTH_TEST_KUBECONFIG to the KUBECONFIG it prints';

/** The cluster as its administrator sees it. */
export interface Cluster {
  kubeConfig: KubeConfig;
  server: string;
  core: CoreV1Api;
  batch: BatchV1Api;
  rbac: RbacAuthorizationV1Api;
}

/**
 * The test cluster, checked to answer.
 *
 * @throws Error saying how to start it when there is none: a missing cluster fails the tests, it never skips them.
 */
export async function testCluster(): Promise<Cluster> {
  if (!fs.existsSync(TEST_KUBECONFIG)) throw new Error(`no Kubernetes test cluster: ${TEST_KUBECONFIG} does not exist; ${HOW_TO_START}`);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(TEST_KUBECONFIG);
  const server = kubeConfig.getCurrentCluster()?.server ?? '';
  try {
    await kubeConfig.makeApiClient(VersionApi).getCode();
  } catch (error) {
    throw new Error(
      `the Kubernetes test cluster at ${server} (${TEST_KUBECONFIG}) does not answer (${(error as Error).message.split('\n')[0]}); ${HOW_TO_START}`,
    );
  }
  return {
    kubeConfig,
    server,
    core: kubeConfig.makeApiClient(CoreV1Api),
    batch: kubeConfig.makeApiClient(BatchV1Api),
    rbac: kubeConfig.makeApiClient(RbacAuthorizationV1Api),
  };
}

/** The rules of the Role in manifests/base/role.yaml. */
export function shippedRoleRules(): V1PolicyRule[] {
  const documents = parseAllDocuments(fs.readFileSync(ROLE_MANIFEST, 'utf8')).map((document) => document.toJS() as { kind?: string });
  const role = documents.find((document) => document.kind === 'Role') as V1Role | undefined;
  if (!role?.rules) throw new Error(`${ROLE_MANIFEST} holds no Role with rules`);
  return role.rules;
}

/** A namespace of a test file's own, where berth's ServiceAccount holds a Role. */
export interface TestNamespace {
  name: string;
  /** A kubeconfig file that authenticates as the ServiceAccount, its context set to the namespace. */
  kubeconfig: string;
  /** Deletes the namespace and all in it (in the background). */
  remove(): Promise<void>;
}

/**
 * Makes a fresh namespace with the ServiceAccount `berth` bound to a Role
 * with `rules` (by default exactly the shipped Role's), and a kubeconfig
 * that authenticates with the account's token (the cluster's 1.20 token
 * controller makes its Secret).
 */
export async function testNamespace(
  cluster: Cluster,
  { prefix = 'berth-test', rules = shippedRoleRules() }: { prefix?: string; rules?: V1PolicyRule[] } = {},
): Promise<TestNamespace> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  const { core, rbac } = cluster;
  await core.createNamespace({ body: { metadata: { name, labels: { 'berth.dev/test': 'true' } } } });
  const remove = async (): Promise<void> => {
    await core.deleteNamespace({ name }).catch(() => undefined);
  };
  try {
    await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'berth' } } });
    await rbac.createNamespacedRole({ namespace: name, body: { metadata: { name: 'berth' }, rules } });
    await rbac.createNamespacedRoleBinding({
      namespace: name,
      body: {
        metadata: { name: 'berth' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'berth' },
        subjects: [{ kind: 'ServiceAccount', name: 'berth', namespace: name }],
      },
    });
    const token = await waitFor('the ServiceAccount token', async () => {
      const account = await core.readNamespacedServiceAccount({ name: 'berth', namespace: name });
      const secret = account.secrets?.[0]?.name;
      if (!secret) return undefined;
      const data = (await core.readNamespacedSecret({ name: secret, namespace: name })).data?.token;
      return data ? Buffer.from(data, 'base64').toString('utf8') : undefined;
    });
    const kubeconfig = path.join(tempDir('berth-kube-'), 'kubeconfig');
    writeKubeconfig(kubeconfig, { server: cluster.server, caFile: cluster.kubeConfig.getCurrentCluster()?.caFile, token, namespace: name });
    return { name, kubeconfig, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

/** Writes a kubeconfig for `server` with a bearer token (and, unless absent, a CA file and a context namespace). */
export function writeKubeconfig(
  file: string,
  { server, caFile, token = 'none', namespace }: { server: string; caFile?: string; token?: string; namespace?: string },
): string {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, ...(caFile ? { 'certificate-authority': caFile } : {}) } }],
    users: [{ name: 'berth', user: { token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: 'berth', ...(namespace ? { namespace } : {}) } }],
    'current-context': 'test',
  };
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** A kubeconfig whose API server is not there (nothing listens on port 1). */
export function unreachableKubeconfig(): { kubeconfig: string; server: string } {
  const server = 'https://127.0.0.1:1';
  return { kubeconfig: writeKubeconfig(path.join(tempDir('berth-kube-'), 'kubeconfig'), { server, namespace: 'default' }), server };
}

// ---- breaking the cluster on purpose ----

function apiserverPid(): number {
  return Number(fs.readFileSync(path.join(STATE, 'run', 'kube-apiserver.pid'), 'utf8').trim());
}

/** Kills the API server outright (SIGKILL: its connections break, nothing is said goodbye) and waits until it is gone. */
export async function killApiserver(): Promise<void> {
  const pid = apiserverPid();
  process.kill(pid, 'SIGKILL');
  await waitFor('kube-apiserver to be gone', () => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z');
}

/** Starts the API server again with the arguments it had (.ci/k8s/restart-apiserver.sh) and waits until it is ready. */
export async function startApiserver(): Promise<void> {
  await run('bash', [path.join(REPO, '.ci', 'k8s', 'restart-apiserver.sh'), 'start'], { timeout: 120_000 });
}

/**
 * Waits until the cluster runs pods again: after an API server restart its
 * scheduler and controllers take up to half a minute to reconnect, and the
 * tests after a restart must not pay for it. Runs one pod to its end.
 */
export async function waitForPodsToRun(cluster: Cluster, namespace: string, image: string, timeoutMs = 120_000): Promise<void> {
  const name = `probe-${randomBytes(4).toString('hex')}`;
  await cluster.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        containers: [{ name: 'probe', image, imagePullPolicy: 'IfNotPresent', args: ['true'] }],
      },
    },
  });
  try {
    await waitFor(
      'a pod to run after the API server restart',
      async () => (await cluster.core.readNamespacedPod({ name, namespace })).status?.phase === 'Succeeded',
      { timeoutMs },
    );
  } finally {
    await cluster.core.deleteNamespacedPod({ name, namespace, body: { gracePeriodSeconds: 0 } }).catch(() => undefined);
  }
}

/** etcd's current revision. */
async function etcdRevision(): Promise<number> {
  const { stdout } = await run(path.join(BIN, 'etcdctl'), ['--endpoints', ETCD, 'endpoint', 'status', '--write-out', 'json'], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  const [status] = JSON.parse(stdout) as { Status: { header: { revision: number } } }[];
  return status.Status.header.revision;
}

/** Compacts etcd's history up to its current revision: every older resourceVersion is now too old to watch from. Returns that revision. */
export async function compactEtcd(): Promise<number> {
  const revision = await etcdRevision();
  await run(path.join(BIN, 'etcdctl'), ['--endpoints', ETCD, 'compact', String(revision)], { env: { ...process.env, ETCDCTL_API: '3' } });
  return revision;
}
