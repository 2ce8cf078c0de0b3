/**
 * Reading dockerode's errors and turning them into berth's: an engine that is
 * not there (retryable, runs wait), an engine that refused a request (a 4xx:
 * the same request cannot succeed later) and an engine that failed one (a 5xx,
 * or an answer berth cannot read: retryable). Nothing of dockerode's leaves
 * the executor.
 */

import { RuntimeApiError, RuntimeRefusedError, RuntimeUnavailableError } from '../../errors';

/** What dockerode attaches to the errors it raises for HTTP answers and socket failures. */
interface DockerodeError extends Error {
  statusCode?: number;
  code?: string;
  json?: unknown;
}

/** Socket-level failures: the engine is down, the socket is missing or not ours to open, the network dropped. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'EPERM',
  'ENOTSOCK',
  'ETIMEDOUT',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The HTTP status of an engine answer, or undefined for errors that never reached the engine. */
export function statusOf(err: unknown): number | undefined {
  const status = (err as DockerodeError | undefined)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Whether `err` says the engine could not be reached at all (as opposed to an engine answer). */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error) || statusOf(err) !== undefined) return false;
  const code = (err as DockerodeError).code;
  return (code !== undefined && UNREACHABLE_CODES.has(code)) || err.name === 'TimeoutError';
}

/**
 * The engine's own words, without dockerode's `(HTTP code 404) no such
 * container - ` wrapper, so users read what the registry or daemon said.
 */
export function daemonMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const json = (err as DockerodeError).json as { message?: unknown } | null | undefined;
  if (json && typeof json.message === 'string' && json.message) return json.message.trim();
  return err.message.replace(/^\(HTTP code \d+\) .*? - /, '').trim();
}

/** A RuntimeUnavailableError that names the docker host, what berth was doing, and the cause. */
export function unavailable(dockerHost: string, doing: string, cause: unknown): RuntimeUnavailableError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const error = new RuntimeUnavailableError(`docker engine at ${dockerHost} is unreachable (${doing}): ${reason}`);
  error.cause = cause;
  return error;
}

/** An error raised when a call to the engine outlives its deadline. */
export class DockerTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  constructor(doing: string, ms: number) {
    super(`no answer to ${doing} within ${ms} ms`);
  }
}

/**
 * An answer from a reachable engine, as berth's error: a 4xx (a bad
 * parameter, a limit the engine does not allow, a name in use) is a
 * RuntimeRefusedError, since the same request cannot succeed later; a 5xx or
 * anything else is a RuntimeApiError, retried. Both say what berth was doing
 * and what the engine said.
 */
export function engineAnswer(doing: string, cause: unknown): RuntimeRefusedError | RuntimeApiError {
  const status = statusOf(cause);
  const error =
    status !== undefined && status >= 400 && status < 500
      ? new RuntimeRefusedError(`docker engine refused ${doing}: ${daemonMessage(cause)}`)
      : new RuntimeApiError(`docker engine failed ${doing}${status !== undefined ? ` (HTTP ${status})` : ''}: ${daemonMessage(cause)}`);
  error.cause = cause;
  return error;
}
