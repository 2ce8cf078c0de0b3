/**
 * The in-memory executor: the Executor contract, as the real executors pass
 * it, and the knobs reconciler tests turn (outages, injected failures, lost
 * workloads).
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { RuntimeApiError, RuntimeRefusedError, RuntimeUnavailableError } from '../../src/errors';
import { workloadName, type LaunchRequest, type WorkloadEvent } from '../../src/executors/executor';
import { executorContract, readText } from '../contract/executor.contract';
import { TEST_IMAGE, appSpec, uniqueName } from '../helpers/fixtures';
import { MemoryExecutor } from '../helpers/memory-executor';
import { waitFor } from '../helpers/wait';

const CMD_IMAGE = 'berth-test/busybox-cmd:latest';

executorContract('MemoryExecutor', () => new MemoryExecutor({ images: { [TEST_IMAGE]: [], [CMD_IMAGE]: ['echo', 'hello from the image'] } }), {
  image: TEST_IMAGE,
  defaultCommandImage: { image: CMD_IMAGE, output: 'hello from the image\n' },
  missingImage: 'berth-test/no-such-image:latest',
  makeUnreachable: () => new MemoryExecutor({ unreachable: true, address: 'memory://offline' }),
  unreachableAddress: 'memory://offline',
  timeoutMs: 5_000,
});

describe('MemoryExecutor, for reconciler tests', () => {
  let executor: MemoryExecutor;

  beforeEach(() => {
    executor = new MemoryExecutor();
  });

  afterEach(async () => {
    await executor.close();
  });

  const request = (script: string): LaunchRequest => {
    const runUid = randomUUID();
    return {
      name: workloadName(runUid, 1),
      runUid,
      runName: uniqueName('run'),
      appName: uniqueName('app'),
      attempt: 1,
      template: appSpec({ command: ['sh', '-c', script] }),
    };
  };

  it('fails the next calls with the injected error, then answers again', async () => {
    const refused = new RuntimeRefusedError('no such limit');
    executor.failNext(refused, { times: 2, calls: ['launch'] });
    const launch = request('exit 0');
    await assert.rejects(executor.launch(launch), (error) => error === refused);
    // Calls not named pass untouched, and leave the injection in place.
    assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
    await assert.rejects(executor.launch(launch), (error) => error === refused);
    await executor.launch(launch);
    assert.equal(executor.requestOf(launch.name), launch);
  });

  it('makes a fresh error for each call from a factory, for any call when none is named', async () => {
    executor.failNext(() => new RuntimeApiError('the runtime failed'), { times: 2 });
    const errors: unknown[] = [];
    await executor.ping().catch((error: unknown) => errors.push(error));
    await executor.listOwned().catch((error: unknown) => errors.push(error));
    assert.equal(errors.length, 2);
    assert.ok(errors.every((error) => error instanceof RuntimeApiError));
    assert.notEqual(errors[0], errors[1]);
    await executor.ping();
  });

  it('throws RuntimeUnavailableError while unreachable, with its workloads running on', async () => {
    const launch = request('echo before; sleep 0.3; echo after');
    await executor.launch(launch);
    executor.unreachable = true;
    await assert.rejects(executor.observe(launch.name), {
      name: 'RuntimeUnavailableError',
      message: `in-memory runtime at ${executor.address} is unreachable (observing ${launch.name})`,
    });
    await assert.rejects(executor.logs(launch.name), RuntimeUnavailableError);
    executor.unreachable = false;
    await waitFor('the workload to exit', async () => (await executor.observe(launch.name)).state === 'exited');
    assert.equal(await readText(await executor.logs(launch.name)), 'before\nafter\n');
  });

  it('loses a workload: its processes end, it is observed lost with the message, and watchers hear of it', async () => {
    const controller = new AbortController();
    const events: WorkloadEvent[] = [];
    const watching = executor.watch((event) => events.push(event), controller.signal);
    const launch = request('sleep 30');
    await executor.launch(launch);
    await waitFor('the workload to run', async () => (await executor.observe(launch.name)).state === 'running');
    executor.lose(launch.name, 'the node went away');
    assert.deepEqual(await executor.observe(launch.name), { state: 'lost', message: 'the node went away' });
    // One change for its creation, one for its loss.
    await waitFor('a changed event', () => events.filter((event) => event.name === launch.name && event.action === 'changed').length === 2);
    // Its process ended for good: the state stays lost, and a stop has nothing left to do.
    await executor.stop(launch.name, 1);
    assert.deepEqual(await executor.observe(launch.name), { state: 'lost', message: 'the node went away' });
    controller.abort();
    await watching;
  });

  it('refuses a launch with no command when the image has none', async () => {
    const launch = { ...request(''), template: appSpec({ command: [] }) };
    await assert.rejects(executor.launch(launch), {
      name: 'RuntimeRefusedError',
      message: `in-memory runtime at ${executor.address} refused ${launch.name}: no command given, and image "${TEST_IMAGE}" has none`,
    });
  });
});
