/**
 * The permissions the executor uses, exactly, and asking the API server
 * whether berth's account has them (SelfSubjectAccessReview), so a missing
 * one is named at start and on /readyz instead of failing the first run.
 * manifests/base/role.yaml grants these and nothing else.
 */

import type { AuthorizationV1Api } from '@kubernetes/client-node';
import type { Permission } from './kube-errors';

const job = (verb: string): Permission => ({ verb, resource: 'jobs', group: 'batch' });
const pod = (verb: string): Permission => ({ verb, resource: 'pods', group: '' });

/**
 * Jobs: created per attempt, read and listed and watched to observe them,
 * patched only to mark one whose pod was deleted underneath it (see
 * observation.ts), deleted by stop and remove. Pods: read, listed and
 * watched to observe, deleted to stop with a grace period; their logs read.
 * A Job's status arrives with the Job, so `jobs/status` is not needed, and
 * Events are not read.
 */
export const REQUIRED_PERMISSIONS: readonly Permission[] = [
  job('create'),
  job('get'),
  job('list'),
  job('watch'),
  job('patch'),
  job('delete'),
  pod('get'),
  pod('list'),
  pod('watch'),
  pod('delete'),
  { verb: 'get', resource: 'pods/log', group: '' },
];

/**
 * The permissions of `required` the current account lacks in `namespace`.
 *
 * @throws whatever the API client throws when a review cannot be made (the caller maps it).
 */
export async function missingPermissions(
  authorization: AuthorizationV1Api,
  namespace: string,
  required: readonly Permission[] = REQUIRED_PERMISSIONS,
): Promise<Permission[]> {
  const answers = await Promise.all(
    required.map(async (permission) => {
      const [resource, subresource] = permission.resource.split('/');
      const review = await authorization.createSelfSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: { resourceAttributes: { namespace, verb: permission.verb, group: permission.group, resource, ...(subresource ? { subresource } : {}) } },
        },
      });
      return review.status?.allowed === true ? undefined : permission;
    }),
  );
  return answers.filter((permission): permission is Permission => permission !== undefined);
}
