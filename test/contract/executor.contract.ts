/**
 * The behaviour every Executor must show, whatever runtime is behind it.
 * Each implementation's test file calls `executorContract` with a factory;
 * the suite only speaks the Executor interface and a shell image, so it runs
 * unchanged against Docker and against a Kubernetes test double.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { workloadName, type Executor, type LaunchRequest, type Observation, type WorkloadEvent } from '../../src/executors/executor';
import type { AppSpec } from '../../src/model/types';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

export interface ExecutorContractOptions {
  /** An image with `/bin/sh` and the usual applets (echo, sleep, exit codes). */
  image: string;
  /**
   * How long a workload may take to reach a state.
   * @default 20_000
   */
  timeoutMs?: number;
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Reads a log stream to its end, as text. */
export async function readText(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return text;
}

/** Runs the Executor contract against the executors `makeExecutor` returns (one per test). */
export function executorContract(name: string, makeExecutor: () => Executor | Promise<Executor>, options: ExecutorContractOptions): void {
  const timeoutMs = options.timeoutMs ?? 20_000;

  describe(`Executor contract: ${name}`, function () {
    this.timeout(timeoutMs * 2);

    let executor: Executor;
    let appName: string;
    let launched: string[];

    beforeEach(async () => {
      executor = await makeExecutor();
      appName = uniqueName('contract');
      launched = [];
    });

    afterEach(async () => {
      // Whatever the test left behind, found the way the controller finds it: by berth's labels.
      const owned = await executor.listOwned();
      const mine = new Set([...launched, ...owned.filter((w) => w.appName === appName).map((w) => w.name)]);
      await Promise.all([...mine].map((workload) => executor.remove(workload)));
    });

    /** A launch request for a fresh run of this test's App. */
    const request = (spec: Partial<AppSpec>, attempt = 1): LaunchRequest => {
      const runUid = randomUUID();
      const launch: LaunchRequest = {
        name: workloadName(runUid),
        runUid,
        runName: uniqueName('run'),
        appName,
        attempt,
        // The runtime's own shell image, never the fixtures' Docker default.
        template: appSpec({ image: options.image, ...spec }),
      };
      launched.push(launch.name);
      return launch;
    };

    const launchShell = async (script: string, spec: Partial<AppSpec> = {}): Promise<LaunchRequest> => {
      const launch = request({ command: ['sh', '-c', script], ...spec });
      await executor.launch(launch);
      return launch;
    };

    const waitForState = <S extends Observation['state']>(workload: string, state: S): Promise<Extract<Observation, { state: S }>> =>
      waitFor(
        `${workload} to be ${state}`,
        async () => {
          const observation = await executor.observe(workload);
          return observation.state === state ? (observation as Extract<Observation, { state: S }>) : undefined;
        },
        { timeoutMs },
      );

    const ownedBy = async (runUid: string) => (await executor.listOwned()).filter((w) => w.runUid === runUid);

    it('answers ping', async () => {
      await executor.ping();
    });

    it('observes a workload that was never launched as absent', async () => {
      assert.deepEqual(await executor.observe(workloadName(randomUUID())), { state: 'absent' });
    });

    it('launches once however often launch is called', async () => {
      const launch = request({ command: ['sh', '-c', 'sleep 30'] });
      await executor.launch(launch);
      await executor.launch(launch);
      await Promise.all([executor.launch(launch), executor.launch(launch)]);
      assert.equal((await ownedBy(launch.runUid)).length, 1);
    });

    it('does not start a finished workload again on a repeated launch', async () => {
      const launch = await launchShell('exit 0');
      const exited = await waitForState(launch.name, 'exited');
      await executor.launch(launch);
      assert.deepEqual(await executor.observe(launch.name), exited);
      assert.equal((await ownedBy(launch.runUid)).length, 1);
    });

    it('observes a workload running, then exited with its exit code and times', async () => {
      const launch = await launchShell('sleep 1; exit 0');
      const running = await waitForState(launch.name, 'running');
      assert.match(running.startedAt, ISO_TIMESTAMP);
      const exited = await waitForState(launch.name, 'exited');
      assert.equal(exited.exitCode, 0);
      assert.equal(exited.oomKilled, false);
      assert.match(exited.finishedAt, ISO_TIMESTAMP);
      assert.equal(exited.startedAt, running.startedAt);
      assert.ok(Date.parse(exited.finishedAt) >= Date.parse(running.startedAt), 'finished before it started');
    });

    it('reports a non-zero exit code', async () => {
      const launch = await launchShell('echo failing >&2; exit 3');
      const exited = await waitForState(launch.name, 'exited');
      assert.equal(exited.exitCode, 3);
      assert.equal(exited.oomKilled, false);
    });

    it('passes the environment and the command with its arguments', async () => {
      const launch = request({
        command: ['sh', '-c', 'echo "$GREETING, $WHO"; echo "[$1]"', 'sh', 'two words'],
        env: { GREETING: 'hello', WHO: 'big world' },
      });
      await executor.launch(launch);
      assert.equal((await waitForState(launch.name, 'exited')).exitCode, 0);
      assert.equal(await readText(await executor.logs(launch.name)), 'hello, big world\n[two words]\n');
    });

    it('keeps stdout and stderr in the logs of an exited workload', async () => {
      const launch = await launchShell('echo to-stdout; echo to-stderr >&2; echo stdout-again');
      await waitForState(launch.name, 'exited');
      const lines = (await readText(await executor.logs(launch.name))).split('\n');
      assert.deepEqual(lines.slice().sort(), ['', 'stdout-again', 'to-stderr', 'to-stdout']);
      assert.ok(lines.indexOf('to-stdout') < lines.indexOf('stdout-again'), 'stdout out of order');
    });

    it('gives only the last lines when asked for a tail', async () => {
      const launch = await launchShell('for n in 1 2 3 4 5; do echo line-$n; done');
      await waitForState(launch.name, 'exited');
      assert.equal(await readText(await executor.logs(launch.name, { tail: 2 })), 'line-4\nline-5\n');
    });

    it('follows logs live until the workload exits', async () => {
      const launch = await launchShell('echo first; sleep 2; echo second');
      await waitForState(launch.name, 'running');
      const stream = await executor.logs(launch.name, { follow: true });
      let text = '';
      stream.on('data', (chunk: string | Buffer) => (text += chunk.toString()));
      const ended = new Promise<void>((resolve, reject) => stream.once('end', resolve).once('error', reject));
      await waitFor('the first line to stream', () => text.includes('first\n'), { timeoutMs });
      assert.equal(text, 'first\n', 'the second line arrived before the workload could have written it');
      assert.equal((await executor.observe(launch.name)).state, 'running');
      await ended;
      assert.equal(text, 'first\nsecond\n');
      assert.equal((await executor.observe(launch.name)).state, 'exited');
    });

    it('ends a follow of an exited workload at once, with its whole log', async () => {
      const launch = await launchShell('echo done');
      await waitForState(launch.name, 'exited');
      assert.equal(await readText(await executor.logs(launch.name, { follow: true })), 'done\n');
    });

    it('stops a sleeping workload: a TERM, then a kill once the grace period is over', async () => {
      const launch = await launchShell('sleep 300');
      await waitForState(launch.name, 'running');
      const started = Date.now();
      await executor.stop(launch.name, 1);
      const exited = await waitForState(launch.name, 'exited');
      assert.notEqual(exited.exitCode, 0);
      assert.ok(Date.now() - started < timeoutMs, 'stop took longer than the grace period allows');
      // Stopping again, or stopping what is not there, changes nothing.
      await executor.stop(launch.name, 1);
      await executor.stop(workloadName(randomUUID()), 1);
    });

    it('removes a workload, after which it is absent; removing again is a no-op', async () => {
      const launch = await launchShell('sleep 30');
      await waitForState(launch.name, 'running');
      await executor.remove(launch.name);
      assert.deepEqual(await executor.observe(launch.name), { state: 'absent' });
      await executor.remove(launch.name);
      await executor.remove(workloadName(randomUUID()));
      assert.equal((await ownedBy(launch.runUid)).length, 0);
    });

    it('lists the workloads it owns with their run, App, attempt and state', async () => {
      const first = await launchShell('exit 4');
      const second = request({ command: ['sh', '-c', 'sleep 30'] }, 2);
      await executor.launch(second);
      await waitForState(first.name, 'exited');
      await waitForState(second.name, 'running');
      const mine = (await executor.listOwned()).filter((w) => w.appName === appName).sort((a, b) => a.attempt - b.attempt);
      assert.deepEqual(
        mine.map(({ name, runUid, appName: app, attempt }) => ({ name, runUid, appName: app, attempt })),
        [
          { name: first.name, runUid: first.runUid, appName, attempt: 1 },
          { name: second.name, runUid: second.runUid, appName, attempt: 2 },
        ],
      );
      assert.equal(mine[0].observation.state, 'exited');
      assert.equal(mine[0].observation.state === 'exited' && mine[0].observation.exitCode, 4);
      assert.equal(mine[1].observation.state, 'running');
    });

    it('reports the start and exit of a workload to a watcher, until aborted', async () => {
      const controller = new AbortController();
      const events: WorkloadEvent[] = [];
      executor.watch((event) => events.push(event), controller.signal);
      try {
        const launch = await launchShell('exit 0');
        await waitFor('a die event', () => events.some((e) => e.runUid === launch.runUid && e.action === 'die'), { timeoutMs });
        assert.ok(events.some((e) => e.runUid === launch.runUid && e.action === 'start'), 'no start event');
      } finally {
        controller.abort();
      }
    });
  });
}
