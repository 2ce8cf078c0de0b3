import assert from 'node:assert/strict';
import { backoffOf, finishAttempt, markRunning } from '../../src/controller/phases';
import type { RunStatus } from '../../src/model/types';
import { validateAppManifest } from '../../src/model/validate';
import { appSpec } from '../helpers/fixtures';
import { problemsOf } from '../helpers/validation';

const server = { baseMs: 1000, maxMs: 5000 };
const now = new Date('2026-11-26T12:00:00.000Z');
const running: RunStatus = markRunning(
  { phase: 'Pending', attempts: 0 },
  { attempt: 1, startedAt: '2026-11-26T11:59:00.000Z', containerName: 'berth-run-x', runtime: 'docker' },
);
const exit = (exitCode: number) => ({ reason: 'Error', exitCode, finishedAt: now.toISOString(), message: `exited with code ${exitCode}` }) as const;
const manifest = (spec: Record<string, unknown>) => ({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: 'retry-rules' }, spec });

describe('spec.retryPolicy', () => {
  it('exitCodes.in: only the listed exit codes are retried', () => {
    const template = appSpec({ retries: 3, retryPolicy: { exitCodes: { in: [75, 111] } } });
    assert.equal(finishAttempt(running, exit(75), template, server, now).phase, 'Pending');
    const failed = finishAttempt(running, exit(1), template, server, now);
    assert.equal(failed.phase, 'Failed');
    assert.equal(failed.message, 'exited with code 1; not retried: exit code 1 is excluded by spec.retryPolicy.exitCodes');
  });

  it('exitCodes.notIn: the listed exit codes are never retried, the others are', () => {
    const template = appSpec({ retries: 3, retryPolicy: { exitCodes: { notIn: [2] } } });
    assert.equal(finishAttempt(running, exit(2), template, server, now).phase, 'Failed');
    assert.equal(finishAttempt(running, exit(1), template, server, now).phase, 'Pending');
  });

  it('retries stays the limit: a retryable exit code with no retries left fails', () => {
    const template = appSpec({ retries: 0, retryPolicy: { exitCodes: { in: [1] } } });
    const failed = finishAttempt(running, exit(1), template, server, now);
    assert.equal(failed.phase, 'Failed');
    assert.equal(failed.message, 'exited with code 1');
  });

  it('exitCodes do not apply to OOMKilled or lost containers, which follow the normal rules', () => {
    const template = appSpec({ retries: 1, retryPolicy: { exitCodes: { in: [3] } } });
    const oom = { reason: 'OOMKilled', exitCode: 137, finishedAt: now.toISOString(), message: 'killed' } as const;
    assert.equal(finishAttempt(running, oom, template, server, now).phase, 'Pending');
  });

  it('backoff per App overrides the server’s, field by field', () => {
    const own = appSpec({ retries: 3, retryPolicy: { backoff: { baseSeconds: 7 } } });
    assert.deepEqual(backoffOf(own, server), { baseMs: 7000, maxMs: 5000 });
    assert.deepEqual(backoffOf(appSpec({ retryPolicy: { backoff: { baseSeconds: 2, maxSeconds: 60 } } }), server), { baseMs: 2000, maxMs: 60_000 });
    assert.deepEqual(backoffOf(appSpec(), server), server);
    const template = appSpec({ retries: 3, retryPolicy: { backoff: { baseSeconds: 30, maxSeconds: 600 } } });
    assert.equal(finishAttempt(running, exit(1), template, server, now).nextAttemptAt, '2026-11-26T12:00:30.000Z');
  });

  it('is accepted in a manifest and kept in the spec', () => {
    const retryPolicy = { exitCodes: { notIn: [2, 3] }, backoff: { baseSeconds: 5, maxSeconds: 300 } };
    assert.deepEqual(validateAppManifest(manifest({ image: 'busybox', retries: 2, retryPolicy })).spec.retryPolicy, retryPolicy);
  });

  it('refuses bad rules naming the field', () => {
    const fields = (retryPolicy: unknown) =>
      Object.fromEntries(problemsOf(() => validateAppManifest(manifest({ image: 'busybox', retryPolicy }))).map((p) => [p.field, p.reason]));
    assert.equal(fields({ exitCodes: { in: [256] } })['spec.retryPolicy.exitCodes.in.0'], 'must be an exit code from 0 to 255');
    assert.equal(fields({ exitCodes: { in: [-1] } })['spec.retryPolicy.exitCodes.in.0'], 'must be an exit code from 0 to 255');
    assert.equal(fields({ exitCodes: { in: [1], notIn: [2] } })['spec.retryPolicy.exitCodes'], 'must give in or notIn, not both');
    assert.equal(fields({ exitCodes: {} })['spec.retryPolicy.exitCodes'], 'must give in or notIn');
    assert.equal(fields({ backoff: { baseSeconds: 0 } })['spec.retryPolicy.backoff.baseSeconds'], 'must be an integer from 1 to 86400');
    assert.equal(fields({ onFailure: true })['spec.retryPolicy.onFailure'], 'only exitCodes, backoff and onOOM are supported');
  });
});
