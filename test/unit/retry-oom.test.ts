import assert from 'node:assert/strict';
import { finishAttempt, markRunning, nextAttemptResources } from '../../src/controller/phases';
import { containerCreateOptions } from '../../src/executors/docker/container-spec';
import { jobFor } from '../../src/executors/kubernetes/job-spec';
import { grownMemoryBytes } from '../../src/model/retry-policy';
import type { AppSpec, RunStatus } from '../../src/model/types';
import { validateAppManifest } from '../../src/model/validate';
import { appSpec } from '../helpers/fixtures';
import { problemsOf } from '../helpers/validation';

const Mi = 2 ** 20;
const server = { baseMs: 1000, maxMs: 5000 };
const now = new Date('2026-11-26T12:00:00.000Z');
const oom = { reason: 'OOMKilled', exitCode: 137, finishedAt: now.toISOString(), message: 'killed for exceeding its memory limit' } as const;
const manifest = (spec: Record<string, unknown>) => ({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: 'oom-rules' }, spec });

/** Launches the next attempt as the reconciler does: with the memory nextAttemptResources decides, recorded. */
function launchNext(status: RunStatus, template: AppSpec): RunStatus {
  const attempt = status.attempts + 1;
  const { memory } = nextAttemptResources(status, template);
  return markRunning({ ...status }, { attempt, startedAt: now.toISOString(), containerName: `berth-run-x-${attempt}`, runtime: 'docker', memory });
}

describe('spec.retryPolicy.onOOM', () => {
  it('grows the killed attempt’s memory by the factor, rounded up to a KiB, at most maxMemory', () => {
    const rule = { memoryFactor: 2, maxMemory: '100Mi' };
    assert.equal(grownMemoryBytes(16 * Mi, rule), 32 * Mi);
    assert.equal(grownMemoryBytes(64 * Mi, rule), 100 * Mi, 'capped');
    assert.equal(grownMemoryBytes(100 * Mi, rule), undefined, 'already at the cap: no more to give');
    assert.equal(grownMemoryBytes(1000, { memoryFactor: 1.5, maxMemory: '1Gi' }), 2048);
  });

  it('retries an OOM kill with more memory each time, records each attempt’s, and stops at maxMemory', () => {
    const template = appSpec({ retries: 5, resources: { memory: '16Mi' }, retryPolicy: { onOOM: { memoryFactor: 2, maxMemory: '48Mi' } } });
    let status = launchNext({ phase: 'Pending', attempts: 0 }, template);
    const memories: (string | undefined)[] = [];
    for (;;) {
      memories.push(status.history?.at(-1)?.memory);
      status = finishAttempt(status, oom, template, server, now);
      if (status.phase !== 'Pending') break;
      status = launchNext(status, template);
    }
    assert.deepEqual(memories, ['16Mi', '32Mi', '48Mi']);
    assert.deepEqual(
      status.history?.map((a) => [a.memory, a.reason]),
      [
        ['16Mi', 'OOMKilled'],
        ['32Mi', 'OOMKilled'],
        ['48Mi', 'OOMKilled'],
      ],
    );
    assert.equal(status.phase, 'Failed');
    assert.equal(status.message, 'killed for exceeding its memory limit; not retried: attempt 3 already had spec.retryPolicy.onOOM.maxMemory (48Mi)');
  });

  it('says the next attempt’s memory while waiting out the backoff', () => {
    const template = appSpec({ retries: 1, resources: { memory: '16Mi' }, retryPolicy: { onOOM: { memoryFactor: 3, maxMemory: '1Gi' } } });
    const retry = finishAttempt(launchNext({ phase: 'Pending', attempts: 0 }, template), oom, template, server, now);
    assert.equal(retry.message, 'attempt 1 failed (killed for exceeding its memory limit); next attempt at 2026-11-26T12:00:01.000Z with memory 48Mi');
    assert.equal(nextAttemptResources(retry, template).memory, '48Mi');
  });

  it('keeps the grown memory after a later failure that was not an OOM kill', () => {
    const template = appSpec({ retries: 3, resources: { memory: '16Mi', cpu: '0.5' }, retryPolicy: { onOOM: { memoryFactor: 2, maxMemory: '1Gi' } } });
    let status = finishAttempt(launchNext({ phase: 'Pending', attempts: 0 }, template), oom, template, server, now);
    status = launchNext(status, template);
    status = finishAttempt(status, { reason: 'Error', exitCode: 1, finishedAt: now.toISOString() }, template, server, now);
    assert.deepEqual(nextAttemptResources(status, template), { memory: '32Mi', cpu: '0.5' });
  });

  it('without onOOM an OOM kill is retried with the same memory', () => {
    const template = appSpec({ retries: 1, resources: { memory: '16Mi' } });
    const retry = finishAttempt(launchNext({ phase: 'Pending', attempts: 0 }, template), oom, template, server, now);
    assert.equal(retry.phase, 'Pending');
    assert.equal(nextAttemptResources(retry, template).memory, '16Mi');
  });

  it('the launch’s resources reach the Docker container and the Kubernetes Job', () => {
    const template = appSpec({ resources: { memory: '16Mi' } });
    const request = { name: 'berth-run-x-2', runUid: 'x', runName: 'r', appName: 'a', attempt: 2, template, resources: { memory: '32Mi' } };
    assert.equal(containerCreateOptions(request).HostConfig?.Memory, 32 * Mi);
    const limits = jobFor(request, { deadlineBackstopSeconds: 60 }).spec?.template.spec?.containers[0].resources;
    assert.equal(limits?.limits?.memory, '32Mi');
    assert.equal(limits?.requests?.memory, '32Mi');
  });

  it('is accepted in a manifest, maxMemory kept as a quantity', () => {
    const spec = validateAppManifest(
      manifest({ image: 'busybox', resources: { memory: '64Mi' }, retryPolicy: { onOOM: { memoryFactor: 1.5, maxMemory: 268435456 } } }),
    ).spec;
    assert.deepEqual(spec.retryPolicy, { onOOM: { memoryFactor: 1.5, maxMemory: '268435456' } });
  });

  it('refuses bad rules naming the field', () => {
    const fields = (spec: Record<string, unknown>) =>
      Object.fromEntries(problemsOf(() => validateAppManifest(manifest({ image: 'busybox', ...spec }))).map((p) => [p.field, p.reason]));
    const withMemory = (onOOM: unknown) => fields({ resources: { memory: '64Mi' }, retryPolicy: { onOOM } });
    const factor = 'must be a number greater than 1 and at most 16, such as 2';
    assert.equal(withMemory({ memoryFactor: 1, maxMemory: '1Gi' })['spec.retryPolicy.onOOM.memoryFactor'], factor);
    assert.equal(withMemory({ memoryFactor: 17, maxMemory: '1Gi' })['spec.retryPolicy.onOOM.memoryFactor'], factor);
    assert.equal(withMemory({ memoryFactor: 2 })['spec.retryPolicy.onOOM.maxMemory'], 'is required');
    assert.match(withMemory({ memoryFactor: 2, maxMemory: 'lots' })['spec.retryPolicy.onOOM.maxMemory'], /^must be a positive number of bytes/);
    assert.equal(withMemory({ memoryFactor: 2, maxMemory: '32Mi' })['spec.retryPolicy.onOOM.maxMemory'], 'must be at least spec.resources.memory (64Mi)');
    assert.equal(
      fields({ retryPolicy: { onOOM: { memoryFactor: 2, maxMemory: '1Gi' } } })['spec.resources.memory'],
      "is required with spec.retryPolicy.onOOM: it is the first attempt's limit, which an OOM kill grows",
    );
  });
});
