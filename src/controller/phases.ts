/**
 * The run state machine: every change of a run's phase is one of the named
 * transitions here, each returning a new RunStatus (never mutating its input).
 * The retry policy lives in `finishAttempt` and nowhere else.
 *
 *   Pending → Running → Succeeded | Failed | Cancelled
 *                  ↘ Pending (a failed attempt with retries left, after a backoff)
 */
import { AppSpec, PendingReason, Resources, RunAttempt, RunPhase, RunReason, RunStatus, RuntimeName } from '../model/types';
import type { Observation } from '../executors/executor';
import { memoryQuantity, parseMemoryBytes } from '../model/quantity';
import { exitCodeRetries, grownMemoryBytes } from '../model/retry-policy';

/** How an attempt (or a run that never got one) ended. */
export interface AttemptEnd {
  reason: RunReason;
  finishedAt: string;
  exitCode?: number;
  message?: string;
}

/** Delays between attempts: `baseMs` doubling per failed attempt, at most `maxMs`. */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
}

/** Reasons whose attempt may be launched again while `template.retries` allows. */
const RETRYABLE_REASONS: readonly RunReason[] = [RunReason.Error, RunReason.OOMKilled, RunReason.ContainerLost];

/**
 * Stays Pending, saying why it has not started (a full slot, an unreachable
 * runtime, a run being replaced): `pending` is the machine-readable why
 * (`status.pendingReason`), `queuePosition` its place when waiting for a slot.
 */
export function markWaiting(status: RunStatus, reason: RunReason, message: string, pending: PendingReason, queuePosition?: number): RunStatus {
  return { ...status, phase: RunPhase.Pending, reason, message, pendingReason: pending, pendingMessage: message, queuePosition };
}

/** What a run no longer waiting carries of its wait: nothing. */
const NOT_WAITING = { pendingReason: undefined, pendingMessage: undefined, queuePosition: undefined } as const;

/** A workload was launched for attempt `attempt`. The run's startedAt is its first attempt's. */
export function markRunning(
  status: RunStatus,
  launch: { attempt: number; startedAt: string; containerName: string; runtime: RuntimeName; memory?: string },
): RunStatus {
  const opened: RunAttempt = { attempt: launch.attempt, startedAt: launch.startedAt, ...(launch.memory !== undefined ? { memory: launch.memory } : {}) };
  const history: RunAttempt[] = [...(status.history ?? []), opened];
  return {
    ...status,
    ...NOT_WAITING,
    phase: RunPhase.Running,
    reason: undefined,
    message: undefined,
    exitCode: undefined,
    nextAttemptAt: undefined,
    attempts: launch.attempt,
    startedAt: status.startedAt ?? launch.startedAt,
    containerName: launch.containerName,
    runtime: launch.runtime,
    history,
  };
}

export function markSucceeded(status: RunStatus, end: AttemptEnd): RunStatus {
  return finish(status, RunPhase.Succeeded, end);
}

export function markFailed(status: RunStatus, end: AttemptEnd): RunStatus {
  return finish(status, RunPhase.Failed, end);
}

export function markCancelled(status: RunStatus, end: AttemptEnd): RunStatus {
  return finish(status, RunPhase.Cancelled, end);
}

/** The attempt failed and another is allowed: back to Pending until `nextAttemptAt`. */
export function scheduleRetry(status: RunStatus, end: AttemptEnd, nextAttemptAt: string, nextMemory?: string): RunStatus {
  const more = nextMemory !== undefined ? ` with memory ${nextMemory}` : '';
  const message = `attempt ${status.attempts} failed (${end.message ?? end.reason}); next attempt at ${nextAttemptAt}${more}`;
  return {
    ...status,
    phase: RunPhase.Pending,
    reason: end.reason,
    message,
    pendingReason: PendingReason.RetryBackoff,
    pendingMessage: message,
    queuePosition: undefined,
    exitCode: end.exitCode,
    nextAttemptAt,
    history: closeAttempt(status, end),
  };
}

/** Asks a run to stop; the reconciler carries it out. A no-op on a run already asked. */
export function requestCancel(status: RunStatus, reason: RunReason, message: string): RunStatus {
  if (status.cancelRequested) return status;
  return { ...status, cancelRequested: { reason, message } };
}

/**
 * The retry policy: the current attempt ended with `end`. Completed → Succeeded;
 * a retryable failure with retries left (`template.retries`, like backoffLimit)
 * → Pending after the backoff (`template.retryPolicy.backoff`, else the server's
 * `policy`); otherwise Failed. `retryPolicy.exitCodes` narrows which exits with
 * an error are retryable; `retries` stays the limit either way. With
 * `retryPolicy.onOOM`, an OOM kill is retried with more memory (see
 * `nextAttemptResources`), and not at all once the attempt had `maxMemory`.
 */
export function finishAttempt(status: RunStatus, end: AttemptEnd, template: AppSpec, policy: RetryPolicy, now: Date): RunStatus {
  if (end.reason === RunReason.Completed) return markSucceeded(status, end);
  const launchesAllowed = 1 + Math.max(0, template.retries);
  const excluded = end.reason === RunReason.Error && !exitCodeRetries(template.retryPolicy?.exitCodes, end.exitCode);
  const onOOM = template.retryPolicy?.onOOM;
  const oomMemory = end.reason === RunReason.OOMKilled && onOOM ? attemptMemory(status, template) : undefined;
  const grown = oomMemory !== undefined && onOOM ? grownMemoryBytes(parseMemoryBytes(oomMemory), onOOM) : undefined;
  const atMaxMemory = oomMemory !== undefined && grown === undefined;
  if (RETRYABLE_REASONS.includes(end.reason) && !excluded && !atMaxMemory && status.attempts < launchesAllowed) {
    const next = new Date(now.getTime() + retryDelayMs(status.attempts, backoffOf(template, policy)));
    return scheduleRetry(status, end, next.toISOString(), grown !== undefined ? memoryQuantity(grown) : undefined);
  }
  const failure = end.message ?? `exited with code ${end.exitCode}`;
  const message =
    excluded && status.attempts < launchesAllowed
      ? `${failure}; not retried: exit code ${end.exitCode} is excluded by spec.retryPolicy.exitCodes`
      : atMaxMemory && status.attempts < launchesAllowed
        ? `${failure}; not retried: attempt ${status.attempts} already had spec.retryPolicy.onOOM.maxMemory (${onOOM?.maxMemory})`
        : status.attempts > 1 && end.message
          ? `${end.message} (attempt ${status.attempts} of ${launchesAllowed})`
          : end.message;
  return markFailed(status, { ...end, message });
}

/**
 * The limits of the next attempt: the App's, except that under
 * `retryPolicy.onOOM` the memory follows the attempts before it: the last
 * attempt's limit, grown by the factor (at most `maxMemory`) when that
 * attempt was OOM-killed. Decided here, from the run's history, so a
 * restarted controller launches the same limit.
 */
export function nextAttemptResources(status: RunStatus, template: AppSpec): Resources {
  const onOOM = template.retryPolicy?.onOOM;
  const last = status.history?.at(-1);
  if (!onOOM || !last?.memory) return template.resources;
  const bytes = parseMemoryBytes(last.memory);
  const memory = last.reason === RunReason.OOMKilled ? (grownMemoryBytes(bytes, onOOM) ?? bytes) : bytes;
  return { ...template.resources, memory: memoryQuantity(memory) };
}

/** The memory limit the current attempt was launched with (recorded in its history), else the App's. */
export function attemptMemory(status: RunStatus, template: AppSpec): string | undefined {
  return currentAttempt(status)?.memory ?? template.resources.memory;
}

/** The App's own backoff where it sets one, the server's otherwise. */
export function backoffOf(template: AppSpec, policy: RetryPolicy): RetryPolicy {
  const own = template.retryPolicy?.backoff;
  return {
    baseMs: own?.baseSeconds !== undefined ? own.baseSeconds * 1000 : policy.baseMs,
    maxMs: own?.maxSeconds !== undefined ? own.maxSeconds * 1000 : policy.maxMs,
  };
}

/** The delay before attempt `failedAttempts + 1`. */
export function retryDelayMs(failedAttempts: number, policy: RetryPolicy): number {
  return Math.min(policy.baseMs * 2 ** Math.max(0, failedAttempts - 1), policy.maxMs);
}

/**
 * How an exited workload's attempt ended: Completed on exit 0, OOMKilled when
 * the kernel killed it (naming `memory`, the attempt's limit), Error otherwise.
 */
export function endOfExit(observation: Extract<Observation, { state: 'exited' }>, template: AppSpec, memory = template.resources.memory): AttemptEnd {
  const { exitCode, finishedAt } = observation;
  if (observation.oomKilled) {
    const limit = memory ? ` (${memory})` : '';
    return { reason: RunReason.OOMKilled, exitCode, finishedAt, message: `killed for exceeding its memory limit${limit}` };
  }
  if (exitCode === 0) return { reason: RunReason.Completed, exitCode, finishedAt };
  return { reason: RunReason.Error, exitCode, finishedAt, message: observation.message ?? `exited with code ${exitCode}` };
}

/** When the run must be stopped: `timeoutSeconds` after its first attempt started (like activeDeadlineSeconds). */
export function deadlineOf(status: RunStatus, template: AppSpec): number | undefined {
  if (template.timeoutSeconds === undefined || !status.startedAt) return undefined;
  return Date.parse(status.startedAt) + template.timeoutSeconds * 1000;
}

/** The attempt recorded for the current launch, if it is still open. */
export function currentAttempt(status: RunStatus): RunAttempt | undefined {
  const last = status.history?.at(-1);
  return last && last.attempt === status.attempts ? last : undefined;
}

/** Whether writing `next` would change nothing, so the reconciler can skip the write (and the event it causes). */
export function sameStatus(a: RunStatus, b: RunStatus): boolean {
  return canonical(a) === canonical(b);
}

function finish(status: RunStatus, phase: RunPhase, end: AttemptEnd): RunStatus {
  return {
    ...status,
    ...NOT_WAITING,
    phase,
    reason: end.reason,
    message: end.message,
    exitCode: end.exitCode ?? status.exitCode,
    finishedAt: end.finishedAt,
    nextAttemptAt: undefined,
    history: closeAttempt(status, end),
  };
}

/** Records the end of the current attempt in history; a run that ends with no attempt in flight adds nothing. */
function closeAttempt(status: RunStatus, end: AttemptEnd): RunAttempt[] | undefined {
  const history = status.history;
  const open = currentAttempt(status);
  if (!history || !open || open.finishedAt) return history;
  const closed: RunAttempt = { ...open, finishedAt: end.finishedAt, exitCode: end.exitCode, reason: end.reason, message: end.message };
  return [...history.slice(0, -1), closed];
}

/** JSON with sorted keys and no undefined fields: a status read back from the store compares equal to the one written. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : 1))) : v,
  );
}
