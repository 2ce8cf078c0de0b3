import assert from 'node:assert/strict';
import { ChangeBatcher } from '../../src/sources/change-batcher';

describe('ChangeBatcher', function () {
  let batcher: ChangeBatcher | undefined;
  afterEach(async () => {
    await batcher?.stop();
    batcher = undefined;
  });

  it('coalesces a burst of changes into one batch, each path once', async () => {
    const batches: string[][] = [];
    batcher = new ChangeBatcher({ debounceMs: 20, process: async (paths) => void batches.push(paths.sort()), onError: () => undefined });
    for (const p of ['b.yaml', 'a.yaml', 'b.yaml', 'c.yaml', 'a.yaml']) batcher.touch(p);
    await batcher.whenIdle();
    assert.deepEqual(batches, [['a.yaml', 'b.yaml', 'c.yaml']]);
  });

  it('retries a failed batch whole, with the paths that arrived meanwhile', async () => {
    const batches: string[][] = [];
    const failures: number[] = [];
    batcher = new ChangeBatcher({
      debounceMs: 5,
      process: async (paths) => {
        batches.push(paths.sort());
        if (batches.length === 1) {
          batcher?.enqueue(['later.yaml']);
          throw new Error('database is locked');
        }
      },
      onError: (_err, paths, retryInMs) => failures.push(paths.length, retryInMs),
    });
    batcher.enqueue(['a.yaml']);
    await batcher.whenIdle();
    assert.deepEqual(failures, [1, 200]);
    assert.deepEqual(batches, [['a.yaml'], ['a.yaml', 'later.yaml']]);
  });

  it('is idle at once when nothing is pending, and after stop', async () => {
    batcher = new ChangeBatcher({ debounceMs: 60_000, process: async () => undefined, onError: () => undefined });
    await batcher.whenIdle();
    batcher.touch('a.yaml');
    const idle = batcher.whenIdle();
    await batcher.stop();
    await idle;
  });
});
