/**
 * What only a cluster has, per App (`spec.kubernetes`): the pod's identity,
 * placement and pull credentials, and labels and annotations of its own.
 * Validated at the edge (src/model/schema.ts); here it only becomes pod
 * spec fields.
 */

import type { V1PodSpec } from '@kubernetes/client-node';
import type { KubernetesPodOptions, Toleration } from '../../model/types';

export type { KubernetesPodOptions, Toleration };

/** The pod spec fields `options` sets. Without a service account the pod gets no API token: Docker containers get none either. */
export function podPlacement(options: KubernetesPodOptions | undefined): Partial<V1PodSpec> {
  const placement: Partial<V1PodSpec> = {};
  if (options?.serviceAccountName) placement.serviceAccountName = options.serviceAccountName;
  else placement.automountServiceAccountToken = false;
  if (options?.nodeSelector && Object.keys(options.nodeSelector).length > 0) placement.nodeSelector = { ...options.nodeSelector };
  if (options?.tolerations?.length) placement.tolerations = options.tolerations.map((toleration) => ({ ...toleration }));
  if (options?.imagePullSecrets?.length) placement.imagePullSecrets = options.imagePullSecrets.map((name) => ({ name }));
  return placement;
}

/** The pod's labels: the App's own, under berth's (berth's win a clash, so the executor always finds its pods). */
export function podLabels(options: KubernetesPodOptions | undefined, berthLabels: Record<string, string>): Record<string, string> {
  return { ...(options?.labels ?? {}), ...berthLabels };
}

/** The pod's annotations, when the App sets any. */
export function podAnnotations(options: KubernetesPodOptions | undefined): Record<string, string> | undefined {
  return options?.annotations && Object.keys(options.annotations).length > 0 ? { ...options.annotations } : undefined;
}
