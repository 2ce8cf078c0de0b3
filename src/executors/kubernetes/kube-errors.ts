/**
 * Reading client-node's errors and turning them into berth's: an API server
 * that cannot be reached or rejects berth's credentials (retryable, runs
 * wait), one that refuses a request (a 4xx: the same request cannot succeed
 * later; a 403 names the permission berth lacks), and one that fails a
 * request (a 5xx, a 429, an answer berth cannot read: retryable). Nothing of
 * client-node's leaves the executor.
 */

import { RuntimeApiError, RuntimeRefusedError, RuntimeUnavailableError } from '../../errors';

/** What client-node 1.x attaches to its errors: `code` (HTTP status) and `body` on ApiException, `statusCode` on watch errors. */
interface ClientError extends Error {
  code?: number | string;
  statusCode?: number;
  body?: unknown;
  /** node-fetch's FetchError: `system` for socket and TLS failures. */
  type?: string;
}

/** A permission berth needs in its namespace, as RBAC spells it. */
export interface Permission {
  verb: string;
  /** `jobs`, `pods`, `pods/log`: resource and, after a slash, subresource. */
  resource: string;
  /** The API group: `batch` for jobs, '' for the core group. */
  group: string;
}

/** `create jobs`, `get pods/log`: how a permission is named in messages and RBAC rules. */
export const permissionName = (permission: Permission): string => `${permission.verb} ${permission.resource}`;

/** The HTTP status of an API server answer, or undefined for errors that never reached it. */
export function statusOf(error: unknown): number | undefined {
  const { code, statusCode } = (error ?? {}) as ClientError;
  if (typeof code === 'number') return code;
  return typeof statusCode === 'number' ? statusCode : undefined;
}

/**
 * Whether `error` says the API server could not be talked to at all: a
 * refused or dropped connection, a TLS failure, a name that does not
 * resolve, or a request that outlived its deadline.
 */
export function isUnreachable(error: unknown): boolean {
  if (!(error instanceof Error) || statusOf(error) !== undefined) return false;
  const { type, name } = error as ClientError;
  // node-fetch wraps every socket-level failure (ECONNREFUSED, ECONNRESET, certificate errors) as a FetchError of type `system`.
  if (name === 'FetchError' && type === 'system') return true;
  if (name === 'AbortError' || name === 'TimeoutError') return true;
  const code = (error as ClientError).code;
  return typeof code === 'string' && /^(E[A-Z]+|ERR_TLS_.*|CERT_.*|UNABLE_TO_.*|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)$/.test(code);
}

/** The API server's own words: the `message` of the Status it answered with, else the error's message. */
export function serverMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let body = (error as ClientError).body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      return text.trim() || error.message;
    }
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  if (typeof message === 'string' && message) return message;
  // ApiException's own message repeats headers and body; its first line is the useful part.
  return error.message.split('\n')[0];
}

/** The `reason` of the Status the API server answered with (`AlreadyExists`, `NotFound`, `Expired`), if any. */
export function statusReason(error: unknown): string | undefined {
  let body = (error as ClientError | undefined)?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      return undefined;
    }
  }
  const reason = (body as { reason?: unknown } | undefined)?.reason;
  return typeof reason === 'string' ? reason : undefined;
}

/** A RuntimeUnavailableError that names the API server, what berth was doing, and the cause. */
export function unavailable(server: string, doing: string, cause: unknown): RuntimeUnavailableError {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  const error = new RuntimeUnavailableError(`Kubernetes API server at ${server} is unreachable (${doing}): ${reason}`);
  error.cause = cause;
  return error;
}

/** Where the error that named the API server came from, for messages. */
export interface CallContext {
  /** The API server's URL. */
  server: string;
  namespace: string;
  /** What berth was doing: `creating Job berth-run-…-1`. */
  doing: string;
  /** The permission the call needs, named when the server answers 403. */
  permission?: Permission;
}

/**
 * Any failure of a call to the API server, as berth's error: unreachable →
 * RuntimeUnavailableError; 401 (credentials rejected) → RuntimeUnavailableError,
 * since a rotated token may fix it and runs should wait, not fail; 403 →
 * RuntimeRefusedError naming the permission berth lacks; 429 and 5xx →
 * RuntimeApiError (retried); other 4xx → RuntimeRefusedError with the
 * server's message. Callers handle the answers they expect (404, 409) first.
 */
export function apiError(context: CallContext, error: unknown): RuntimeUnavailableError | RuntimeRefusedError | RuntimeApiError {
  if (error instanceof RuntimeUnavailableError || error instanceof RuntimeRefusedError || error instanceof RuntimeApiError) return error;
  if (isUnreachable(error)) return unavailable(context.server, context.doing, error);
  const status = statusOf(error);
  const message = serverMessage(error);
  let mapped: RuntimeUnavailableError | RuntimeRefusedError | RuntimeApiError;
  if (status === 401) {
    mapped = new RuntimeUnavailableError(`Kubernetes API server at ${context.server} rejected berth's credentials (${context.doing}): ${message}`);
  } else if (status === 403) {
    const lacking = context.permission
      ? `berth's account lacks "${permissionName(context.permission)}" in namespace ${context.namespace} (see manifests/base/role.yaml)`
      : 'forbidden';
    mapped = new RuntimeRefusedError(`Kubernetes API server refused ${context.doing}: ${lacking}: ${message}`);
  } else if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
    mapped = new RuntimeRefusedError(`Kubernetes API server refused ${context.doing}: ${message}`);
  } else {
    mapped = new RuntimeApiError(`Kubernetes API server failed ${context.doing}${status !== undefined ? ` (HTTP ${status})` : ''}: ${message}`);
  }
  mapped.cause = error;
  return mapped;
}
