/**
 * The controller: feeds the work queue from every source of change (store
 * writes, runtime events, timers, a periodic resync, start-up adoption) and
 * hands each key to the one function that handles it. Sources only enqueue;
 * all decisions are the reconciler's.
 */
import { ConflictError, ConfigError, RuntimeUnavailableError } from '../errors';
import { OwnedWorkload, workloadName, WorkloadEvent } from '../executors/executor';
import type { Runtimes } from '../executors/runtimes';
import { isTerminal, RunPhase, RunStatus, RuntimeName } from '../model/types';
import type { Store, StoreEvent } from '../store/store';
import { BerthMetrics, metrics as processMetrics } from '../metrics';
import { createLogger, type Logger } from '../log';
import { WorkQueue } from './queue';
import { LaunchFence, Reconciler, RunKey, runIdOf, runKey, Step } from './reconciler';

export interface ControllerOptions {
  store: Store;
  /** The runtimes this server drives, and which one serves a run. */
  runtimes: Runtimes;
  /**
   * Runs that may be Running at once; the rest wait Pending and start oldest first.
   * @default 4
   */
  maxParallel?: number;
  /**
   * Leave finished workloads in place for inspection, every attempt's.
   * @default false
   */
  keepContainers?: boolean;
  /**
   * Stored log bytes per run, the newest kept.
   * @default 1048576 (1 MiB)
   */
  logLimitBytes?: number;
  /**
   * How long copying one attempt's output into the store may take. A copy
   * that takes longer keeps what it read, noted as incomplete, and the run
   * goes on to its end.
   * @default 60000
   */
  logReadTimeoutMs?: number;
  /**
   * Finished runs kept per App when its spec has no `historyLimit`.
   * @default 100
   */
  historyLimit?: number;
  /**
   * Delay before a failed attempt's retry; doubles with each further attempt.
   * @default 1000
   */
  retryBaseMs?: number;
  /**
   * The longest delay between attempts.
   * @default 300000 (5 minutes)
   */
  retryMaxMs?: number;
  /**
   * How often every non-terminal run is reconciled even when nothing said it changed.
   * @default 30000
   */
  resyncMs?: number;
  /**
   * How often each runtime is pinged for `health()`.
   * @default 5000
   */
  pingMs?: number;
  /**
   * SIGTERM to SIGKILL when stopping a run (cancel, deadline).
   * @default 10
   */
  stopGraceSeconds?: number;
  /**
   * Keys reconciled at once (never one key twice).
   * @default 8
   */
  workers?: number;
  /**
   * The longest wait before a reconcile that keeps failing is tried again (it starts at 5 ms and doubles).
   * @default 300000 (5 minutes)
   */
  errorBackoffMaxMs?: number;
  /**
   * Which of the runtime's berth workloads this controller answers for at
   * start-up adoption; the others are left alone.
   * @default the workloads stamped with this store's id (and unstamped ones)
   */
  ownsWorkload?: (workload: OwnedWorkload) => boolean;
  /**
   * Checked (and recording) each launch, when replicas elect a leader: see LaunchFence.
   * @default none: every launch goes ahead
   */
  fence?: LaunchFence;
  /** @default the process-wide metrics of src/metrics.ts */
  metrics?: BerthMetrics;
  /** @default an `info` logger */
  logger?: Logger;
}

/** What `/readyz` reports. */
export interface ControllerHealth {
  ready: boolean;
  reason?: string;
}

/**
 * Keys of the work queue besides run keys: a resync, a start-up adoption per
 * runtime, a slot check, and a workload no run needs any more (its run was
 * deleted, or it is an attempt the run has moved past), by runtime and name.
 */
type ControllerKey = RunKey | 'resync' | 'admission' | `adopt:${RuntimeName}` | `remove:${RuntimeName}/${string}`;

/** Reconciles Runs in the store onto their runtimes. One instance per process and store. */
export class Controller {
  private readonly store: Store;
  private readonly runtimes: Runtimes;
  private readonly reconciler: Reconciler;
  private readonly metrics: BerthMetrics;
  private readonly log: Logger;
  private readonly maxParallel: number;
  private readonly keepContainers: boolean;
  private readonly resyncMs: number;
  private readonly pingMs: number;
  private readonly stopGraceSeconds: number;
  private readonly workers: number;
  private readonly errorBackoffMaxMs: number;
  private readonly ownsWorkload: (workload: OwnedWorkload) => boolean;

  private queue?: WorkQueue<ControllerKey>;
  /** Run uid → id, for runtime events (which name the uid). Holds the runs not yet finished. */
  private readonly runIds = new Map<string, number>();
  /** Apps whose run just finished: their Pending runs may be waiting for it (concurrencyPolicy Replace). */
  private readonly finishedApps = new Set<number>();
  /** The last ping's answer per runtime: undefined when fine. */
  private readonly pingProblems = new Map<string, string | undefined>();

  constructor(options: ControllerOptions) {
    this.store = options.store;
    this.runtimes = options.runtimes;
    this.maxParallel = whole('maxParallel', options.maxParallel ?? 4, 1);
    this.keepContainers = options.keepContainers ?? false;
    this.resyncMs = whole('resyncMs', options.resyncMs ?? 30_000, 1);
    this.pingMs = whole('pingMs', options.pingMs ?? 5_000, 1);
    this.stopGraceSeconds = whole('stopGraceSeconds', options.stopGraceSeconds ?? 10, 0);
    this.workers = whole('workers', options.workers ?? 8, 1);
    this.errorBackoffMaxMs = whole('errorBackoffMaxMs', options.errorBackoffMaxMs ?? 300_000, 1);
    // Workloads from before stores had ids carry none: they can only be this store's.
    this.ownsWorkload = options.ownsWorkload ?? ((workload) => workload.storeId === undefined || workload.storeId === this.store.id);
    this.metrics = options.metrics ?? processMetrics;
    this.log = options.logger ?? createLogger('info');
    if (this.runtimes.size === 0) throw new ConfigError('runtimes: the controller needs at least one runtime');
    this.reconciler = new Reconciler({
      store: this.store,
      runtimes: this.runtimes,
      maxParallel: this.maxParallel,
      keepContainers: this.keepContainers,
      logLimitBytes: whole('logLimitBytes', options.logLimitBytes ?? 1024 * 1024, 1),
      logReadTimeoutMs: whole('logReadTimeoutMs', options.logReadTimeoutMs ?? 60_000, 1),
      historyLimit: whole('historyLimit', options.historyLimit ?? 100, 0),
      retry: { baseMs: whole('retryBaseMs', options.retryBaseMs ?? 1000, 0), maxMs: whole('retryMaxMs', options.retryMaxMs ?? 300_000, 0) },
      stopGraceSeconds: this.stopGraceSeconds,
      metrics: this.metrics,
      fence: options.fence,
    });
  }

  /** Ready when started and every runtime answered its last ping; otherwise why not. */
  health(): ControllerHealth {
    if (!this.queue) return { ready: false, reason: 'the controller has not started' };
    for (const { runtime } of this.runtimes) {
      if (!this.pingProblems.has(runtime)) return { ready: false, reason: `the ${runtime} runtime has not been checked yet` };
      const problem = this.pingProblems.get(runtime);
      if (problem) return { ready: false, reason: problem };
    }
    return { ready: true };
  }

  /**
   * Runs until `signal` aborts; resolves once the reconciles in flight are
   * done. Work left in the queue is not lost: it is the store's state, which
   * the next start resyncs.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.queue) throw new Error('Controller.start: already started; make a new Controller to start again');
    const queue = new WorkQueue<ControllerKey>({
      handler: (key) => this.handle(key),
      workers: this.workers,
      maxRetryMs: this.errorBackoffMaxMs,
      hooks: {
        depth: (depth) => this.metrics.workqueueDepth.set(depth),
        waited: (seconds) => this.metrics.workqueueLatency.observe(seconds),
        processed: (seconds) => this.metrics.reconcileDuration.observe(seconds),
        failed: (key, err, retryInMs) => this.reportFailure(key, err, retryInMs),
        dropped: (key, err) => {
          this.metrics.reconcileErrors.inc();
          this.log.error({ key, err }, 'reconcile failed in a way retrying cannot fix; the key waits for the next change or resync');
        },
      },
    });
    this.queue = queue;
    const onChange = (event: StoreEvent) => this.onStoreChange(event);
    // Subscribe before the first resync lists the runs, so no change falls between the two.
    this.store.on('change', onChange);
    const watches: Promise<void>[] = [];
    for (const executor of this.runtimes) {
      watches.push(executor.watch((event) => this.onWorkloadEvent(event), signal));
      queue.add(`adopt:${executor.runtime}`);
    }
    queue.add('resync');
    this.metrics.countRunsWith(() => this.countRuns());
    const resync = setInterval(() => queue.add('resync'), this.resyncMs);
    const ping = setInterval(() => void this.pingAll(), this.pingMs);
    void this.pingAll();
    try {
      await queue.start(signal);
    } finally {
      clearInterval(resync);
      clearInterval(ping);
      this.store.off('change', onChange);
      this.metrics.countRunsWith(undefined);
      await Promise.all(watches);
    }
  }

  /** The one place each kind of key is handled. */
  private async handle(key: ControllerKey): Promise<Step> {
    if (runIdOf(key) !== undefined) return this.reconciler.reconcile(key as RunKey);
    if (key === 'resync') return this.resync();
    if (key === 'admission') return this.offerSlots();
    if (key.startsWith('adopt:')) return this.adopt(key.slice('adopt:'.length) as RuntimeName);
    if (key.startsWith('remove:')) return this.removeWorkload(key.slice('remove:'.length));
    throw new Error(`controller: unknown work-queue key "${key}"`);
  }

  private onStoreChange(event: StoreEvent): void {
    if (event.kind !== 'Run') return;
    const run = event.object;
    const queue = this.queue!;
    if (event.type === 'DELETED') {
      this.runIds.delete(run.metadata.uid);
      // A finished run's workload is gone already, unless kept; anything else may still be running:
      // its current attempt, and a launch not yet recorded.
      if (isTerminal(run.status.phase) && !this.keepContainers) return;
      const runtime = this.runtimes.runtimeOf(run);
      const names = new Set([workloadName(run.metadata.uid, run.status.attempts + 1)]);
      if (run.status.containerName) names.add(run.status.containerName);
      if (this.keepContainers) for (const { attempt } of run.status.history ?? []) names.add(workloadName(run.metadata.uid, attempt));
      for (const name of names) queue.add(`remove:${runtime}/${name}`);
      return;
    }
    if (isTerminal(run.status.phase)) {
      // The reconcile that wrote this tidied up already; what is left is to use the slot it freed.
      this.runIds.delete(run.metadata.uid);
      this.finishedApps.add(run.appId);
      queue.add('admission');
      return;
    }
    this.runIds.set(run.metadata.uid, run.id);
    queue.add(runKey(run.id));
  }

  private onWorkloadEvent(event: WorkloadEvent): void {
    const id = this.runIds.get(event.runUid);
    // Unknown: a finished run's workload being removed, or one the next resync or adoption handles.
    if (id !== undefined) this.queue?.add(runKey(id));
  }

  /** Every run not finished is looked at again: the safety net under missed events. */
  private async resync(): Promise<Step> {
    for (const run of await this.store.listActiveRuns()) {
      this.runIds.set(run.metadata.uid, run.id);
      this.queue!.add(runKey(run.id));
    }
    return {};
  }

  /** A slot was freed: offer it to the oldest Pending runs, and to runs of the App that may have waited for the one that ended. */
  private async offerSlots(): Promise<Step> {
    const apps = new Set(this.finishedApps);
    this.finishedApps.clear();
    const now = Date.now();
    const pending = (await this.store.listActiveRunStates()).filter((run) => run.status.phase === RunPhase.Pending);
    const ready = pending.filter((run) => !(run.status.nextAttemptAt && Date.parse(run.status.nextAttemptAt) > now));
    for (const run of ready.slice(0, this.maxParallel)) this.queue!.add(runKey(run.id));
    for (const run of pending) if (apps.has(run.appId)) this.queue!.add(runKey(run.id));
    // The line moved: the runs still waiting learn their new places.
    await this.reconciler.refreshWaitingLine();
    return {};
  }

  /**
   * Start-up adoption: every workload this runtime holds for berth is matched
   * to its run. The current attempt of a run is reconciled (recording exits
   * that happened while berth was down, resuming watches on running ones,
   * tidying finished ones), as is a launch a crash left unrecorded; any other
   * workload (its run deleted, or an attempt the run has moved past) is
   * stopped and removed — unless kept for inspection once finished.
   */
  private async adopt(runtime: RuntimeName): Promise<Step> {
    const executor = this.runtimes.get(runtime)!;
    const owned = (await executor.listOwned()).filter(this.ownsWorkload);
    for (const workload of owned) {
      const run = await this.store.getRunByUid(workload.runUid);
      if (run && isCurrent(workload, run.status)) {
        if (!isTerminal(run.status.phase)) this.runIds.set(run.metadata.uid, run.id);
        this.queue!.add(runKey(run.id));
      } else if (!(run && this.keepContainers && workload.observation.state === 'exited')) {
        this.queue!.add(`remove:${runtime}/${workload.name}`);
      }
    }
    if (owned.length) this.log.info({ runtime, workloads: owned.length }, 'adopted the workloads found at start-up');
    return {};
  }

  /** Stops and removes a workload no run needs (`runtime/name`). */
  private async removeWorkload(target: string): Promise<Step> {
    const slash = target.indexOf('/');
    const executor = this.runtimes.get(target.slice(0, slash) as RuntimeName);
    if (!executor) return {};
    const name = target.slice(slash + 1);
    await executor.stop(name, this.stopGraceSeconds);
    await executor.remove(name);
    return {};
  }

  private async pingAll(): Promise<void> {
    await Promise.all(
      [...this.runtimes].map(async (executor) => {
        const runtime = executor.runtime;
        const before = this.pingProblems.get(runtime);
        try {
          await executor.ping();
          this.pingProblems.set(runtime, undefined);
          // Back after an outage: runs waiting on it need not wait out their error backoff.
          if (before) this.queue?.add('resync');
        } catch (error) {
          const reason = error instanceof RuntimeUnavailableError ? error.message : `the ${runtime} runtime failed its health check: ${String(error)}`;
          if (before !== reason) this.log.warn({ runtime, reason }, 'runtime unavailable');
          this.pingProblems.set(runtime, reason);
          this.metrics.runtimeErrors.inc({ runtime });
        }
      }),
    );
  }

  private async countRuns(): Promise<Record<string, number>> {
    const counted = await this.store.countRunsByPhase();
    // Every phase is reported, with 0 where there are none, so the gauge drops back when a phase empties.
    return Object.fromEntries(Object.values(RunPhase).map((phase) => [phase, counted[phase] ?? 0]));
  }

  private reportFailure(key: ControllerKey, err: unknown, retryInMs: number): void {
    this.metrics.reconcileErrors.inc();
    // A conflict only means another writer was first (the retry reads again); an unreachable
    // runtime is reported once by the health check, not once per run and retry.
    if (err instanceof ConflictError || err instanceof RuntimeUnavailableError) {
      this.log.debug({ key, reason: err.message, retryInMs }, 'reconcile deferred; retrying');
      return;
    }
    this.log.warn({ key, err, retryInMs }, 'reconcile failed; retrying');
  }
}

/**
 * Whether `workload` is the one its run is about: for a run waiting to launch,
 * the next attempt, launched by a pass that ended before recording it (the
 * run's next launch adopts it); otherwise the attempt the run recorded. A
 * waiting run's recorded attempt has failed already: its workload is left over.
 */
function isCurrent(workload: OwnedWorkload, status: RunStatus): boolean {
  if (status.phase === RunPhase.Pending) return !status.cancelRequested && workload.attempt === status.attempts + 1;
  return workload.name === status.containerName;
}

function whole(option: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${option}: must be a whole number of at least ${min}, got ${value}`);
  return value;
}
