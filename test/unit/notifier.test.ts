import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { eventFor, retryDelayMs, signatureOf } from '../../src/controller/notifier';
import type { NotifyWebhook } from '../../src/model/types';

const hook = (fields: Partial<NotifyWebhook>): NotifyWebhook => ({ url: 'https://hooks.example/x', on: ['Failed', 'Succeeded', 'Recovered'], ...fields });

describe('eventFor: which event a webhook gets for a run that ended', () => {
  it('Failed for a failed run, counting the failures in a row', () => {
    assert.deepEqual(eventFor(hook({}), 'Failed', []), { event: 'Failed', consecutiveFailures: 1 });
    assert.deepEqual(eventFor(hook({}), 'Failed', ['Failed', 'Failed', 'Succeeded', 'Failed']), { event: 'Failed', consecutiveFailures: 3 });
  });

  it('after: N waits until the last N runs all failed, then sends each further failure', () => {
    const third = hook({ after: 3 });
    assert.equal(eventFor(third, 'Failed', ['Failed']), undefined);
    assert.equal(eventFor(third, 'Failed', ['Failed', 'Succeeded', 'Failed']), undefined);
    assert.deepEqual(eventFor(third, 'Failed', ['Failed', 'Failed']), { event: 'Failed', consecutiveFailures: 3 });
    assert.deepEqual(eventFor(third, 'Failed', ['Failed', 'Failed', 'Failed']), { event: 'Failed', consecutiveFailures: 4 });
  });

  it('Recovered for the first success after failures (after a streak of `after` with after set), else Succeeded', () => {
    assert.deepEqual(eventFor(hook({}), 'Succeeded', ['Failed', 'Failed', 'Succeeded']), { event: 'Recovered', consecutiveFailures: 2 });
    assert.deepEqual(eventFor(hook({}), 'Succeeded', ['Succeeded', 'Failed']), { event: 'Succeeded', consecutiveFailures: 0 });
    assert.deepEqual(eventFor(hook({}), 'Succeeded', []), { event: 'Succeeded', consecutiveFailures: 0 });
    assert.deepEqual(eventFor(hook({ after: 3 }), 'Succeeded', ['Failed', 'Failed']), { event: 'Succeeded', consecutiveFailures: 0 });
    assert.equal(eventFor(hook({ on: ['Recovered'] }), 'Succeeded', ['Succeeded']), undefined);
  });

  it('nothing a webhook did not ask for, and nothing for a cancelled run', () => {
    assert.equal(eventFor(hook({ on: ['Succeeded'] }), 'Failed', []), undefined);
    assert.equal(eventFor(hook({ on: ['Failed'] }), 'Succeeded', ['Failed']), undefined);
    assert.equal(eventFor(hook({}), 'Cancelled', ['Failed']), undefined);
  });
});

describe('retryDelayMs', () => {
  it('doubles from the base, capped', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, 1000, 10_000)),
      [1000, 2000, 4000, 8000, 10_000, 10_000],
    );
  });
});

describe('signatureOf', () => {
  it('is the HMAC-SHA256 of "<timestamp>.<body>", so the timestamp cannot be changed without the secret', () => {
    const body = '{"event":"Failed"}';
    const expected = createHmac('sha256', 's3cret').update(`1700000000.${body}`).digest('hex');
    assert.equal(signatureOf('s3cret', '1700000000', body), `sha256=${expected}`);
    assert.notEqual(signatureOf('s3cret', '1700000001', body), signatureOf('s3cret', '1700000000', body));
  });
});
