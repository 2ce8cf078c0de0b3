/**
 * The behaviour every Executor must show, whatever runtime is behind it.
 * Each implementation's test file calls `executorContract` with a factory;
 * the suite speaks only the Executor interface and a shell image, so it runs
 * unchanged against Docker, Kubernetes and the in-memory test double. Where
 * runtimes may rightly differ (Kubernetes stops by deleting, and reports some
 * failures as a terminal wait where Docker reports an exit), a test accepts
 * each allowed outcome and nothing else.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ImagePullError, NotFoundError, RuntimeUnavailableError } from '../../src/errors';
import {
  WaitingReason,
  WorkloadAction,
  workloadName,
  type Executor,
  type LaunchRequest,
  type Observation,
  type WorkloadEvent,
} from '../../src/executors/executor';
import type { AppSpec } from '../../src/model/types';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

export interface ExecutorContractOptions {
  /** An image with `/bin/sh` and the usual applets (echo, sleep, head, tr, exit codes), and no command of its own. */
  image: string;
  /** An image whose own command (CMD) writes `output`, exactly, and exits 0. */
  defaultCommandImage: { image: string; output: string };
  /** An image reference the runtime cannot pull. */
  missingImage: string;
  /** An executor of the same kind pointed at a runtime that is not there. */
  makeUnreachable: () => Executor | Promise<Executor>;
  /** When given, every RuntimeUnavailableError of the unreachable executor must name it (the socket, the URL). */
  unreachableAddress?: string;
  /**
   * How long a workload may take to reach a state.
   * @default 20_000
   */
  timeoutMs?: number;
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

type Exited = Extract<Observation, { state: 'exited' }>;
type Waiting = Extract<Observation, { state: 'waiting' }>;

/** Reads a log stream to its end, as text. */
export async function readText(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return text;
}

/** `promise`, or a failure naming `what` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the Executor contract against the executors `makeExecutor` returns (one per test). */
export function executorContract(name: string, makeExecutor: () => Executor | Promise<Executor>, options: ExecutorContractOptions): void {
  const timeoutMs = options.timeoutMs ?? 20_000;

  describe(`Executor contract: ${name}`, function () {
    this.timeout(timeoutMs * 2);

    let executor: Executor;
    let appName: string;
    let storeId: string;
    let launched: string[];

    beforeEach(async () => {
      executor = await makeExecutor();
      appName = uniqueName('contract');
      // A store of its own, so that controllers sharing the runtime leave these workloads alone.
      storeId = uniqueName('store');
      launched = [];
    });

    afterEach(async () => {
      // Whatever the test left behind, found the way the controller finds it: by berth's labels.
      const owned = await executor.listOwned();
      const mine = new Set([...launched, ...owned.filter((w) => w.appName === appName).map((w) => w.name)]);
      await Promise.all([...mine].map((workload) => executor.remove(workload)));
    });

    /** A launch request for a run of this test's App: a fresh run unless `runUid` names one. */
    const request = (spec: Partial<AppSpec>, { attempt = 1, runUid = randomUUID() }: { attempt?: number; runUid?: string } = {}): LaunchRequest => {
      const launch: LaunchRequest = {
        name: workloadName(runUid, attempt),
        runUid,
        runName: uniqueName('run'),
        appName,
        attempt,
        storeId,
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

    /** Waits until the workload has ended one way or another: exited, or waiting on something that will never come. */
    const waitForEnd = (workload: string): Promise<Exited | Waiting> =>
      waitFor(
        `${workload} to exit or wait for good`,
        async () => {
          const observation = await executor.observe(workload);
          return observation.state === 'exited' || (observation.state === 'waiting' && observation.terminal) ? observation : undefined;
        },
        { timeoutMs },
      );

    /** Waits until the workload has written `text` (the script's sign that it is ready for what the test does next). */
    const waitForOutput = (workload: string, text: string): Promise<string> =>
      waitFor(
        `${workload} to write ${JSON.stringify(text)}`,
        async () => {
          const output = await readText(await executor.logs(workload));
          return output.includes(text) ? output : undefined;
        },
        { timeoutMs },
      );

    const ownedBy = async (runUid: string) => (await executor.listOwned()).filter((w) => w.runUid === runUid);

    it('answers ping', async () => {
      await executor.ping();
    });

    it('observes a workload that was never launched as absent', async () => {
      assert.deepEqual(await executor.observe(workloadName(randomUUID(), 1)), { state: 'absent' });
    });

    describe('launch', () => {
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

      it('gives each attempt of a run its own workload', async () => {
        const runUid = randomUUID();
        const first = request({ command: ['sh', '-c', 'echo first; exit 1'] }, { runUid, attempt: 1 });
        const second = request({ command: ['sh', '-c', 'echo second'] }, { runUid, attempt: 2 });
        assert.notEqual(first.name, second.name);
        await executor.launch(first);
        assert.equal((await waitForState(first.name, 'exited')).exitCode, 1);
        await executor.launch(second);
        assert.equal((await waitForState(second.name, 'exited')).exitCode, 0);
        // The retry did not touch the attempt before it.
        assert.equal((await executor.observe(first.name)).state, 'exited');
        assert.equal(await readText(await executor.logs(first.name)), 'first\n');
        assert.equal(await readText(await executor.logs(second.name)), 'second\n');
        const owned = (await ownedBy(runUid)).sort((a, b) => a.attempt - b.attempt);
        assert.deepEqual(
          owned.map((w) => ({ name: w.name, attempt: w.attempt })),
          [
            { name: first.name, attempt: 1 },
            { name: second.name, attempt: 2 },
          ],
        );
      });

      it('launches the next attempt while the previous one is still being removed', async () => {
        const runUid = randomUUID();
        const first = request({ command: ['sh', '-c', 'sleep 30'] }, { runUid, attempt: 1 });
        await executor.launch(first);
        await waitForState(first.name, 'running');
        const removing = executor.remove(first.name);
        const second = request({ command: ['sh', '-c', 'echo second'] }, { runUid, attempt: 2 });
        await executor.launch(second);
        await removing;
        assert.equal((await waitForState(second.name, 'exited')).exitCode, 0);
        assert.equal(await readText(await executor.logs(second.name)), 'second\n');
        await waitForState(first.name, 'absent');
      });

      it('reports a command that cannot start as an exit or a terminal wait, with the reason, never as a launch error', async () => {
        const launch = request({ command: ['/no/such/binary'] });
        await executor.launch(launch);
        const ended = await waitForEnd(launch.name);
        if (ended.state === 'exited') {
          assert.notEqual(ended.exitCode, 0);
        } else {
          assert.equal(ended.reason, WaitingReason.LaunchFailed);
        }
        assert.match(ended.message ?? '', /\/no\/such\/binary/);
        // Launching it again is no error either, and changes nothing.
        await executor.launch(launch);
        assert.equal((await ownedBy(launch.runUid)).length, 1);
      });
    });

    describe('observe', () => {
      it('observes a workload running, then exited with its exit code and times', async () => {
        // Long enough to be seen running: a kubelet may report a one-second container only once it has ended.
        const launch = await launchShell('sleep 3; exit 0');
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
    });

    describe('images', () => {
      it("runs the image's own command when the command is empty", async () => {
        const launch = request({ image: options.defaultCommandImage.image, command: [] });
        await executor.launch(launch);
        assert.equal((await waitForState(launch.name, 'exited')).exitCode, 0);
        assert.equal(await readText(await executor.logs(launch.name)), options.defaultCommandImage.output);
      });

      it('fails a missing image: ImagePullError from launch, or a terminal ImagePullFailed wait naming it', async () => {
        const image = options.missingImage;
        const launch = request({ image, command: ['sh', '-c', 'exit 0'] });
        try {
          await executor.launch(launch);
        } catch (error) {
          assert.ok(error instanceof ImagePullError, `launch threw ${String(error)}, not an ImagePullError`);
          assert.equal(error.image, image);
          assert.equal(error.retryable, false);
          assert.ok(error.message.includes(image), `"${error.message}" does not name the image`);
          return;
        }
        const ended = await waitForEnd(launch.name);
        assert.equal(ended.state, 'waiting', `a workload of a missing image was observed ${JSON.stringify(ended)}`);
        assert.equal((ended as Waiting).reason, WaitingReason.ImagePullFailed);
        assert.ok(ended.message?.includes(image), `"${ended.message}" does not name the image`);
      });
    });

    describe('resources', () => {
      it('lets a workload within its memory limit complete', async () => {
        const launch = await launchShell('x=$(head -c 4m /dev/zero | tr "\\0" a); echo ${#x}', { resources: { memory: '64Mi' } });
        const exited = await waitForState(launch.name, 'exited');
        assert.deepEqual({ exitCode: exited.exitCode, oomKilled: exited.oomKilled }, { exitCode: 0, oomKilled: false });
        assert.equal(await readText(await executor.logs(launch.name)), `${4 * 1024 * 1024}\n`);
      });

      it('kills a workload over its memory limit and reports the OOM kill', async () => {
        // Holding 64 MiB in a shell variable, four times the limit.
        const launch = await launchShell('x=$(head -c 64m /dev/zero | tr "\\0" a); echo ${#x}', { resources: { memory: '16Mi' } });
        const exited = await waitForState(launch.name, 'exited');
        // Not the exit code: on Kubernetes the OOM killer may end a child, and the shell exit 0.
        assert.equal(exited.oomKilled, true);
      });
    });

    describe('environment and command', () => {
      it('passes the environment and the command with its arguments', async () => {
        const launch = request({
          command: ['sh', '-c', 'echo "$GREETING, $WHO"; echo "[$1]"', 'sh', 'two words'],
          env: { GREETING: 'hello', WHO: 'big world' },
        });
        await executor.launch(launch);
        assert.equal((await waitForState(launch.name, 'exited')).exitCode, 0);
        assert.equal(await readText(await executor.logs(launch.name)), 'hello, big world\n[two words]\n');
      });
    });

    describe('logs', () => {
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
        await within(ended, timeoutMs, 'the followed log to end');
        assert.equal(text, 'first\nsecond\n');
        assert.equal((await executor.observe(launch.name)).state, 'exited');
      });

      it('ends a follow of an exited workload at once, with its whole log', async () => {
        const launch = await launchShell('echo done');
        await waitForState(launch.name, 'exited');
        assert.equal(await within(readText(await executor.logs(launch.name, { follow: true })), timeoutMs, 'the followed log to end'), 'done\n');
      });

      it('refuses the logs of a workload that does not exist with NotFoundError', async () => {
        const workload = workloadName(randomUUID(), 1);
        await assert.rejects(executor.logs(workload), (error: unknown) => {
          assert.ok(error instanceof NotFoundError, `logs threw ${String(error)}, not a NotFoundError`);
          assert.ok(error.message.includes(workload), `"${error.message}" does not name the workload`);
          return true;
        });
      });
    });

    describe('stop', () => {
      /** After a stop, a workload has ended: exited, or (on runtimes that stop by deleting) absent. Never running. */
      const stoppedAs = async (workload: string): Promise<Exited | { state: 'absent' }> => {
        const observation = await executor.observe(workload);
        assert.ok(observation.state === 'exited' || observation.state === 'absent', `after stop, ${workload} is ${JSON.stringify(observation)}`);
        return observation;
      };

      it('sends TERM and lets the workload end on its own within the grace period', async () => {
        const launch = await launchShell('trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done');
        await waitForOutput(launch.name, 'ready\n');
        await executor.stop(launch.name, 10);
        const stopped = await stoppedAs(launch.name);
        if (stopped.state === 'exited') assert.equal(stopped.exitCode, 7);
        // Stopping again, or stopping what is not there, changes nothing.
        await executor.stop(launch.name, 1);
        await executor.stop(workloadName(randomUUID(), 1), 1);
        assert.deepEqual(await executor.observe(launch.name), stopped);
      });

      it('kills a workload that ignores TERM once the grace period is over', async () => {
        const launch = await launchShell('trap "" TERM; echo ready; while :; do sleep 0.1; done');
        await waitForOutput(launch.name, 'ready\n');
        const started = Date.now();
        await executor.stop(launch.name, 1);
        const took = Date.now() - started;
        assert.ok(took >= 900, `stop returned after ${took} ms, before the 1 s grace period was over`);
        assert.ok(took < timeoutMs, `stop took ${took} ms`);
        const stopped = await stoppedAs(launch.name);
        if (stopped.state === 'exited') assert.notEqual(stopped.exitCode, 0);
      });
    });

    it('removes a workload, after which it is absent; removing again is a no-op', async () => {
      const launch = await launchShell('sleep 30');
      await waitForState(launch.name, 'running');
      await executor.remove(launch.name);
      // Removal may finish in the background (Kubernetes), but it does finish.
      await waitForState(launch.name, 'absent');
      await executor.remove(launch.name);
      await executor.remove(workloadName(randomUUID(), 1));
      await waitFor('the workload to leave the owned list', async () => (await ownedBy(launch.runUid)).length === 0, { timeoutMs });
    });

    it('lists the workloads it owns with their run, App, attempt, store and state', async () => {
      const first = await launchShell('exit 4');
      const second = request({ command: ['sh', '-c', 'sleep 30'] }, { attempt: 2 });
      await executor.launch(second);
      await waitForState(first.name, 'exited');
      await waitForState(second.name, 'running');
      const mine = (await executor.listOwned()).filter((w) => w.appName === appName).sort((a, b) => a.attempt - b.attempt);
      assert.deepEqual(
        mine.map(({ name: workload, runUid, appName: app, attempt, storeId: store }) => ({ name: workload, runUid, appName: app, attempt, storeId: store })),
        [
          { name: first.name, runUid: first.runUid, appName, attempt: 1, storeId },
          { name: second.name, runUid: second.runUid, appName, attempt: 2, storeId },
        ],
      );
      assert.equal(mine[0].observation.state, 'exited');
      assert.equal(mine[0].observation.state === 'exited' && mine[0].observation.exitCode, 4);
      assert.equal(mine[1].observation.state, 'running');
    });

    it('tells a watcher when a workload starts, exits and is removed, and resolves once aborted', async () => {
      const controller = new AbortController();
      const events: WorkloadEvent[] = [];
      const watching = executor.watch((event) => events.push(event), controller.signal);
      try {
        const launch = await launchShell('sleep 1; exit 0');
        const actionsOf = (): WorkloadAction[] => events.filter((e) => e.name === launch.name).map((e) => e.action);
        await waitFor('an exited event', () => actionsOf().includes(WorkloadAction.Exited), { timeoutMs });
        await executor.remove(launch.name);
        await waitFor('a removed event', () => actionsOf().includes(WorkloadAction.Removed), { timeoutMs });
        const actions = actionsOf();
        assert.ok(actions.indexOf(WorkloadAction.Started) >= 0, `no started event among ${actions.join(', ')}`);
        assert.ok(actions.indexOf(WorkloadAction.Started) < actions.indexOf(WorkloadAction.Exited), `out of order: ${actions.join(', ')}`);
        const known = new Set<string>(Object.values(WorkloadAction));
        for (const event of events.filter((e) => e.name === launch.name)) {
          assert.equal(event.runUid, launch.runUid);
          assert.ok(known.has(event.action), `unknown action ${event.action}`);
        }
      } finally {
        controller.abort();
      }
      assert.equal(await within(watching, timeoutMs, 'the watch to resolve once aborted'), undefined);
    });

    it('reports an unreachable runtime with RuntimeUnavailableError, and keeps a watch waiting until aborted', async () => {
      const offline = await options.makeUnreachable();
      const controller = new AbortController();
      const events: WorkloadEvent[] = [];
      let watchEnded = false;
      const watching = offline.watch((event) => events.push(event), controller.signal).finally(() => (watchEnded = true));
      try {
        const unavailable = (error: unknown): boolean => {
          assert.ok(error instanceof RuntimeUnavailableError, `threw ${String(error)}, not a RuntimeUnavailableError`);
          assert.equal(error.retryable, true);
          if (options.unreachableAddress) {
            assert.ok(error.message.includes(options.unreachableAddress), `"${error.message}" does not name ${options.unreachableAddress}`);
          }
          return true;
        };
        await assert.rejects(offline.ping(), unavailable);
        await assert.rejects(offline.launch(request({ command: ['sh', '-c', 'exit 0'] })), unavailable);
        await assert.rejects(offline.observe(workloadName(randomUUID(), 1)), unavailable);
        await assert.rejects(offline.listOwned(), unavailable);
        assert.equal(watchEnded, false, 'the watch gave up on an unreachable runtime instead of waiting for it');
      } finally {
        controller.abort();
      }
      await within(watching, timeoutMs, 'the watch to resolve once aborted');
      assert.deepEqual(events, []);
    });
  });
}
