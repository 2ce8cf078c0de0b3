import assert from 'node:assert/strict';
import { queuePositionOf, waitingLine } from '../../src/controller/waiting-line';
import type { RunStatus } from '../../src/model/types';
import type { ActiveRunState } from '../../src/store/store';

const run = (id: number, status: Partial<RunStatus> = {}): ActiveRunState => ({
  id,
  appId: 1,
  name: `r${id}`,
  status: { phase: 'Pending', attempts: 0, ...status },
});
const positions = (active: ActiveRunState[], maxParallel: number, starting: number[] = []) => {
  const line = waitingLine(active, maxParallel, new Set(starting), Date.parse('2026-11-26T12:00:00Z'));
  return line.ready.map((r, place) => [r.name, queuePositionOf(line, place)]);
};

describe('the waiting line for slots', () => {
  it('lets the oldest ready runs take the free slots and numbers the rest from 1', () => {
    const active = [run(1, { phase: 'Running' }), run(2), run(3), run(4)];
    assert.deepEqual(positions(active, 2), [
      ['r2', undefined],
      ['r3', 1],
      ['r4', 2],
    ]);
  });

  it('counts runs being started as taking a slot, and leaves out runs backing off or asked to stop', () => {
    const active = [
      run(1),
      run(2, { nextAttemptAt: '2026-11-26T12:05:00Z' }),
      run(3, { cancelRequested: { reason: 'Cancelled', message: 'x' } }),
      run(4),
      run(5, { nextAttemptAt: '2026-11-26T11:59:00Z' }),
    ];
    assert.deepEqual(positions(active, 1, [1]), [
      ['r4', 1],
      ['r5', 2],
    ]);
  });

  it('puts runs further back when more run than the cap allows (the cap was lowered)', () => {
    const active = [run(1, { phase: 'Running' }), run(2, { phase: 'Running' }), run(3)];
    assert.deepEqual(positions(active, 1), [['r3', 2]]);
  });
});
