/**
 * The shipped kustomize overlays as the test cluster's own kubectl renders
 * them, and `kubectl apply` of objects into it: shared by the test that asks
 * the API server to accept every overlay and the one that really deploys one.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { TEST_KUBECONFIG } from './kube';

const run = promisify(execFile);

export const KUBECTL = path.join(process.env.BERTH_TEST_K8S_BIN || '/var/cache/berth-k8s/bin', 'kubectl');
const OVERLAYS = path.join(__dirname, '..', '..', '..', 'manifests', 'overlays');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: any };
  [key: string]: any;
}

/** The objects of manifests/overlays/OVERLAY, as `kubectl kustomize` renders them. */
export async function render(overlay: string): Promise<K8sObject[]> {
  const { stdout } = await run(KUBECTL, ['kustomize', path.join(OVERLAYS, overlay)], { maxBuffer: 8 * 1024 * 1024 });
  return parseAllDocuments(stdout).map((document) => document.toJS() as K8sObject);
}

export function find(objects: K8sObject[], kind: string, name = 'berth'): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `no ${kind} ${name}`);
  return found;
}

/** The Deployment's first container's environment, name → value (or valueFrom). */
export const envOf = (deployment: K8sObject): Record<string, unknown> =>
  Object.fromEntries(
    deployment.spec.template.spec.containers[0].env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]),
  );

/**
 * A copy of the objects in NAMESPACE instead of the overlay's own (the real one
 * is the user's): Namespace objects dropped, RoleBinding subjects moved along.
 */
export function intoNamespace(objects: K8sObject[], namespace: string): K8sObject[] {
  return objects
    .filter((o) => o.kind !== 'Namespace')
    .map((o) => {
      const copy = JSON.parse(JSON.stringify(o)) as K8sObject;
      copy.metadata.namespace = namespace;
      for (const subject of copy.subjects ?? []) subject.namespace = namespace;
      return copy;
    });
}

/** `kubectl apply -f -` of the objects (with `--dry-run=server` when asked); its output, or an error carrying it. */
export function apply(objects: K8sObject[], { dryRun = false }: { dryRun?: boolean } = {}): Promise<string> {
  const args = ['--kubeconfig', TEST_KUBECONFIG, 'apply', ...(dryRun ? ['--dry-run=server'] : []), '-f', '-'];
  const child = execFile(KUBECTL, args, { maxBuffer: 8 * 1024 * 1024 });
  const output = new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk) => (text += chunk));
    child.stderr?.on('data', (chunk) => (text += chunk));
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`kubectl ${args.slice(2).join(' ')} failed (${code}): ${text}`))));
  });
  child.stdin?.end(objects.map((o) => JSON.stringify(o)).join('\n'));
  return output;
}
