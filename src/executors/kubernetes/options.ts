/**
 * The Kubernetes executor's options: where the cluster is, and how patient
 * to be with it, each with its default, checked once at construction.
 */

import { ConfigError } from '../../errors';
import { DEFAULT_CONTAINMENT, type ContainmentPolicy } from '../../model/containment';

/** Where the cluster is, and how patient to be with it. */
export interface KubernetesExecutorOptions {
  /**
   * A kubeconfig file.
   * @default process.env.KUBECONFIG, else the pod's service account when KUBERNETES_SERVICE_HOST is set, else ~/.kube/config
   */
  kubeconfig?: string;
  /**
   * Where berth creates its Jobs.
   * @default in a pod its own namespace, else the kubeconfig context's, else 'default'
   */
  namespace?: string;
  /**
   * How long one API call may go unanswered before the API server counts as unavailable.
   * @default 30_000
   */
  requestTimeoutMs?: number;
  /**
   * How long a pod's image may keep failing to pull (`ErrImagePull`, `ImagePullBackOff`), counted from
   * the first failure this process saw, before the attempt is reported as a terminal `ImagePullFailed` wait.
   * @default 60_000
   */
  imagePullGraceMs?: number;
  /**
   * How long `stop` waits, beyond the grace period, for a pod to be gone before it force-deletes it
   * (a node that stopped answering never confirms the kill).
   * @default 30_000
   */
  stopTimeoutMs?: number;
  /**
   * Seconds after an App's `timeoutSeconds` at which the Job's own `activeDeadlineSeconds` ends the pod,
   * should berth not have stopped it by then.
   * @default 300
   */
  deadlineBackstopSeconds?: number;
  /**
   * First wait before a failed list or watch is tried again; it doubles up to `watchMaxBackoffMs`.
   * @default 500
   */
  watchInitialBackoffMs?: number;
  /** @default 30_000 */
  watchMaxBackoffMs?: number;
  /** Told why a list or watch failed (the watch retries by itself). */
  onWatchError?: (error: Error) => void;
  /**
   * How pods are contained, and what an App may ask for; checked again at each launch.
   * @default DEFAULT_CONTAINMENT
   */
  containment?: ContainmentPolicy;
}

/** The options with their defaults, checked. */
export interface ExecutorSettings {
  requestTimeoutMs: number;
  imagePullGraceMs: number;
  stopTimeoutMs: number;
  deadlineBackstopSeconds: number;
  watchInitialBackoffMs: number;
  watchMaxBackoffMs: number;
  containment: ContainmentPolicy;
}

/** @throws ConfigError naming the option and the rule it breaks. */
export function resolveOptions(options: KubernetesExecutorOptions): ExecutorSettings {
  const backstop = options.deadlineBackstopSeconds ?? 300;
  if (!Number.isInteger(backstop) || backstop < 1)
    throw new ConfigError(`deadlineBackstopSeconds: must be a whole number of seconds of at least 1, got ${backstop}`);
  const watchInitialBackoffMs = milliseconds('watchInitialBackoffMs', options.watchInitialBackoffMs ?? 500, 1);
  const watchMaxBackoffMs = milliseconds('watchMaxBackoffMs', options.watchMaxBackoffMs ?? 30_000, 1);
  if (watchMaxBackoffMs < watchInitialBackoffMs) {
    throw new ConfigError(`watchMaxBackoffMs: must be at least watchInitialBackoffMs (${watchInitialBackoffMs}), got ${watchMaxBackoffMs}`);
  }
  return {
    requestTimeoutMs: milliseconds('requestTimeoutMs', options.requestTimeoutMs ?? 30_000, 1),
    imagePullGraceMs: milliseconds('imagePullGraceMs', options.imagePullGraceMs ?? 60_000, 0),
    stopTimeoutMs: milliseconds('stopTimeoutMs', options.stopTimeoutMs ?? 30_000, 1),
    deadlineBackstopSeconds: backstop,
    watchInitialBackoffMs,
    watchMaxBackoffMs,
    containment: options.containment ?? DEFAULT_CONTAINMENT,
  };
}

function milliseconds(option: string, value: number, minimum: number): number {
  if (!Number.isFinite(value) || value < minimum) {
    throw new ConfigError(`${option}: must be a number of milliseconds of at least ${minimum}, got ${value}`);
  }
  return value;
}
