/**
 * The shipped kustomize overlays, rendered by the test cluster's own kubectl
 * and checked by its API server (`apply --dry-run=server`): every object is
 * one the cluster accepts, the Deployment is what the overlay promises, and
 * the Role is what berth's executor needs.
 */
import assert from 'node:assert/strict';
import { REQUIRED_PERMISSIONS } from '../../src/executors/kubernetes';
import { uniqueName } from '../helpers/fixtures';
import { testCluster, type Cluster } from '../helpers/kube';
import { apply, envOf, find, intoNamespace, render, type K8sObject } from '../helpers/manifests';

describe('manifests: the kustomize overlays', function () {
  this.timeout(60_000);
  let cluster: Cluster;

  before(async () => {
    cluster = await testCluster();
  });

  /**
   * Asks the API server to accept every object, without creating any: in a
   * namespace of the test's own, since the real one is the user's. A cluster
   * older than policy/v1 (the test cluster runs 1.20) checks the budget as
   * the policy/v1beta1 it knows.
   */
  async function serverDryRun(objects: K8sObject[]): Promise<string> {
    const namespace = uniqueName('manifests');
    await cluster.core.createNamespace({ body: { metadata: { name: namespace } } });
    try {
      const policyV1 = await cluster.kubeConfig.makeApiClient((await import('@kubernetes/client-node')).ApisApi).getAPIVersions();
      const hasPolicyV1 = policyV1.groups.some((g) => g.name === 'policy' && g.versions.some((v) => v.version === 'v1'));
      const moved = intoNamespace(objects, namespace).map((o) =>
        o.kind === 'PodDisruptionBudget' && !hasPolicyV1 ? { ...o, apiVersion: 'policy/v1beta1' } : o,
      );
      return await apply(moved, { dryRun: true });
    } finally {
      await cluster.core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  }

  it('single: one replica on SQLite on a volume, replaced not rolled, accepted by the API server', async () => {
    const objects = await render('single');
    const deployment = find(objects, 'Deployment');
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, 'Recreate');
    const env = envOf(deployment);
    assert.equal(env.BERTH_DB, '/var/lib/berth/berth.sqlite');
    assert.equal(env.BERTH_RUNTIME, 'kubernetes');
    assert.equal(env.BERTH_LEADER_ELECT, undefined);
    assert.equal(find(objects, 'PersistentVolumeClaim', 'berth-data').spec.accessModes[0], 'ReadWriteOnce');
    const output = await serverDryRun(objects);
    assert.match(output, /deployment\.apps\/berth created \(server dry run\)/);
    assert.match(output, /persistentvolumeclaim\/berth-data created \(server dry run\)/);
  });

  it('ha: two replicas on PostgreSQL from a Secret, leader election on a Lease, a disruption budget, accepted by the API server', async () => {
    const objects = await render('ha');
    const deployment = find(objects, 'Deployment');
    assert.equal(deployment.spec.replicas, 2);
    const env = envOf(deployment);
    assert.deepEqual(env.BERTH_DB, { secretKeyRef: { name: 'berth-db', key: 'url' } });
    assert.equal(env.BERTH_LEADER_ELECT, 'true');
    assert.deepEqual(env.BERTH_REPLICA_ID, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.equal(find(objects, 'PodDisruptionBudget').spec.minAvailable, 1);
    const leases = find(objects, 'Role', 'berth-leader-election').rules;
    assert.deepEqual(leases.flatMap((r: { verbs: string[] }) => r.verbs).sort(), ['create', 'get', 'update']);
    assert.equal(
      objects.some((o) => o.kind === 'PersistentVolumeClaim'),
      false,
    );
    const output = await serverDryRun(objects);
    assert.match(output, /deployment\.apps\/berth created \(server dry run\)/);
    assert.match(output, /poddisruptionbudget\.policy\/berth created \(server dry run\)/);
  });

  it('every overlay runs berth restricted: non-root, no escalation, no capabilities, read-only root, probes on /healthz and /readyz', async () => {
    for (const overlay of ['single', 'ha']) {
      const pod = find(await render(overlay), 'Deployment').spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true, overlay);
      assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault', overlay);
      const container = pod.containers[0];
      assert.deepEqual(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } }, overlay);
      assert.equal(container.readinessProbe.httpGet.path, '/readyz', overlay);
      assert.equal(container.livenessProbe.httpGet.path, '/healthz', overlay);
      assert.ok(container.resources.limits.memory, overlay);
      // The token from the Secret as a file (nothing in the environment), and the Service's names pass the Host check.
      const env = envOf(find(await render(overlay), 'Deployment'));
      assert.equal(env.BERTH_TOKEN, undefined, overlay);
      assert.equal(env.BERTH_TOKEN_FILE, '/etc/berth/token/token', overlay);
      assert.equal(pod.volumes.find((v: { name: string }) => v.name === 'token').secret.secretName, 'berth-token', overlay);
      assert.match(String(env.BERTH_ALLOWED_HOSTS), /^berth,berth\.\$\(POD_NAMESPACE\),/, overlay);
    }
  });

  it('the Role grants exactly the permissions the executor checks for', async () => {
    const rules = find(await render('single'), 'Role').rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    const granted = rules.flatMap((r) => r.resources.flatMap((resource) => r.verbs.map((verb) => `${r.apiGroups[0] ?? ''}/${resource}:${verb}`))).sort();
    const needed = REQUIRED_PERMISSIONS.map((p) => `${p.group}/${p.resource}:${p.verb}`).sort();
    assert.deepEqual(granted, needed);
  });
});
