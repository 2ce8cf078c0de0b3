/**
 * How the Kubernetes executor reads what a cluster says, on the shapes a
 * real API server gives but a test cannot easily provoke (an evicted pod, a
 * node that stopped reporting, a Job whose pod is gone), and the small
 * translations it makes on the way (quantities, `$` escapes, label values,
 * errors). No cluster needed; what a cluster does is in kubernetes-*.test.ts.
 */

import type { V1Job, V1Pod } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { RuntimeApiError, RuntimeRefusedError, RuntimeUnavailableError } from '../../src/errors';
import { WorkloadAction, type Observation } from '../../src/executors/executor';
import { cpuQuantity, labelValue, literal, memoryQuantity, resourceRequirements } from '../../src/executors/kubernetes/job-spec';
import { apiError } from '../../src/executors/kubernetes/kube-errors';
import { readWorkload, type ObservationContext, type PullFailure, type WorkloadState } from '../../src/executors/kubernetes/observation';
import { KubeletTrailerFilter } from '../../src/executors/kubernetes/pod-logs';
import { eventsBetween } from '../../src/executors/kubernetes/workload-watch';
import { readText } from '../contract/executor.contract';

const NOW = Date.parse('2026-01-01T00:01:00Z');

const job = (overrides: Partial<V1Job['status']> = {}, metadata: Partial<NonNullable<V1Job['metadata']>> = {}): V1Job => ({
  metadata: { name: 'berth-run-x-1', labels: {}, ...metadata },
  status: { startTime: new Date('2026-01-01T00:00:00Z'), ...overrides },
});

const pod = (name: string, status: V1Pod['status'], metadata: Partial<NonNullable<V1Pod['metadata']>> = {}): V1Pod => ({
  metadata: { name, uid: `uid-${name}`, creationTimestamp: new Date('2026-01-01T00:00:00Z'), labels: { 'job-name': 'berth-run-x-1' }, ...metadata },
  spec: { nodeName: 'node-a', containers: [{ name: 'main', image: 'example/image:1' }] },
  status,
});

const running = (startedAt = '2026-01-01T00:00:05Z'): V1Pod['status'] => ({
  phase: 'Running',
  containerStatuses: [
    { name: 'main', image: 'example/image:1', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: new Date(startedAt) } } },
  ],
});

const waiting = (reason: string, message?: string): V1Pod['status'] => ({
  phase: 'Pending',
  containerStatuses: [{ name: 'main', image: 'example/image:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } }],
});

function context(overrides: Partial<ObservationContext> = {}): ObservationContext {
  const failures = new Map<string, PullFailure>();
  return {
    now: NOW,
    imagePullGraceMs: 60_000,
    pullFailure: (p, reason, message) => {
      const uid = p.metadata?.uid ?? '';
      const failure = failures.get(uid) ?? { since: NOW };
      if (reason !== 'ImagePullBackOff' && message) failure.lastError = message;
      failures.set(uid, failure);
      return failure;
    },
    stopping: false,
    ...overrides,
  };
}

const observe = (state: WorkloadState, overrides: Partial<ObservationContext> = {}): Observation => readWorkload(state, context(overrides)).observation;

describe('Kubernetes executor: reading pods', () => {
  it('reads an evicted pod as lost, with the kubelet’s reason', () => {
    const evicted = pod('p1', { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' });
    assert.deepEqual(observe({ job: job(), pods: [evicted] }), {
      state: 'lost',
      message: 'pod p1 was evicted by its node: The node was low on resource: memory.',
    });
  });

  it('reads a pod its node refused before the container ran as lost', () => {
    const refused = pod('p1', { phase: 'Failed', reason: 'OutOfmemory', message: 'Node didn’t have enough resource: memory' });
    assert.deepEqual(observe({ job: job(), pods: [refused] }), {
      state: 'lost',
      message: 'pod p1 failed before its container could run: OutOfmemory: Node didn’t have enough resource: memory',
    });
  });

  it('reads a pod deleted under a live Job as lost, names a node that stopped reporting, and asks for the loss to be recorded', () => {
    const status = running();
    status!.conditions = [
      { type: 'Ready', status: 'False' },
      { type: 'ContainersReady', status: 'True' },
    ];
    const deleted = pod('p1', status, { deletionTimestamp: new Date('2026-01-01T00:05:30Z'), deletionGracePeriodSeconds: 30 });
    const reading = readWorkload({ job: job(), pods: [deleted] }, context());
    const message = 'pod p1 of Job berth-run-x-1 was deleted by something other than berth before its container ended; its node node-a had stopped reporting';
    assert.deepEqual(reading, { observation: { state: 'lost', message }, deletedUnderneath: { pod: 'p1', message } });
    // berth's own stop deletes the same way, and is no loss.
    assert.equal(observe({ job: job(), pods: [deleted] }, { stopping: true }).state, 'running');
  });

  it('takes the elder of two pods for the attempt, so a replacement never passes for it', () => {
    const original = pod('p-old', running(), { deletionTimestamp: new Date('2026-01-01T00:00:40Z') });
    const replacement = pod('p-new', running('2026-01-01T00:00:12Z'), { creationTimestamp: new Date('2026-01-01T00:00:10Z') });
    assert.equal(observe({ job: job(), pods: [replacement, original] }).state, 'lost');
    // Marked on the Job: lost, whatever pod is left.
    const marked = job({}, { annotations: { 'berth.dev/lost': 'pod p-old was deleted', 'berth.dev/lost-pod': 'p-old' } });
    assert.deepEqual(observe({ job: marked, pods: [replacement] }), { state: 'lost', message: 'pod p-old was deleted' });
  });

  it('reads an exit that came before the deletion as the exit, not a loss', () => {
    const status: V1Pod['status'] = {
      phase: 'Failed',
      containerStatuses: [
        {
          name: 'main',
          image: 'example/image:1',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 2, reason: 'Error', startedAt: new Date('2026-01-01T00:00:05Z'), finishedAt: new Date('2026-01-01T00:00:20Z') } },
        },
      ],
    };
    const deleted = pod('p1', status, { deletionTimestamp: new Date('2026-01-01T00:01:00Z'), deletionGracePeriodSeconds: 30 });
    assert.deepEqual(observe({ job: job(), pods: [deleted] }), {
      state: 'exited',
      exitCode: 2,
      oomKilled: false,
      startedAt: '2026-01-01T00:00:05.000Z',
      finishedAt: '2026-01-01T00:00:20.000Z',
    });
  });

  it('reads a finished Job whose pod is gone from the Job: complete as exit 0, failed as lost', () => {
    const complete = job({ completionTime: new Date('2026-01-01T00:00:30Z'), conditions: [{ type: 'Complete', status: 'True' }] });
    assert.deepEqual(observe({ job: complete, pods: [] }), {
      state: 'exited',
      exitCode: 0,
      oomKilled: false,
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:00:30.000Z',
      message: 'Job berth-run-x-1 completed; its pod is gone, so its exit was read from the Job',
    });
    const failed = job({
      conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }],
    });
    assert.deepEqual(observe({ job: failed, pods: [] }), {
      state: 'lost',
      message: 'Job berth-run-x-1 failed (DeadlineExceeded: Job was active longer than specified deadline) and its pod is gone',
    });
  });

  it('reads a Job being deleted, or gone with its pods going, as absent', () => {
    assert.deepEqual(observe({ job: job({}, { deletionTimestamp: new Date() }), pods: [] }), { state: 'absent' });
    assert.deepEqual(observe({ pods: [pod('p1', running(), { deletionTimestamp: new Date() })] }), { state: 'absent' });
  });

  it('waits on a failing pull for the grace from its first failure, with the registry’s words, then gives up', () => {
    const failing = pod('p1', waiting('ErrImagePull', 'manifest unknown'));
    const shared = context({ imagePullGraceMs: 10_000 });
    assert.deepEqual(readWorkload({ job: job(), pods: [failing] }, shared).observation, {
      state: 'waiting',
      reason: 'Pulling',
      terminal: false,
      message: 'pulling image "example/image:1" failed (ErrImagePull); retrying for 10 s more: manifest unknown',
    });
    const backingOff = pod('p1', waiting('ImagePullBackOff', 'Back-off pulling image "example/image:1"'));
    assert.deepEqual(readWorkload({ job: job(), pods: [backingOff] }, { ...shared, now: NOW + 10_000 }).observation, {
      state: 'waiting',
      reason: 'ImagePullFailed',
      terminal: true,
      message: 'image "example/image:1" cannot be pulled: manifest unknown',
    });
  });

  it('gives up at once on what no retry can fix, and calls a container that cannot be made a failed launch', () => {
    assert.deepEqual(observe({ job: job(), pods: [pod('p1', waiting('InvalidImageName', 'couldn’t parse image reference'))] }), {
      state: 'waiting',
      reason: 'ImagePullFailed',
      terminal: true,
      message: 'image "example/image:1" cannot be pulled (InvalidImageName): couldn’t parse image reference',
    });
    assert.deepEqual(observe({ job: job(), pods: [pod('p1', waiting('CreateContainerConfigError', 'secret "x" not found'))] }), {
      state: 'waiting',
      reason: 'LaunchFailed',
      terminal: true,
      message: 'the container cannot start (CreateContainerConfigError): secret "x" not found',
    });
  });

  it('says why a pod is not scheduled', () => {
    const unscheduled = pod('p1', {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' }],
    });
    assert.deepEqual(observe({ job: job(), pods: [unscheduled] }), {
      state: 'waiting',
      reason: 'Creating',
      terminal: false,
      message: 'pod p1 is not scheduled yet: 0/1 nodes are available',
    });
  });
});

describe('Kubernetes executor: watch events', () => {
  const runningAt: Observation = { state: 'running', startedAt: '2026-01-01T00:00:05.000Z' };
  const exited: Observation = { state: 'exited', exitCode: 0, oomKilled: false, startedAt: '2026-01-01T00:00:05.000Z', finishedAt: '2026-01-01T00:00:06.000Z' };
  const creating: Observation = { state: 'waiting', reason: 'Creating', terminal: false };

  it('says started, exited and removed as the workload goes through them, and nothing for a countdown', () => {
    assert.deepEqual(eventsBetween(undefined, creating), [WorkloadAction.Changed]);
    assert.deepEqual(eventsBetween(creating, { ...creating, message: 'still' }), []);
    assert.deepEqual(eventsBetween(creating, runningAt), [WorkloadAction.Started]);
    assert.deepEqual(eventsBetween(runningAt, exited), [WorkloadAction.Exited]);
    assert.deepEqual(eventsBetween(exited, { state: 'absent' }), [WorkloadAction.Removed]);
    assert.deepEqual(eventsBetween(undefined, { state: 'absent' }), []);
  });

  it('says started before exited for a process that ran between two looks', () => {
    assert.deepEqual(eventsBetween(creating, exited), [WorkloadAction.Started, WorkloadAction.Exited]);
  });
});

describe('Kubernetes executor: translations', () => {
  it('writes quantities canonically, requests equal to limits', () => {
    assert.equal(memoryQuantity(256 * 2 ** 20), '256Mi');
    assert.equal(memoryQuantity(2 ** 30), '1Gi');
    assert.equal(memoryQuantity(1_000_000_000), '1000000000');
    assert.equal(cpuQuantity(500_000_000), '500m');
    assert.equal(cpuQuantity(2e9), '2');
    assert.equal(cpuQuantity(1), '1m');
    assert.deepEqual(resourceRequirements({ memory: '1G', cpu: '0.25' }), {
      requests: { memory: '1000000000', cpu: '250m' },
      limits: { memory: '1000000000', cpu: '250m' },
    });
    assert.equal(resourceRequirements({}), undefined);
  });

  it('escapes only the $ that Kubernetes would expand', () => {
    assert.equal(literal('echo "$HOME"'), 'echo "$HOME"');
    assert.equal(literal('$(WHO) and $$'), '$$(WHO) and $$$');
  });

  it('keeps label values that fit, and shortens the others distinctly', () => {
    assert.equal(labelValue('nightly-report'), 'nightly-report');
    const long = labelValue(`a.${'x'.repeat(100)}`);
    assert.ok(long.length <= 63 && /^[a-z0-9]/.test(long), long);
    assert.notEqual(long, labelValue(`a.${'x'.repeat(101)}`));
  });

  it('drops the kubelet’s error trailer from a log, and nothing else', async () => {
    const filtered = (chunks: (string | Buffer)[]) => readText(Readable.from(chunks.map((chunk) => Buffer.from(chunk))).pipe(new KubeletTrailerFilter()));
    assert.equal(await filtered(['one\ntw', 'o\n', 'rpc error: code = Unknown desc = Error: No such container: 0123']), 'one\ntwo\n');
    assert.equal(await filtered(['no newline at the end']), 'no newline at the end');
    // A character split across two chunks stays whole.
    const cafe = Buffer.from('café\n');
    assert.equal(await filtered([cafe.subarray(0, 4), cafe.subarray(4)]), 'café\n');
  });

  it('maps the API server’s answers to berth’s errors', () => {
    const at = { server: 'https://k8s:6443', namespace: 'jobs', doing: 'creating Job j' };
    const answer = (code: number, message: string) => Object.assign(new Error('HTTP-Code'), { code, body: JSON.stringify({ kind: 'Status', message }) });
    const forbidden = apiError({ ...at, permission: { verb: 'create', resource: 'jobs', group: 'batch' } }, answer(403, 'jobs.batch is forbidden'));
    assert.ok(forbidden instanceof RuntimeRefusedError);
    assert.equal(
      forbidden.message,
      'Kubernetes API server refused creating Job j: berth\'s account lacks "create jobs" in namespace jobs (see manifests/base/role.yaml): jobs.batch is forbidden',
    );
    const invalid = apiError(at, answer(422, 'Job.batch "j" is invalid'));
    assert.ok(invalid instanceof RuntimeRefusedError && invalid.message === 'Kubernetes API server refused creating Job j: Job.batch "j" is invalid');
    assert.ok(apiError(at, answer(429, 'too many requests')) instanceof RuntimeApiError);
    assert.ok(apiError(at, answer(500, 'etcd timed out')) instanceof RuntimeApiError);
    assert.ok(apiError(at, answer(401, 'Unauthorized')) instanceof RuntimeUnavailableError);
    const refused = Object.assign(new Error('request to https://k8s:6443 failed, reason: connect ECONNREFUSED'), {
      name: 'FetchError',
      type: 'system',
      code: 'ECONNREFUSED',
    });
    const down = apiError(at, refused);
    assert.ok(down instanceof RuntimeUnavailableError);
    assert.equal(
      down.message,
      'Kubernetes API server at https://k8s:6443 is unreachable (creating Job j): request to https://k8s:6443 failed, reason: connect ECONNREFUSED',
    );
  });
});
