/**
 * The Kubernetes executor: berth's workloads as Jobs on a cluster. Loading
 * this module loads client-node; ./create builds one without loading it
 * until then.
 */
export { KubernetesExecutor } from './kubernetes-executor';
export type { KubernetesExecutorOptions } from './options';
export { createKubernetesExecutor } from './create';
export { REQUIRED_PERMISSIONS } from './permissions';
export type { KubernetesPodOptions, Toleration } from './pod-options';
