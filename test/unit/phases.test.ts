import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { endOfExit, finishAttempt, markCancelled, markRunning, markWaiting, requestCancel, retryDelayMs, sameStatus } from '../../src/controller/phases';
import { appendAttempt, attemptSeparator, readTail } from '../../src/controller/run-logs';
import type { RunStatus } from '../../src/model/types';
import { appSpec } from '../helpers/fixtures';

const policy = { baseMs: 1000, maxMs: 5000 };
const now = new Date('2026-11-26T12:00:00.000Z');
const pending: RunStatus = { phase: 'Pending', attempts: 0 };
const launch = (attempt: number, startedAt = '2026-11-26T11:59:00.000Z') => ({ attempt, startedAt, containerName: 'berth-run-x', runtime: 'docker' }) as const;

describe('run phases', () => {
  it('markRunning counts the attempt, opens it in history, and keeps the first start as the run’s', () => {
    const first = markRunning(markWaiting(pending, 'Waiting', 'waiting for a free slot', 'MaxParallel', 1), launch(1));
    assert.equal(first.phase, 'Running');
    assert.equal(first.attempts, 1);
    assert.equal(first.reason, undefined);
    assert.equal(first.message, undefined);
    assert.equal(first.pendingReason, undefined);
    assert.equal(first.queuePosition, undefined);
    assert.deepEqual(first.history, [{ attempt: 1, startedAt: '2026-11-26T11:59:00.000Z' }]);
    const retried = markRunning({ ...first, phase: 'Pending' }, launch(2, '2026-11-26T11:59:30.000Z'));
    assert.equal(retried.startedAt, '2026-11-26T11:59:00.000Z');
    assert.equal(retried.history?.length, 2);
  });

  it('finishAttempt: exit 0 succeeds with Completed, closing the attempt', () => {
    const running = markRunning(pending, launch(1));
    const end = endOfExit({ state: 'exited', exitCode: 0, oomKilled: false, finishedAt: now.toISOString() }, appSpec());
    const done = finishAttempt(running, end, appSpec({ retries: 3 }), policy, now);
    assert.equal(done.phase, 'Succeeded');
    assert.equal(done.reason, 'Completed');
    assert.equal(done.exitCode, 0);
    assert.equal(done.finishedAt, now.toISOString());
    assert.deepEqual(done.history, [
      { attempt: 1, startedAt: '2026-11-26T11:59:00.000Z', finishedAt: now.toISOString(), exitCode: 0, reason: 'Completed', message: undefined },
    ]);
  });

  it('finishAttempt: a failure with retries left goes back to Pending after a doubling, capped backoff', () => {
    const template = appSpec({ retries: 5 });
    const fail = { reason: 'Error', exitCode: 1, finishedAt: now.toISOString(), message: 'exited with code 1' } as const;
    const afterFirst = finishAttempt(markRunning(pending, launch(1)), fail, template, policy, now);
    assert.equal(afterFirst.phase, 'Pending');
    assert.equal(afterFirst.reason, 'Error');
    assert.equal(afterFirst.nextAttemptAt, '2026-11-26T12:00:01.000Z');
    assert.equal(afterFirst.message, 'attempt 1 failed (exited with code 1); next attempt at 2026-11-26T12:00:01.000Z');
    assert.equal(afterFirst.finishedAt, undefined);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => retryDelayMs(n, policy)),
      [1000, 2000, 4000, 5000, 5000],
    );
  });

  it('finishAttempt: fails once retries are spent, naming the attempt, and never retries a deadline', () => {
    const template = appSpec({ retries: 1 });
    let status = markRunning(pending, launch(1));
    status = finishAttempt(status, { reason: 'OOMKilled', exitCode: 137, finishedAt: now.toISOString(), message: 'killed' }, template, policy, now);
    status = markRunning(status, launch(2));
    status = finishAttempt(status, { reason: 'OOMKilled', exitCode: 137, finishedAt: now.toISOString(), message: 'killed' }, template, policy, now);
    assert.equal(status.phase, 'Failed');
    assert.equal(status.reason, 'OOMKilled');
    assert.equal(status.message, 'killed (attempt 2 of 2)');
    assert.equal(status.nextAttemptAt, undefined);
    assert.deepEqual(
      status.history?.map((a) => a.reason),
      ['OOMKilled', 'OOMKilled'],
    );

    const deadline = finishAttempt(
      markRunning(pending, launch(1)),
      { reason: 'DeadlineExceeded', finishedAt: now.toISOString() },
      appSpec({ retries: 3 }),
      policy,
      now,
    );
    assert.equal(deadline.phase, 'Failed');
  });

  it('endOfExit reads OOM kills and non-zero exits', () => {
    const oom = endOfExit({ state: 'exited', exitCode: 137, oomKilled: true, finishedAt: now.toISOString() }, appSpec({ resources: { memory: '16Mi' } }));
    assert.deepEqual(oom, { reason: 'OOMKilled', exitCode: 137, finishedAt: now.toISOString(), message: 'killed for exceeding its memory limit (16Mi)' });
    const error = endOfExit({ state: 'exited', exitCode: 3, oomKilled: false, finishedAt: now.toISOString() }, appSpec());
    assert.equal(error.message, 'exited with code 3');
  });

  it('a cancel request is recorded once, and carried out with its reason', () => {
    const asked = requestCancel(pending, 'Replaced', 'replaced by run "b"');
    assert.equal(requestCancel(asked, 'Cancelled', 'again'), asked);
    const cancelled = markCancelled(asked, { reason: 'Replaced', message: 'replaced by run "b"', finishedAt: now.toISOString() });
    assert.equal(cancelled.phase, 'Cancelled');
    assert.equal(cancelled.reason, 'Replaced');
    assert.equal(cancelled.history, undefined, 'a run cancelled before any launch has no attempt');
  });

  it('sameStatus ignores key order and undefined fields', () => {
    assert.ok(sameStatus({ phase: 'Pending', attempts: 0, reason: undefined }, { attempts: 0, phase: 'Pending' }));
    assert.ok(!sameStatus(pending, markWaiting(pending, 'Waiting', 'x', 'MaxParallel')));
  });
});

describe('run logs', () => {
  it('keeps the newest bytes of a long stream and counts the rest', async () => {
    const stream = Readable.from(['0123456789', 'abcdefghij', 'KLMNO']);
    assert.deepEqual(await readTail(stream, 8), { text: 'hijKLMNO', droppedBytes: 17 });
  });

  it('never cuts a UTF-8 character in half', async () => {
    const tail = await readTail(Readable.from([Buffer.from('aé€', 'utf8')]), 4);
    assert.deepEqual(tail, { text: '€', droppedBytes: 3 });
  });

  it('appends later attempts after a separator, replacing a repeated collection of the same attempt', () => {
    const first = appendAttempt(null, 1, { text: 'one', droppedBytes: 0 }, 1024);
    assert.deepEqual(first, { content: 'one', droppedBytes: 0 });
    const second = appendAttempt(first, 2, { text: 'two\n', droppedBytes: 0 }, 1024);
    assert.equal(second.content, `one\n${attemptSeparator(2)}two\n`);
    const again = appendAttempt(second, 2, { text: 'two\n', droppedBytes: 0 }, 1024);
    assert.deepEqual(again, second);
    const bounded = appendAttempt(second, 3, { text: 'three\n', droppedBytes: 5 }, 10);
    const combined = Buffer.byteLength(second.content + attemptSeparator(3) + 'three\n');
    assert.deepEqual(bounded, { content: '---\nthree\n', droppedBytes: 5 + combined - 10 });
  });
});
