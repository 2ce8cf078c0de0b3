/**
 * What a Job and its pods say about one attempt, read as berth's
 * Observation. The outcome comes from the attempt's pod (its container's
 * exit code and reason), never from the Job alone: a shell that survives its
 * OOM-killed child completes the Job, and only the container's reason says
 * OOMKilled.
 *
 * The attempt is the Job's first pod. With `restartPolicy: Never` and
 * `backoffLimit: 0` a Job makes one pod, except when that pod is deleted
 * underneath it (by hand, by the taint manager after its node went away):
 * the Job controller then makes a replacement, which would run the attempt's
 * process a second time from the start. berth does not let it become the
 * attempt: the deletion is reported as `lost` (the previous pod's run is
 * what was lost), and the executor marks the Job so that a later read, or
 * a restarted berth, still says so (see KubernetesExecutor.noteLoss).
 */

import type { V1ContainerStatus, V1Job, V1Pod } from '@kubernetes/client-node';
import { WaitingReason, type Observation } from '../executor';
import { CONTAINER_NAME } from './job-spec';

/** Annotations with which the executor marks a Job whose pod was lost, so the mark outlives the process that saw it. */
export const ANNOTATION_LOST = 'berth.dev/lost';
export const ANNOTATION_LOST_POD = 'berth.dev/lost-pod';

/** A workload as the API server has it: its Job (absent once deleted) and the pods carrying its name. */
export interface WorkloadState {
  job?: V1Job;
  pods: V1Pod[];
}

/** A pod whose image has failed to pull: since when (first seen), and the registry's last word. */
export interface PullFailure {
  since: number;
  lastError?: string;
}

export interface ObservationContext {
  now: number;
  /** How long a pull may keep failing before the attempt is given up on. */
  imagePullGraceMs: number;
  /** Records a pull failure of `pod` (the first sighting starts its grace) and returns what is known of it. */
  pullFailure(pod: V1Pod, reason: string, message: string | undefined): PullFailure;
  /** A loss this process saw happen, possibly before the Job carries its mark. */
  lost?: { pod: string; message: string };
  /** berth itself is stopping or removing this workload: its pods going away is no loss. */
  stopping: boolean;
}

/** The observation, and the pod that was deleted underneath the Job when that is what it says. */
export interface Reading {
  observation: Observation;
  /** Set when the attempt's pod was deleted by something other than berth while the Job lives: the loss to record. */
  deletedUnderneath?: { pod: string; message: string };
}

/** Kubelet reasons for an image that could not be had yet; the kubelet keeps retrying them, berth for `imagePullGraceMs`. */
const PULL_FAILURES = new Set(['ErrImagePull', 'ImagePullBackOff', 'RegistryUnavailable', 'ImageInspectError']);
/** Reasons that no retry of the kubelet's can fix: the image reference is invalid, or pulling is not allowed. */
const IMAGE_NEVER = new Set(['ErrImageNeverPull', 'InvalidImageName']);
/** The kubelet could not create or start the container: it retries these forever, to no avail for a batch run. */
const CANNOT_START = new Set([
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'PreCreateHookError',
  'PreStartHookError',
  'PostStartHookError',
]);
/** Terminated reasons that are the exit itself and need no message. */
const PLAIN_EXITS = new Set(['Completed', 'Error', 'OOMKilled']);

/** client-node gives timestamps as Dates from API calls and as strings from watch events. */
export function epochMs(value: Date | string | undefined | null): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const iso = (value: Date | string | undefined | null): string | undefined => {
  const ms = epochMs(value);
  return ms === undefined ? undefined : new Date(ms).toISOString();
};

const isFinished = (job: V1Job): boolean =>
  (job.status?.conditions ?? []).some((condition) => (condition.type === 'Complete' || condition.type === 'Failed') && condition.status === 'True');

/**
 * The attempt's pod: the one the Job was marked as having lost, else the
 * oldest (a replacement is always younger; within one second, the one being
 * deleted is the older).
 */
export function attemptPod(state: WorkloadState, lostPod?: string): V1Pod | undefined {
  if (lostPod) return state.pods.find((pod) => pod.metadata?.name === lostPod);
  return [...state.pods].sort(
    (a, b) =>
      (epochMs(a.metadata?.creationTimestamp) ?? 0) - (epochMs(b.metadata?.creationTimestamp) ?? 0) ||
      Number(!a.metadata?.deletionTimestamp) - Number(!b.metadata?.deletionTimestamp) ||
      (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
  )[0];
}

/** The loss marked on the Job, or seen by this process. */
export function lossOf(state: WorkloadState, context: Pick<ObservationContext, 'lost'>): { pod: string; message: string } | undefined {
  const annotations = state.job?.metadata?.annotations ?? {};
  if (annotations[ANNOTATION_LOST]) return { pod: annotations[ANNOTATION_LOST_POD] ?? '', message: annotations[ANNOTATION_LOST] };
  return context.lost;
}

/** Reads a workload's state. Pure but for `context.pullFailure`, which remembers when a pull first failed. */
export function readWorkload(state: WorkloadState, context: ObservationContext): Reading {
  const { job } = state;
  if (!job && state.pods.length === 0) return { observation: { state: 'absent' } };
  const loss = lossOf(state, context);
  if (loss) return { observation: { state: 'lost', message: loss.message } };

  const jobName = job?.metadata?.name ?? state.pods[0]?.metadata?.labels?.['job-name'] ?? '';
  const pod = attemptPod(state);
  const jobLives = !!job && !job.metadata?.deletionTimestamp;
  if (!pod) return { observation: withoutPod(job, jobLives) };
  // The Job is gone and its pods are going (berth removed it): nothing is left to observe.
  if (!jobLives && pod.metadata?.deletionTimestamp) return { observation: { state: 'absent' } };

  const podName = pod.metadata?.name ?? '';
  if (pod.status?.reason === 'Evicted') {
    return { observation: { state: 'lost', message: `pod ${podName} was evicted by its node: ${pod.status.message ?? 'no reason given'}` } };
  }
  const underneath = jobLives && !isFinished(job!) && !context.stopping && !!pod.metadata?.deletionTimestamp;
  const status = pod.status?.containerStatuses?.find((container) => container.name === CONTAINER_NAME);
  const terminated = status?.state?.terminated;
  if (underneath && !(terminated && endedBeforeDeletion(pod, terminated.finishedAt))) {
    const message = `pod ${podName} of Job ${jobName} was deleted by something other than berth before its container ended${nodeHint(pod)}`;
    return { observation: { state: 'lost', message }, deletedUnderneath: { pod: podName, message } };
  }
  if (terminated) return { observation: exitOf(pod, terminated) };
  if (pod.status?.phase === 'Failed') {
    // The node refused or dropped the pod before its container ran (OutOfmemory, NodeAffinity, a node that went away).
    const why = [pod.status.reason, pod.status.message].filter(Boolean).join(': ') || 'no reason given';
    return { observation: { state: 'lost', message: `pod ${podName} failed before its container could run: ${why}` } };
  }
  if (status?.state?.running) {
    return { observation: { state: 'running', startedAt: iso(status.state.running.startedAt) ?? new Date(context.now).toISOString() } };
  }
  return { observation: waitingOf(pod, status, context) };
}

/** A Job with no pod: being created, being removed, or finished with its pod deleted since. */
function withoutPod(job: V1Job | undefined, jobLives: boolean): Observation {
  if (!job || !jobLives) return { state: 'absent' };
  const name = job.metadata?.name;
  const conditions = job.status?.conditions ?? [];
  const complete = conditions.find((condition) => condition.type === 'Complete' && condition.status === 'True');
  if (complete) {
    const finishedAt = iso(job.status?.completionTime) ?? iso(complete.lastTransitionTime) ?? new Date().toISOString();
    const startedAt = iso(job.status?.startTime);
    return {
      state: 'exited',
      exitCode: 0,
      oomKilled: false,
      ...(startedAt ? { startedAt } : {}),
      finishedAt,
      message: `Job ${name} completed; its pod is gone, so its exit was read from the Job`,
    };
  }
  const failed = conditions.find((condition) => condition.type === 'Failed' && condition.status === 'True');
  if (failed) {
    return { state: 'lost', message: `Job ${name} failed (${failed.reason ?? 'no reason'}: ${failed.message ?? ''}) and its pod is gone` };
  }
  if ((job.status?.succeeded ?? 0) > 0 || (job.status?.failed ?? 0) > 0) {
    return { state: 'lost', message: `the pod of Job ${name} is gone` };
  }
  return { state: 'waiting', reason: WaitingReason.Creating, terminal: false, message: `Job ${name} is waiting for the Job controller to create its pod` };
}

/** Whether the container had ended before anyone asked to delete its pod (its own exit, not the deletion's). */
function endedBeforeDeletion(pod: V1Pod, finishedAt: Date | string | undefined): boolean {
  const deletion = epochMs(pod.metadata?.deletionTimestamp);
  const finished = epochMs(finishedAt);
  if (deletion === undefined || finished === undefined) return false;
  const requestedAt = deletion - (pod.metadata?.deletionGracePeriodSeconds ?? 0) * 1000;
  return finished <= requestedAt;
}

/** Why the pod may have been deleted: a pod marked not ready by the node controller while its container ran had lost its node. */
function nodeHint(pod: V1Pod): string {
  const conditions = pod.status?.conditions ?? [];
  const ready = conditions.find((condition) => condition.type === 'Ready');
  const containersReady = conditions.find((condition) => condition.type === 'ContainersReady');
  if (ready?.status === 'False' && containersReady?.status === 'True') {
    return `; its node ${pod.spec?.nodeName ?? ''} had stopped reporting`;
  }
  return '';
}

function exitOf(pod: V1Pod, terminated: NonNullable<NonNullable<V1ContainerStatus['state']>['terminated']>): Observation {
  const startedAt = iso(terminated.startedAt);
  const reason = terminated.reason;
  const message = terminated.message?.trim() || (reason && !PLAIN_EXITS.has(reason) ? reason : undefined);
  return {
    state: 'exited',
    exitCode: terminated.exitCode,
    // The reason, not the exit code: the OOM killer may end a child while the shell exits 0.
    oomKilled: reason === 'OOMKilled',
    ...(startedAt ? { startedAt } : {}),
    finishedAt: iso(terminated.finishedAt) ?? iso(pod.metadata?.deletionTimestamp) ?? new Date().toISOString(),
    ...(message ? { message } : {}),
  };
}

function waitingOf(pod: V1Pod, status: V1ContainerStatus | undefined, context: ObservationContext): Observation {
  const waiting = status?.state?.waiting;
  const image = pod.spec?.containers?.find((container) => container.name === CONTAINER_NAME)?.image;
  const reason = waiting?.reason ?? '';
  const message = waiting?.message?.trim();
  if (IMAGE_NEVER.has(reason)) {
    return {
      state: 'waiting',
      reason: WaitingReason.ImagePullFailed,
      terminal: true,
      message: `image "${image}" cannot be pulled (${reason}): ${message ?? reason}`,
    };
  }
  if (PULL_FAILURES.has(reason)) {
    const failure = context.pullFailure(pod, reason, message);
    const cause = failure.lastError ?? message ?? reason;
    if (context.now - failure.since >= context.imagePullGraceMs) {
      return { state: 'waiting', reason: WaitingReason.ImagePullFailed, terminal: true, message: `image "${image}" cannot be pulled: ${cause}` };
    }
    const left = Math.ceil((failure.since + context.imagePullGraceMs - context.now) / 1000);
    return {
      state: 'waiting',
      reason: WaitingReason.Pulling,
      terminal: false,
      message: `pulling image "${image}" failed (${reason}); retrying for ${left} s more: ${cause}`,
    };
  }
  if (CANNOT_START.has(reason)) {
    return { state: 'waiting', reason: WaitingReason.LaunchFailed, terminal: true, message: `the container cannot start (${reason}): ${message ?? reason}` };
  }
  if (!status) {
    const scheduled = pod.status?.conditions?.find((condition) => condition.type === 'PodScheduled');
    if (scheduled?.status === 'False') {
      return {
        state: 'waiting',
        reason: WaitingReason.Creating,
        terminal: false,
        message: `pod ${pod.metadata?.name} is not scheduled yet: ${scheduled.message ?? scheduled.reason ?? ''}`,
      };
    }
  }
  return {
    state: 'waiting',
    reason: WaitingReason.Creating,
    terminal: false,
    message: `pod ${pod.metadata?.name} is ${reason || pod.status?.phase || 'being created'}${message ? `: ${message}` : ''}`,
  };
}
