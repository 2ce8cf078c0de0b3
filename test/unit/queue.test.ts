import assert from 'node:assert/strict';
import { isTerminalError, WorkQueue, KeyHandler, ProcessResult } from '../../src/controller/queue';
import { ConflictError, RuntimeApiError, RuntimeRefusedError } from '../../src/errors';
import { waitFor } from '../helpers/wait';

/** A promise the test resolves when it chooses: holds a handler mid-processing. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('WorkQueue', () => {
  let controller: AbortController;
  let running: Promise<void> | undefined;

  beforeEach(() => {
    controller = new AbortController();
    running = undefined;
  });

  afterEach(async () => {
    controller.abort();
    await running;
  });

  function startQueue(handler: KeyHandler<string>, options: { workers?: number; baseRetryMs?: number; maxRetryMs?: number } = {}) {
    const queue = new WorkQueue<string>({ handler, ...options });
    running = queue.start(controller.signal);
    return queue;
  }

  it('processes a key added several times before a worker takes it once', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue<string>({ handler: async (key) => void seen.push(key) });
    queue.add('a');
    queue.add('a');
    queue.add('b');
    queue.add('a');
    assert.equal(queue.depth, 2);
    running = queue.start(controller.signal);
    await waitFor('both keys processed', () => seen.length === 2 && queue.active === 0);
    assert.deepEqual(seen, ['a', 'b']);
  });

  it('never hands one key to two workers, and processes a key re-added mid-pass again afterwards', async () => {
    const hold = gate();
    let concurrent = 0;
    let maxConcurrent = 0;
    let passes = 0;
    const queue = startQueue(
      async () => {
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        passes++;
        if (passes === 1) await hold.opened;
        concurrent--;
      },
      { workers: 4 },
    );
    queue.add('a');
    await waitFor('first pass under way', () => passes === 1);
    queue.add('a');
    queue.add('a');
    assert.equal(queue.depth, 0, 'a key being processed is not handed to another worker');
    hold.open();
    await waitFor('second pass done', () => passes === 2 && queue.active === 0);
    assert.equal(maxConcurrent, 1);
  });

  it('processes different keys in parallel up to the number of workers', async () => {
    const hold = gate();
    const inside = new Set<string>();
    let maxInside = 0;
    const queue = startQueue(
      async (key) => {
        inside.add(key);
        maxInside = Math.max(maxInside, inside.size);
        await hold.opened;
        inside.delete(key);
      },
      { workers: 3 },
    );
    for (const key of ['a', 'b', 'c', 'd']) queue.add(key);
    await waitFor('three keys in flight', () => inside.size === 3);
    assert.equal(queue.depth, 1, 'the fourth waits for a free worker');
    hold.open();
    await waitFor('all done', () => queue.active === 0 && queue.depth === 0);
    assert.equal(maxInside, 3);
  });

  it('retries a failing key with a doubling delay and resets it on success', async () => {
    const times: number[] = [];
    const queue = startQueue(
      async () => {
        times.push(Date.now());
        if (times.length <= 3) throw new Error('not yet');
      },
      { baseRetryMs: 20 },
    );
    queue.add('a');
    await waitFor('a succeeded on the fourth pass', () => times.length === 4 && queue.active === 0);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // Timers never fire early; each gap is at least its delay (20, 40, 80 ms).
    assert.ok(gaps[0] >= 19 && gaps[1] >= 39 && gaps[2] >= 79, `gaps ${gaps.join(', ')}`);
    assert.equal(queue.failuresOf('a'), 0);
  });

  it('drops a key whose handler throws an error retrying cannot help, and takes it again when added', async () => {
    const dropped: unknown[] = [];
    const failed: unknown[] = [];
    let passes = 0;
    const queue = new WorkQueue<string>({
      baseRetryMs: 1,
      handler: async () => {
        passes++;
        if (passes === 1) throw new RuntimeRefusedError('the runtime refused the request');
        if (passes === 2) throw new RuntimeApiError('the runtime failed; try again');
      },
      hooks: { dropped: (_key, error) => dropped.push(error), failed: (_key, error) => failed.push(error) },
    });
    running = queue.start(controller.signal);
    queue.add('a');
    await waitFor('the terminal failure to be dropped', () => dropped.length === 1 && queue.active === 0);
    // Dropped, not retried: nothing is scheduled and the key's failure count is clear.
    assert.equal(passes, 1);
    assert.equal(queue.failuresOf('a'), 0);
    // Added again (a change, a resync): processed again; a retryable error is retried until it succeeds.
    queue.add('a');
    await waitFor('the retryable failure to be retried until it succeeds', () => passes === 3 && queue.active === 0);
    assert.equal(failed.length, 1);
    assert.ok(failed[0] instanceof RuntimeApiError);
    assert.ok(dropped[0] instanceof RuntimeRefusedError);
    assert.equal(isTerminalError(new Error('a plain error says nothing')), false);
    assert.equal(isTerminalError(new ConflictError('another writer was first')), false);
  });

  it('computes per-key delays like an exponential failure rate limiter, capped', () => {
    const queue = new WorkQueue<string>({ handler: async () => undefined, baseRetryMs: 5, maxRetryMs: 30 });
    const delays = [1, 2, 3, 4, 5].map(() => queue.addRateLimited('a'));
    assert.deepEqual(delays, [5, 10, 20, 30, 30]);
    assert.equal(queue.addRateLimited('b'), 5, 'failures are counted per key');
    queue.forget('a');
    assert.equal(queue.addRateLimited('a'), 5);
    controller.abort();
    running = queue.start(controller.signal);
  });

  it('keeps the earliest of several delayed adds, and processes the key once', async () => {
    const seen: number[] = [];
    const queue = startQueue(async () => void seen.push(Date.now()));
    const began = Date.now();
    queue.addAfter('a', 60_000);
    queue.addAfter('a', 10);
    queue.addAfter('a', 30_000);
    await waitFor('a processed', () => seen.length === 1);
    assert.ok(seen[0] - began < 20_000);
    queue.add('b');
    await waitFor('b processed', () => seen.length === 2 && queue.active === 0);
    assert.equal(seen.length, 2, 'the later schedules of a were dropped');
  });

  it('processes a key again after the requeueAfterMs its handler returned', async () => {
    let passes = 0;
    const queue = startQueue(async (): Promise<ProcessResult> => {
      passes++;
      return passes === 1 ? { requeueAfterMs: 10 } : {};
    });
    queue.add('a');
    await waitFor('second pass', () => passes === 2);
  });

  it('resolves start only after abort and once in-flight keys are done', async () => {
    const hold = gate();
    let finished = false;
    const queue = startQueue(async () => {
      await hold.opened;
      finished = true;
    });
    queue.add('a');
    await waitFor('a in flight', () => queue.active === 1);
    let resolved = false;
    void running!.then(() => (resolved = true));
    controller.abort();
    queue.add('b');
    await Promise.resolve();
    assert.equal(resolved, false, 'still draining');
    hold.open();
    await running;
    assert.equal(finished, true);
    assert.equal(queue.depth, 0, 'adds after abort are ignored');
  });

  it('reports depth, wait and processing time, and failures to its hooks', async () => {
    const depths: number[] = [];
    const waits: number[] = [];
    const processed: number[] = [];
    const failed: string[] = [];
    const queue = new WorkQueue<string>({
      handler: async (key) => {
        if (key === 'bad') throw new Error('boom');
      },
      maxRetryMs: 60_000,
      baseRetryMs: 60_000,
      hooks: {
        depth: (d) => depths.push(d),
        waited: (s) => waits.push(s),
        processed: (s) => processed.push(s),
        failed: (key, error, retryInMs) => failed.push(`${key}:${(error as Error).message}:${retryInMs}`),
      },
    });
    queue.add('a');
    queue.add('bad');
    running = queue.start(controller.signal);
    await waitFor('both processed', () => processed.length === 2);
    assert.deepEqual(depths.slice(0, 2), [1, 2]);
    assert.equal(depths.at(-1), 0);
    assert.equal(waits.length, 2);
    assert.ok(waits.every((s) => s >= 0));
    assert.deepEqual(failed, ['bad:boom:60000']);
  });

  it('refuses a worker count that is not a positive whole number', () => {
    assert.throws(() => new WorkQueue<string>({ handler: async () => undefined, workers: 0 }), {
      name: 'RangeError',
      message: 'workers: must be a whole number of at least 1, got 0',
    });
  });
});
