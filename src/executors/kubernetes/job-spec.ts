/**
 * The Kubernetes Job a run's attempt becomes: the App template mapped so
 * that the same App is the same process as on Docker (the command is what
 * Docker's Cmd is, the environment reaches it unexpanded, memory and CPU are
 * limits), one pod that is never restarted or retried by Kubernetes (berth
 * owns retries), berth's labels on the Job and its pod, and the same
 * containment as a Docker container in pod terms (src/model/containment.ts).
 */

import type { V1Container, V1Job, V1ResourceRequirements, V1SecurityContext } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { DEFAULT_CONTAINMENT, effectiveResources, type ContainmentPolicy } from '../../model/containment';
import { memoryQuantity, parseCpuNanos, parseMemoryBytes } from '../../model/quantity';
import type { AppSpec, Resources } from '../../model/types';
import { LABEL_APP, LABEL_ATTEMPT, LABEL_MANAGED_BY, LABEL_RUN, LABEL_STORE, launchResources, MANAGED_BY, type LaunchRequest } from '../executor';
import { podAnnotations, podLabels, podPlacement } from './pod-options';

/** The name of the run's container in its pod. */
export const CONTAINER_NAME = 'main';
/** The label the Job API puts on a Job's pods, naming the Job: how the executor finds a workload's pods. */
export const JOB_NAME_LABEL = 'job-name';
/** Annotations on the Job: the full App and run names (label values stop at 63 characters). */
export const ANNOTATION_APP = 'berth.dev/app';
export const ANNOTATION_RUN_NAME = 'berth.dev/run-name';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * `value` as a label value: itself when Kubernetes takes it, else its first
 * 52 characters and a hash, so distinct long names stay distinct. The full
 * value is kept in an annotation where it matters (the App's name).
 */
export function labelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 10);
  const head = value
    .slice(0, 52)
    .replace(/[^-A-Za-z0-9_.]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return head ? `${head}-${hash}` : hash;
}

/** Labels that tie a Job and its pod to their run, App and attempt. */
export function workloadLabels(request: Pick<LaunchRequest, 'runUid' | 'appName' | 'attempt' | 'storeId'>): Record<string, string> {
  return {
    [LABEL_RUN]: request.runUid,
    [LABEL_APP]: labelValue(request.appName),
    [LABEL_ATTEMPT]: String(request.attempt),
    [LABEL_MANAGED_BY]: MANAGED_BY,
    ...(request.storeId ? { [LABEL_STORE]: labelValue(request.storeId) } : {}),
  };
}

/**
 * Kubernetes expands `$(NAME)` in args and env values, and turns `$$` into
 * `$`; Docker passes both through. Doubling each `$` that starts one of
 * those (one followed by `(` or `$`) makes the expansion give back exactly
 * what the App wrote, so a shell sees the same script on both runtimes;
 * every other `$` already passes unchanged, and stays as written.
 */
export const literal = (value: string): string => value.replace(/\$(?=[$(])/g, '$$$$');

// Shared with the reconciler, which records each attempt's memory in the same spelling.
export { memoryQuantity };

/** CPU as a canonical quantity: whole CPUs, else millicores (Kubernetes' finest unit, rounded up so a tiny limit stays one). */
export function cpuQuantity(nanos: number): string {
  const millis = Math.max(1, Math.ceil(nanos / 1e6));
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

/**
 * Requests equal to limits: Docker's memory limit and `--cpus` quota are
 * limits, and a request equal to them keeps the scheduler honest about them.
 * A server default (`defaults`, for what the App leaves out) is a limit with
 * a request of 0: a cap, not a reservation, or every pod would reserve it.
 *
 * @throws Error naming the rule when a quantity cannot be read.
 */
export function resourceRequirements(resources: AppSpec['resources'], defaults: Resources = {}): V1ResourceRequirements | undefined {
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  const quantity = { memory: (q: string) => memoryQuantity(parseMemoryBytes(q)), cpu: (q: string) => cpuQuantity(parseCpuNanos(q)) };
  for (const key of ['memory', 'cpu'] as const) {
    const own = resources[key];
    if (own) limits[key] = requests[key] = quantity[key](own);
    else if (defaults[key]) {
      limits[key] = quantity[key](defaults[key]);
      requests[key] = '0';
    }
  }
  return Object.keys(limits).length > 0 ? { requests, limits } : undefined;
}

/**
 * The container's securityContext: what Docker's CapDrop ALL, CapAdd,
 * no-new-privileges and default seccomp profile are, and the App's user.
 */
export function containerSecurityContext(template: AppSpec, policy: ContainmentPolicy): V1SecurityContext {
  const context: V1SecurityContext = {
    allowPrivilegeEscalation: policy.allowPrivilegeEscalation,
    capabilities: { drop: ['ALL'], ...(template.capabilities?.add?.length ? { add: [...template.capabilities.add] } : {}) },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  if (template.user !== undefined) {
    const [uid, gid] = template.user.split(':');
    context.runAsUser = Number(uid);
    if (gid !== undefined) context.runAsGroup = Number(gid);
  }
  return context;
}

export interface JobSpecOptions {
  /** Seconds after the template's timeoutSeconds before the Job controller's own deadline ends the pod. */
  deadlineBackstopSeconds: number;
  /** @default DEFAULT_CONTAINMENT */
  containment?: ContainmentPolicy;
}

/**
 * The Job for one attempt.
 *
 * @throws Error naming the rule when `resources` holds a quantity that cannot be read.
 */
export function jobFor(request: LaunchRequest, options: JobSpecOptions): V1Job {
  const { template } = request;
  const policy = options.containment ?? DEFAULT_CONTAINMENT;
  const labels = workloadLabels(request);
  const container: V1Container = {
    name: CONTAINER_NAME,
    image: template.image,
    imagePullPolicy: template.imagePullPolicy,
    // args, not command: like Docker's Cmd it replaces the image's CMD and keeps its ENTRYPOINT. Empty: the image's own.
    ...(template.command.length > 0 ? { args: template.command.map(literal) } : {}),
    env: Object.entries(template.env).map(([name, value]) => ({ name, value: literal(value) })),
    securityContext: containerSecurityContext(template, policy),
  };
  const own = launchResources(request);
  const { resources: effective, defaulted } = effectiveResources(own, policy);
  const resources = resourceRequirements(own, Object.fromEntries(defaulted.map((key) => [key, effective[key]])));
  if (resources) container.resources = resources;
  const annotations = podAnnotations(template.kubernetes);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: request.name,
      labels,
      annotations: { [ANNOTATION_APP]: request.appName, [ANNOTATION_RUN_NAME]: request.runName },
    },
    spec: {
      // berth owns retries on every runtime: a failed pod fails the Job, and berth decides what comes next.
      backoffLimit: 0,
      completions: 1,
      parallelism: 1,
      // berth stops a run at its timeoutSeconds itself and copies its logs first. The Job controller's deadline
      // deletes the pod (and its logs) ≈ 16 s after it passes, so it only backs berth up, well after.
      ...(template.timeoutSeconds !== undefined ? { activeDeadlineSeconds: template.timeoutSeconds + options.deadlineBackstopSeconds } : {}),
      template: {
        metadata: { labels: podLabels(template.kubernetes, labels), ...(annotations ? { annotations } : {}) },
        spec: {
          restartPolicy: 'Never',
          // Docker containers see no service environment variables; neither do berth's pods.
          enableServiceLinks: false,
          ...podPlacement(template.kubernetes),
          containers: [container],
        },
      },
    },
  };
}
