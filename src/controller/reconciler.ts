/**
 * The run reconciler: given a run's key, it reads the run from the store and
 * its workload from the executor, both fresh, and takes the one next step
 * toward the run being done. It never trusts the event that woke it and
 * never sleeps; waiting is the queue's job (`requeueAfterMs`).
 */
import { ConflictError, ImagePullError, NotFoundError, RuntimeRefusedError, RuntimeUnavailableError } from '../errors';
import { Executor, Observation, WaitingReason, workloadName } from '../executors/executor';
import type { Runtimes } from '../executors/runtimes';
import { isTerminal, PendingReason, RunPhase, RunReason, RunStatus } from '../model/types';
import type { ActiveRunState, LaunchRecord, Store, StoredRun } from '../store/store';
import type { BerthMetrics } from '../metrics';
import {
  AttemptEnd,
  currentAttempt,
  deadlineOf,
  endOfExit,
  finishAttempt,
  markCancelled,
  markFailed,
  markRunning,
  markSucceeded,
  markWaiting,
  nextAttemptResources,
  attemptMemory,
  requestCancel,
  RetryPolicy,
  sameStatus,
} from './phases';
import { appendAttempt, LogReadTimeoutError, readTail, withIncompleteNote, type OutputTail } from './run-logs';
import type { ProcessResult } from './queue';
import { queuePositionOf, slotMessage, waitingLine } from './waiting-line';

/** A run's work-queue key. */
export type RunKey = `run:${number}`;
export const runKey = (id: number): RunKey => `run:${id}`;
/** The run id in a key, or undefined for keys that are not run keys. */
export function runIdOf(key: string): number | undefined {
  const match = /^run:(\d+)$/.exec(key);
  return match ? Number(match[1]) : undefined;
}

export interface ReconcilerOptions {
  store: Store;
  /** The runtimes this server drives; `executorFor(run)` picks a run's. */
  runtimes: Runtimes;
  /** Runs that may be Running at once; the rest wait Pending, oldest first. */
  maxParallel: number;
  /** Leave finished workloads in place for inspection, every attempt's. */
  keepContainers: boolean;
  /** Stored log bytes per run; the newest are kept. */
  logLimitBytes: number;
  /** How long copying one attempt's output may take; then the run goes on with what was read, noted as incomplete. */
  logReadTimeoutMs: number;
  /** Finished runs kept per App when its spec does not say. */
  historyLimit: number;
  /** Delays between attempts of a run. */
  retry: RetryPolicy;
  /** SIGTERM to SIGKILL, when stopping for a cancel or a deadline. */
  stopGraceSeconds: number;
  metrics?: BerthMetrics;
  /** Asked before every launch when replicas elect a leader; absent, launches are not fenced. */
  fence?: LaunchFence;
}

/**
 * Fencing for replicas that elect a leader: a deposed leader may not know yet
 * that it was deposed, so each launch is first recorded in the store by a
 * transaction that checks this replica's term is still the current one. Only
 * a recorded launch goes ahead; the workload's name is deterministic, so a
 * new leader that finds the record re-issues the same launch, which finds the
 * workload instead of making a second.
 */
export interface LaunchFence {
  /** Records `launch` under this replica's term; false when another term has begun (do not launch). */
  recordLaunch(launch: LaunchRecord): Promise<boolean>;
}

/** Admission says: not yet, because `pendingReason`; Replace first asks `replacing` to stop. */
interface WaitDecision {
  kind: 'wait';
  message: string;
  pendingReason: PendingReason;
  queuePosition?: number;
  replacing: ActiveRunState[];
}

/** What one reconcile asks of the queue: nothing, or to look again after `requeueAfterMs`. */
export type Step = ProcessResult;

/** Reads one run and its workload, and takes one step. See the module comment. */
export class Reconciler {
  /** Runs admitted to a slot whose launch has not been recorded yet: counted as running so parallel workers cannot overfill. */
  private readonly starting = new Set<number>();
  /** Serialises slot decisions within this process. */
  private admission: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ReconcilerOptions) {}

  async reconcile(key: RunKey): Promise<Step> {
    const id = runIdOf(key);
    if (id === undefined) throw new Error(`reconcile: "${key}" is not a run key`);
    const run = await this.options.store.getRun(id);
    // Deleted: the controller's cleanup path removes its workload (the run object is gone from here).
    if (!run) return {};
    const executor = this.options.runtimes.executorFor(run);
    if (isTerminal(run.status.phase)) return executor ? this.tidyFinished(run, executor) : {};
    if (!executor) {
      const runtime = this.options.runtimes.runtimeOf(run);
      if (run.status.cancelRequested) return this.finish(run, undefined, markCancelled(run.status, this.cancelEnd(run)));
      await this.write(
        run,
        markWaiting(
          run.status,
          RunReason.RuntimeUnavailable,
          `no executor for runtime "${runtime}" is configured on this server`,
          PendingReason.RuntimeUnavailable,
        ),
      );
      return {};
    }
    try {
      if (run.status.cancelRequested) return await this.cancel(run, executor);
      if (run.status.phase === RunPhase.Pending) return await this.startPending(run, executor);
      return await this.watchRunning(run, executor);
    } catch (error) {
      if (error instanceof RuntimeUnavailableError && run.status.phase === RunPhase.Pending) {
        // Not the run's fault: it stays Pending, saying why, and the queue retries with backoff.
        await this.write(run, markWaiting(run.status, RunReason.RuntimeUnavailable, error.message, PendingReason.RuntimeUnavailable));
      }
      throw error;
    }
  }

  // ---- steps ----

  private async startPending(run: StoredRun, executor: Executor): Promise<Step> {
    const { template } = run.spec;
    const now = Date.now();
    const deadline = deadlineOf(run.status, template);
    if (deadline !== undefined && now >= deadline) {
      return this.finish(run, executor, markFailed(run.status, this.deadlineEnd(run)));
    }
    const nextAttemptAt = run.status.nextAttemptAt ? Date.parse(run.status.nextAttemptAt) : 0;
    if (nextAttemptAt > now) return { requeueAfterMs: nextAttemptAt - now };

    const decision = await this.admit(run);
    if (decision.kind === 'replaced') {
      await this.write(run, requestCancel(run.status, RunReason.Replaced, decision.message));
      return {};
    }
    if (decision.kind === 'wait') {
      for (const { id } of decision.replacing) {
        const older = await this.options.store.getRun(id);
        if (!older || isTerminal(older.status.phase) || older.status.cancelRequested) continue;
        const asked = await this.options.store.updateRunStatus(
          older,
          requestCancel(older.status, RunReason.Replaced, `replaced by run "${run.metadata.name}"`),
        );
        this.countTransition(older, asked.status);
      }
      await this.write(run, markWaiting(run.status, RunReason.Waiting, decision.message, decision.pendingReason, decision.queuePosition));
      return {};
    }
    // Each attempt has its own workload name, so a launch never meets the previous attempt's workload
    // (which a runtime may still be deleting). Launch is idempotent: a workload left by a crash
    // between this launch and recording it is found by the next pass's launch, never doubled.
    const attempt = run.status.attempts + 1;
    const name = workloadName(run.metadata.uid, attempt);
    // The run as last written: saying it pulls its image writes it.
    let current = run;
    try {
      // Deposed: the new leader's controller owns this run now (and re-issues this very launch if it was recorded).
      if (this.options.fence && !(await this.options.fence.recordLaunch({ runId: run.id, attempt, workload: name }))) return {};
      // More memory after an OOM kill, as spec.retryPolicy.onOOM says; recorded with the attempt.
      const resources = nextAttemptResources(run.status, template);
      // A pull may take minutes: the run says so while it lasts (its slot is taken meanwhile, see `starting`).
      const onPullingImage = async (image: string): Promise<void> => {
        const message = `pulling image "${image}"`;
        current = (await this.write(current, markWaiting(current.status, RunReason.Waiting, message, PendingReason.PullingImage))) ?? current;
      };
      // Taken before the launch: a short workload may have finished by the time launch returns.
      const launchedAt = new Date().toISOString();
      await this.runtime(executor, () =>
        executor.launch({
          name,
          runUid: run.metadata.uid,
          runName: run.metadata.name,
          appName: run.spec.app,
          attempt,
          storeId: this.options.store.id,
          template,
          resources,
          onPullingImage,
        }),
      );
      const running = markRunning(current.status, { attempt, startedAt: launchedAt, containerName: name, runtime: executor.runtime, memory: resources.memory });
      const written = await this.write(current, running, executor, name);
      if (!written) return {};
      const deadline = deadlineOf(written.status, template);
      return deadline === undefined ? {} : { requeueAfterMs: Math.max(0, deadline - Date.now()) };
    } catch (error) {
      // The image cannot be had, or the runtime understood the request and refused it: retrying cannot help.
      if (error instanceof ImagePullError) {
        return this.finish(
          current,
          executor,
          markFailed(current.status, { reason: RunReason.ImagePullFailed, message: error.message, finishedAt: new Date().toISOString() }),
        );
      }
      if (error instanceof RuntimeRefusedError) {
        const message = `the ${executor.runtime} runtime refused to launch the run: ${error.message}`;
        return this.finish(current, executor, markFailed(current.status, { reason: RunReason.LaunchFailed, message, finishedAt: new Date().toISOString() }));
      }
      throw error;
    } finally {
      this.starting.delete(run.id);
    }
  }

  private async watchRunning(run: StoredRun, executor: Executor): Promise<Step> {
    const name = currentWorkload(run);
    const { template } = run.spec;
    const observed = await this.runtime(executor, () => executor.observe(name));
    if (observed.state === 'waiting' && observed.terminal) {
      // It will never start (an image that cannot be pulled, a process the runtime cannot create): fail now, not at the deadline.
      const reason = observed.reason === WaitingReason.ImagePullFailed ? RunReason.ImagePullFailed : RunReason.LaunchFailed;
      const end = { reason, message: observed.message ?? `the workload cannot start (${observed.reason})`, finishedAt: new Date().toISOString() };
      return this.finish(run, executor, markFailed(run.status, end));
    }
    if (observed.state === 'running' || observed.state === 'waiting') {
      const deadline = deadlineOf(run.status, template);
      if (deadline !== undefined && Date.now() >= deadline) {
        const exitCode = await this.stopKeepingLogs(run, executor, observed);
        return this.finish(run, executor, markFailed(run.status, { ...this.deadlineEnd(run), exitCode }));
      }
      // A workload still being created is looked at again soon; a running one at its deadline, or when an event says.
      const untilDeadline = deadline === undefined ? undefined : deadline - Date.now();
      const poll = observed.state === 'waiting' ? 1000 : undefined;
      const requeueAfterMs = [untilDeadline, poll].filter((ms): ms is number => ms !== undefined);
      return requeueAfterMs.length ? { requeueAfterMs: Math.min(...requeueAfterMs) } : {};
    }
    let end: AttemptEnd;
    if (observed.state === 'exited') {
      await this.collectLogs(run, executor, observed);
      end = endOfExit(observed, template, attemptMemory(run.status, template));
    } else {
      const message = observed.state === 'lost' ? observed.message : `workload ${name} disappeared while the run was Running`;
      end = { reason: RunReason.ContainerLost, finishedAt: new Date().toISOString(), message };
    }
    return this.finish(run, executor, finishAttempt(run.status, end, template, this.options.retry, new Date()));
  }

  private async cancel(run: StoredRun, executor: Executor): Promise<Step> {
    if (run.status.phase === RunPhase.Pending) {
      // A launch whose recording lost a race (to this very cancel's write) left the next attempt's
      // workload behind: it goes. With the runtime away, the cancel still holds; start-up adoption
      // removes what is left.
      const launched = workloadName(run.metadata.uid, run.status.attempts + 1);
      try {
        await this.runtime(executor, () => executor.stop(launched, 0));
        await this.runtime(executor, () => executor.remove(launched));
      } catch (error) {
        if (!(error instanceof RuntimeUnavailableError)) throw error;
      }
      return this.finish(run, executor, markCancelled(run.status, this.cancelEnd(run)));
    }
    const observed = await this.runtime(executor, () => executor.observe(currentWorkload(run)));
    if (observed.state === 'exited') {
      // It ended on its own before the stop: a success stays a success; anything else is not retried.
      await this.collectLogs(run, executor, observed);
      const end = endOfExit(observed, run.spec.template, attemptMemory(run.status, run.spec.template));
      if (end.reason === RunReason.Completed) return this.finish(run, executor, markSucceeded(run.status, end));
      return this.finish(run, executor, markCancelled(run.status, { ...this.cancelEnd(run), exitCode: end.exitCode }));
    }
    if (observed.state === 'running' || observed.state === 'waiting') {
      const exitCode = await this.stopKeepingLogs(run, executor, observed);
      return this.finish(run, executor, markCancelled(run.status, { ...this.cancelEnd(run), exitCode }));
    }
    return this.finish(run, executor, markCancelled(run.status, this.cancelEnd(run)));
  }

  /**
   * Stops the current attempt's workload, keeping its output: the logs are
   * copied before the stop, because a runtime may stop by deleting (a
   * Kubernetes pod takes its logs with it), and again after it when the
   * workload is still there, for what it printed while stopping. Returns the
   * exit code when the runtime still reports one.
   */
  private async stopKeepingLogs(run: StoredRun, executor: Executor, observed: Observation): Promise<number | undefined> {
    const name = currentWorkload(run);
    if (observed.state === 'running') await this.collectLogs(run, executor, observed);
    await this.runtime(executor, () => executor.stop(name, this.options.stopGraceSeconds));
    const after = await this.runtime(executor, () => executor.observe(name));
    if (after.state !== 'exited') return undefined;
    await this.collectLogs(run, executor, after);
    return after.exitCode;
  }

  /** A finished run: its workload goes (unless kept) and old history is pruned. Safe to repeat. */
  private async tidyFinished(run: StoredRun, executor: Executor): Promise<Step> {
    const name = run.status.containerName;
    if (name && !this.options.keepContainers) await this.runtime(executor, () => executor.remove(name));
    const keep = run.spec.template.historyLimit ?? this.options.historyLimit;
    await this.options.store.pruneFinishedRuns(run.appId, keep);
    return {};
  }

  // ---- helpers ----

  /**
   * Writes the step's status, then does what follows it: a retry removes the
   * failed attempt's workload (its output is stored already; the next attempt
   * has a name of its own, so nothing waits for the removal) and waits for
   * `nextAttemptAt`; a finished run is tidied.
   */
  private async finish(run: StoredRun, executor: Executor | undefined, next: RunStatus): Promise<Step> {
    const written = await this.write(run, next, executor, run.status.containerName);
    if (!written || !executor) return {};
    if (next.phase === RunPhase.Pending) {
      const failed = run.status.containerName;
      if (failed && !this.options.keepContainers) await this.runtime(executor, () => executor.remove(failed));
      const wait = next.nextAttemptAt ? Date.parse(next.nextAttemptAt) - Date.now() : 0;
      return { requeueAfterMs: Math.max(0, wait) };
    }
    return this.tidyFinished(written, executor);
  }

  /**
   * Writes `next` unless it changes nothing (each write wakes the run again,
   * so writing unchanged statuses would loop). Returns undefined when the run
   * was deleted meanwhile, after removing `workload`, launched for it.
   * A ConflictError propagates: the queue retries at once with a fresh read.
   */
  private async write(run: StoredRun, next: RunStatus, executor?: Executor, workload?: string): Promise<StoredRun | undefined> {
    if (sameStatus(run.status, next)) return run;
    try {
      const written = await this.options.store.updateRunStatus(run, next);
      this.countTransition(run, next);
      return written;
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      if (executor && workload) await this.runtime(executor, () => executor.remove(workload));
      return undefined;
    }
  }

  private countTransition(before: StoredRun, next: RunStatus): void {
    const metrics = this.options.metrics;
    if (!metrics || (before.status.phase === next.phase && before.status.reason === next.reason)) return;
    metrics.runTransitions.inc({ phase: next.phase, reason: next.reason ?? '' });
    if (isTerminal(next.phase) && next.finishedAt) {
      const from = Date.parse(next.startedAt ?? before.metadata.creationTimestamp);
      metrics.runDuration.observe({ phase: next.phase }, Math.max(0, (Date.parse(next.finishedAt) - from) / 1000));
    }
  }

  /**
   * Decides whether a Pending run may launch now. Replace: a newer run of the
   * App replaces this one; older active runs are asked to stop first. Then the
   * global cap: the oldest ready Pending runs take the free slots, in order
   * (./waiting-line.ts); the others learn their place in the line.
   */
  private async admit(run: StoredRun): Promise<{ kind: 'launch' } | { kind: 'replaced'; message: string } | WaitDecision> {
    const decide = async (): Promise<{ kind: 'launch' } | { kind: 'replaced'; message: string } | WaitDecision> => {
      const active = await this.options.store.listActiveRunStates();
      if (run.spec.template.concurrencyPolicy === 'Replace') {
        const siblings = active.filter((other) => other.appId === run.appId && other.id !== run.id);
        const newest = siblings.filter((other) => other.id > run.id).at(-1);
        if (newest) return { kind: 'replaced', message: `replaced by run "${newest.name}"` };
        if (siblings.length) {
          const names = siblings.map((other) => `"${other.name}"`).join(', ');
          return {
            kind: 'wait',
            message: `waiting for ${names} to stop (concurrencyPolicy Replace)`,
            pendingReason: PendingReason.ConcurrencyPolicy,
            replacing: siblings.filter((other) => !other.status.cancelRequested),
          };
        }
      }
      const line = waitingLine(active, this.options.maxParallel, this.starting, Date.now());
      const place = line.ready.findIndex((other) => other.id === run.id);
      if (place < 0 || place >= line.free) {
        const queuePosition = queuePositionOf(line, place);
        const message =
          queuePosition === undefined
            ? `waiting for a free slot: at most ${this.options.maxParallel} runs run at once (--max-parallel)`
            : slotMessage(queuePosition, this.options.maxParallel);
        return { kind: 'wait', message, pendingReason: PendingReason.MaxParallel, queuePosition, replacing: [] };
      }
      this.starting.add(run.id);
      return { kind: 'launch' };
    };
    return this.serialise(decide);
  }

  /**
   * Brings every run waiting for a slot up to date with its place in the line,
   * after the line moved (a run ended or started): one read of the active
   * runs, and a write only for a run whose place changed. Runs waiting for
   * something else (their runtime, their App's concurrencyPolicy, a retry's
   * backoff) keep saying so; runs that may start now are left to their own
   * reconcile, which starts them.
   */
  async refreshWaitingLine(): Promise<void> {
    const { maxParallel } = this.options;
    const changed = await this.serialise(async () => {
      const line = waitingLine(await this.options.store.listActiveRunStates(), maxParallel, this.starting, Date.now());
      const moved: { id: number; queuePosition: number }[] = [];
      line.ready.forEach((run, place) => {
        const queuePosition = queuePositionOf(line, place);
        const { pendingReason } = run.status;
        if (queuePosition === undefined || (pendingReason !== undefined && pendingReason !== PendingReason.MaxParallel)) return;
        if (pendingReason !== PendingReason.MaxParallel || run.status.queuePosition !== queuePosition) moved.push({ id: run.id, queuePosition });
      });
      return moved;
    });
    for (const { id, queuePosition } of changed) {
      const run = await this.options.store.getRun(id);
      // Read again: it may have started, ended or begun waiting for something else since the line was read.
      if (!run || run.status.phase !== RunPhase.Pending || (run.status.pendingReason ?? PendingReason.MaxParallel) !== PendingReason.MaxParallel) continue;
      const next = markWaiting(run.status, RunReason.Waiting, slotMessage(queuePosition, maxParallel), PendingReason.MaxParallel, queuePosition);
      try {
        await this.write(run, next);
      } catch (error) {
        // Written meanwhile: that writer's reconcile reads the line afresh.
        if (!(error instanceof ConflictError)) throw error;
      }
    }
  }

  /** Runs `decide` after the slot decisions before it in this process, so two never interleave. */
  private serialise<T>(decide: () => Promise<T>): Promise<T> {
    const decision = this.admission.then(decide, decide);
    this.admission = decision.catch(() => undefined);
    return decision;
  }

  /**
   * Stores the tail of the current attempt's output (appended after earlier
   * attempts'). Streamed, so memory stays near the limit however much the
   * workload printed. A copy that outlasts its deadline keeps what it read,
   * says so in the stored logs, and lets the run go on to its end: reading
   * the same output again would take as long, and the run's exit matters more.
   */
  private async collectLogs(run: StoredRun, executor: Executor, observed: Observation): Promise<void> {
    if (observed.state === 'absent') return;
    const name = currentWorkload(run);
    const limit = this.options.logLimitBytes;
    let stream: Awaited<ReturnType<Executor['logs']>>;
    try {
      stream = await this.runtime(executor, () => executor.logs(name, { follow: false, limitBytes: limit }));
    } catch (error) {
      if (error instanceof NotFoundError) return;
      throw error;
    }
    let output: OutputTail;
    try {
      output = await readTail(stream, limit, this.options.logReadTimeoutMs);
    } catch (error) {
      if (!(error instanceof LogReadTimeoutError)) throw error;
      this.options.metrics?.logCopiesIncomplete.inc({ runtime: executor.runtime });
      output = withIncompleteNote(error.partial, `${error.message} (workload ${name})`);
    }
    const attempt = Math.max(1, currentAttempt(run.status)?.attempt ?? run.status.attempts);
    const previous = attempt > 1 ? await this.options.store.getLogs(run.id) : null;
    await this.options.store.setLogs(run.id, appendAttempt(previous, attempt, output, limit));
  }

  private deadlineEnd(run: StoredRun): AttemptEnd {
    return {
      reason: RunReason.DeadlineExceeded,
      finishedAt: new Date().toISOString(),
      message: `the run took longer than its timeoutSeconds (${run.spec.template.timeoutSeconds})`,
    };
  }

  private cancelEnd(run: StoredRun): AttemptEnd {
    const asked = run.status.cancelRequested;
    return { reason: asked?.reason ?? RunReason.Cancelled, message: asked?.message, finishedAt: new Date().toISOString() };
  }

  /** Calls the runtime, counting its failures; the image and the workload being absent are answers, not failures. */
  private async runtime<T>(executor: Executor, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof ImagePullError || error instanceof NotFoundError || error instanceof ConflictError || error instanceof RuntimeRefusedError)) {
        this.options.metrics?.runtimeErrors.inc({ runtime: executor.runtime });
      }
      throw error;
    }
  }
}

/** The current attempt's workload: recorded at its launch (runs launched before names were per attempt carry the old name). */
function currentWorkload(run: StoredRun): string {
  return run.status.containerName ?? workloadName(run.metadata.uid, Math.max(1, run.status.attempts));
}
