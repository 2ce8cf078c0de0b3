/**
 * An Executor with no daemon behind it, for fast controller tests. Each
 * workload is a real local child process running the workload's command
 * (see LocalWorkload), so environment, arguments, exit codes, output order,
 * follow, tail and TERM-then-KILL stops behave for real; what needs a runtime
 * is simulated: a table of known images decides pulls and default commands,
 * memory limits are enforced by sampling, and tests can make the runtime
 * unreachable, fail chosen calls, or lose a workload. It passes the same
 * contract as the real executors (test/unit/memory-executor.test.ts).
 */

import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { ImagePullError, NotFoundError, RuntimeRefusedError, RuntimeUnavailableError } from '../../src/errors';
import {
  WorkloadAction,
  type Executor,
  type LaunchRequest,
  type LogOptions,
  type Observation,
  type OwnedWorkload,
  type WorkloadEvent,
} from '../../src/executors/executor';
import { parseMemoryBytes } from '../../src/model/quantity';
import { ImagePullPolicy, RuntimeName } from '../../src/model/types';
import { TEST_IMAGE } from './fixtures';
import { LocalWorkload } from './local-workload';

/** The Executor methods whose calls `failNext` can make fail. */
export type ExecutorCall = 'ping' | 'launch' | 'observe' | 'stop' | 'logs' | 'remove' | 'listOwned';

export interface MemoryExecutorOptions {
  /**
   * The runtime it stands in for, as the controller's runtime table sees it.
   * @default 'docker'
   */
  runtime?: RuntimeName;
  /**
   * Images it "has", each with its default command (`[]`: none). Any other
   * image fails its launch with ImagePullError.
   * @default { 'berth-test/busybox:latest': [] }
   */
  images?: Record<string, string[]>;
  /**
   * Named in RuntimeUnavailableError messages.
   * @default memory://<a number unique to this process>
   */
  address?: string;
  /**
   * Start unreachable (see `unreachable`).
   * @default false
   */
  unreachable?: boolean;
  /**
   * How often a workload with a memory limit has its memory measured.
   * @default 20
   */
  memorySampleMs?: number;
}

interface InjectedFailure {
  error: Error | (() => Error);
  remaining: number;
  calls?: readonly ExecutorCall[];
}

let instances = 0;

/** An in-memory Executor for tests: local processes as workloads, with outages and failures on demand. */
export class MemoryExecutor implements Executor {
  readonly runtime: RuntimeName;
  readonly address: string;
  /** While true, every call but `watch` throws RuntimeUnavailableError; workloads run on, as containers do when a daemon's socket is gone. */
  unreachable: boolean;
  private readonly images: Map<string, string[]>;
  private readonly memorySampleMs: number;
  private readonly workloads = new Map<string, LocalWorkload>();
  private readonly failures: InjectedFailure[] = [];
  private readonly events = new EventEmitter();

  constructor(options: MemoryExecutorOptions = {}) {
    this.runtime = options.runtime ?? RuntimeName.docker;
    this.address = options.address ?? `memory://${++instances}`;
    this.unreachable = options.unreachable ?? false;
    this.images = new Map(Object.entries(options.images ?? { [TEST_IMAGE]: [] }));
    this.memorySampleMs = options.memorySampleMs ?? 20;
    // Any number of watchers: a controller and the tests looking on.
    this.events.setMaxListeners(0);
  }

  /** Makes `image` available, with `defaultCommand` as its own command. */
  addImage(image: string, defaultCommand: string[] = []): void {
    this.images.set(image, defaultCommand);
  }

  /**
   * Makes the next `times` calls (of the named methods, or of any) throw
   * `error`: an outage (RuntimeUnavailableError), a refusal
   * (RuntimeRefusedError), a failure on the runtime's side (RuntimeApiError).
   * A function makes a fresh error for each call. Injections queue up: the
   * first one that matches a call is the one it uses.
   */
  failNext(error: Error | (() => Error), { times = 1, calls }: { times?: number; calls?: readonly ExecutorCall[] } = {}): void {
    if (!Number.isInteger(times) || times < 1) throw new RangeError(`failNext: times must be a positive integer, got ${times}`);
    this.failures.push({ error, remaining: times, ...(calls ? { calls } : {}) });
  }

  /** Turns a workload into `{state: 'lost', message}`, as an eviction or a lost node would; its processes are killed. */
  lose(name: string, message: string): void {
    const workload = this.workloads.get(name);
    if (!workload) throw new NotFoundError('workload', name);
    workload.lose(message);
  }

  /** The request a workload was launched with, to check what the controller asked for; undefined when absent. */
  requestOf(name: string): LaunchRequest | undefined {
    return this.workloads.get(name)?.request;
  }

  /** Kills every workload's processes and forgets them, without telling watchers: for a test's `after`. */
  async close(): Promise<void> {
    const all = [...this.workloads.values()];
    this.workloads.clear();
    for (const workload of all) workload.dispose();
    await Promise.all(all.map((workload) => workload.ended));
  }

  async ping(): Promise<void> {
    this.enter('ping', 'ping');
  }

  /**
   * Starts the workload's process, unless one of that name exists. A command
   * that cannot be spawned is no error here: it is observed as an exit (127).
   *
   * @throws ImagePullError when the image is not among the known ones.
   * @throws RuntimeRefusedError when there is no command to run, or the memory limit cannot be read.
   */
  async launch(request: LaunchRequest): Promise<void> {
    this.enter('launch', `launching ${request.name}`);
    // Checked and set with no await between, so concurrent launches make one workload.
    if (this.workloads.has(request.name)) return;
    const { image, imagePullPolicy, command, resources } = request.template;
    const imageCommand = this.images.get(image);
    if (imageCommand === undefined) {
      const never = imagePullPolicy === ImagePullPolicy.Never ? ', and imagePullPolicy is Never' : '';
      throw new ImagePullError(image, `image "${image}" is not known to the in-memory runtime at ${this.address}${never}`);
    }
    const run = command.length > 0 ? command : imageCommand;
    if (run.length === 0) {
      throw new RuntimeRefusedError(`in-memory runtime at ${this.address} refused ${request.name}: no command given, and image "${image}" has none`);
    }
    let memoryLimit: number | undefined;
    try {
      memoryLimit = resources.memory ? parseMemoryBytes(resources.memory) : undefined;
    } catch (error) {
      throw new RuntimeRefusedError(`in-memory runtime at ${this.address} refused ${request.name}: ${(error as Error).message}`);
    }
    const workload = new LocalWorkload({
      request,
      command: run,
      memoryLimit,
      memorySampleMs: this.memorySampleMs,
      onAction: (action) => {
        // A workload removed (or closed) since tells no one of its end.
        if (this.workloads.get(request.name) === workload) this.emit(request, action);
      },
    });
    this.workloads.set(request.name, workload);
    this.emit(request, WorkloadAction.Changed);
  }

  async observe(name: string): Promise<Observation> {
    this.enter('observe', `observing ${name}`);
    return this.workloads.get(name)?.observe() ?? { state: 'absent' };
  }

  async stop(name: string, graceSeconds: number): Promise<void> {
    this.enter('stop', `stopping ${name}`);
    await this.workloads.get(name)?.stop(graceSeconds);
  }

  /** @throws NotFoundError when there is no workload of that name. */
  async logs(name: string, options: LogOptions = {}): Promise<Readable> {
    this.enter('logs', `reading the logs of ${name}`);
    const workload = this.workloads.get(name);
    if (!workload) throw new NotFoundError('workload', name);
    return workload.logs(options);
  }

  async remove(name: string): Promise<void> {
    this.enter('remove', `removing ${name}`);
    const workload = this.workloads.get(name);
    if (!workload) return;
    this.workloads.delete(name);
    workload.dispose();
    this.emit(workload.request, WorkloadAction.Removed);
  }

  async listOwned(): Promise<OwnedWorkload[]> {
    this.enter('listOwned', 'listing workloads');
    return [...this.workloads.entries()]
      .map(([name, workload]) => ({ name, ...workload.labels, observation: workload.observe() }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Hears every workload's changes until `signal` aborts, reachable or not (a real watch catches up after an outage). */
  watch(onEvent: (event: WorkloadEvent) => void, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      this.events.on('event', onEvent);
      signal.addEventListener(
        'abort',
        () => {
          this.events.off('event', onEvent);
          resolve();
        },
        { once: true },
      );
    });
  }

  /** Watchers hear of a change just after it, never inside the call that made it. */
  private emit(request: LaunchRequest, action: WorkloadAction): void {
    const event: WorkloadEvent = { runUid: request.runUid, name: request.name, action };
    queueMicrotask(() => this.events.emit('event', event));
  }

  /** The outage and the injected failures, checked at the start of every call. */
  private enter(call: ExecutorCall, doing: string): void {
    if (this.unreachable) throw new RuntimeUnavailableError(`in-memory runtime at ${this.address} is unreachable (${doing})`);
    const index = this.failures.findIndex((failure) => !failure.calls || failure.calls.includes(call));
    if (index < 0) return;
    const failure = this.failures[index];
    if (--failure.remaining === 0) this.failures.splice(index, 1);
    throw typeof failure.error === 'function' ? failure.error() : failure.error;
  }
}
