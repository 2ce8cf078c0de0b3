/**
 * Pods deleted underneath their live Job: the attempt's run is lost (see
 * observation.ts for why a replacement pod never becomes the attempt).
 * A loss is recorded at once in memory, then on the Job itself, so that it
 * is still reported after a restart, whatever pod runs by then.
 */

import { PatchStrategy, setHeaderOptions, type BatchV1Api, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { statusOf } from './kube-errors';
import { CONTAINER_NAME } from './job-spec';
import { ANNOTATION_LOST, ANNOTATION_LOST_POD, attemptPod } from './observation';

export interface Loss {
  /** The attempt's pod that was deleted. */
  pod: string;
  message: string;
}

export interface LossRecorderOptions {
  batch: BatchV1Api;
  namespace: string;
  /** Whether this process is stopping or removing the workload: its pods going away is its own doing. */
  stopping: (name: string) => boolean;
  /** Told when a loss could not be marked on its Job (the next sighting tries again). */
  onError: (error: unknown, what: string) => void;
}

const isFinished = (job: V1Job): boolean =>
  (job.status?.conditions ?? []).some((condition) => (condition.type === 'Complete' || condition.type === 'Failed') && condition.status === 'True');

export class LossRecorder {
  private readonly losses = new Map<string, Loss & { marking: boolean }>();

  constructor(private readonly options: LossRecorderOptions) {}

  /** The loss this process saw for `name`, if any (the Job's mark is read by observation.ts). */
  get(name: string): Loss | undefined {
    return this.losses.get(name);
  }

  forget(name: string): void {
    this.losses.delete(name);
  }

  /**
   * A pod left the informer cache. If it was the attempt's, had not ended,
   * and its Job (as cached) lives, its run was lost. `others` are the pods
   * of the workload still cached.
   */
  podGone(name: string, pod: V1Pod, job: V1Job | undefined, others: V1Pod[]): void {
    if (this.options.stopping(name) || this.losses.has(name)) return;
    if (pod.status?.containerStatuses?.some((status) => status.name === CONTAINER_NAME && status.state?.terminated)) return;
    if (!job || job.metadata?.deletionTimestamp) return;
    // A younger pod's deletion is a replacement's: the attempt was its elder.
    if (attemptPod({ job, pods: [...others, pod] }) !== pod) return;
    const podName = pod.metadata?.name ?? '';
    this.note(name, { pod: podName, message: `pod ${podName} of Job ${name} was deleted by something other than berth before its container ended` });
  }

  /**
   * Records a loss in memory at once, then marks the Job: an annotation, and
   * `parallelism: 0`, so the Job controller deletes any replacement it made
   * and makes no more. Checked against a fresh read first: a Job that is
   * being deleted (by berth or anyone) or has finished lost nothing.
   */
  note(name: string, loss: Loss): void {
    const { batch, namespace } = this.options;
    const known = this.losses.get(name);
    if (known?.marking) return;
    const entry = known ?? { ...loss, marking: true };
    entry.marking = true;
    this.losses.set(name, entry);
    void (async () => {
      try {
        const job = await batch.readNamespacedJob({ name, namespace });
        if (job.metadata?.deletionTimestamp || isFinished(job) || this.options.stopping(name)) {
          this.losses.delete(name);
          return;
        }
        if (job.metadata?.annotations?.[ANNOTATION_LOST]) return;
        const patch = { metadata: { annotations: { [ANNOTATION_LOST]: entry.message, [ANNOTATION_LOST_POD]: entry.pod } }, spec: { parallelism: 0 } };
        await batch.patchNamespacedJob({ name, namespace, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      } catch (error) {
        if (statusOf(error) === 404) {
          this.losses.delete(name);
          return;
        }
        entry.marking = false;
        this.options.onError(error, `marking Job ${name} as having lost its pod`);
      }
    })();
  }
}
