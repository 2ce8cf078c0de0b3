/**
 * The Kubernetes executor: berth's workloads as Jobs on a cluster. Loading
 * this module loads client-node; ./create builds one without loading it
 * until then.
 */
export { KubernetesExecutor, type KubernetesExecutorOptions } from './kubernetes-executor';
export { createKubernetesExecutor } from './create';
export { REQUIRED_PERMISSIONS } from './permissions';
export type { KubernetesPodOptions, Toleration } from './pod-options';
