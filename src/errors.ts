/**
 * berth's error classes. Each carries what a user needs to act on it (the
 * field, the object, the file) and whether retrying could help; the API maps
 * them to HTTP status and JSON in one place (src/api/errors.ts).
 */

export interface FieldProblem {
  /** A dotted path into the input, e.g. `spec.env.WHO` or `metadata.name`. */
  field: string;
  reason: string;
  /** Where in a YAML document the problem is, when known (1-based). */
  line?: number;
  column?: number;
}

export abstract class BerthError extends Error {
  /** HTTP status the API answers with. */
  abstract readonly status: number;
  /** Short machine-readable name, the `error` field of an API answer. */
  abstract readonly code: string;
  /** Whether doing the same thing again later could succeed. */
  readonly retryable: boolean = false;
  readonly details: FieldProblem[];

  constructor(message: string, details: FieldProblem[] = []) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

/** Input that does not describe a valid object or request. */
export class ValidationError extends BerthError {
  readonly status = 422;
  readonly code = 'Invalid';
  static forField(field: string, reason: string): ValidationError {
    return new ValidationError(`${field}: ${reason}`, [{ field, reason }]);
  }
  static fromProblems(problems: FieldProblem[], what = 'request'): ValidationError {
    const first = problems[0];
    const message = problems.length === 1 ? `${first.field}: ${first.reason}` : `invalid ${what}: ${problems.map((p) => `${p.field}: ${p.reason}`).join('; ')}`;
    return new ValidationError(message, problems);
  }
}

/** A body that cannot be parsed at all (malformed JSON or YAML). */
export class MalformedBodyError extends BerthError {
  readonly status = 400;
  readonly code = 'MalformedBody';
}

export class NotFoundError extends BerthError {
  readonly status = 404;
  readonly code = 'NotFound';
  /** `why`, when given, says how it came to be missing. */
  constructor(kind: string, id: string | number, why?: string) {
    super(`${kind} "${id}" not found${why ? `: ${why}` : ''}`);
  }
}

/**
 * The write conflicts with current state: a duplicate name, a stale
 * resourceVersion, a file-owned App, a finished run. Retryable: read again,
 * and the next try may meet the state it needs (the controller's reconciles
 * do exactly that when another writer was first).
 */
export class ConflictError extends BerthError {
  readonly status = 409;
  readonly code = 'Conflict';
  override readonly retryable = true;
}

export class UnauthorizedError extends BerthError {
  readonly status = 401;
  readonly code = 'Unauthorized';
}

/** A request berth will not serve whoever sends it: a Host it does not answer for, another site's page. */
export class ForbiddenError extends BerthError {
  readonly status = 403;
  readonly code = 'Forbidden';
}

export class MethodNotAllowedError extends BerthError {
  readonly status = 405;
  readonly code = 'MethodNotAllowed';
}

export class PayloadTooLargeError extends BerthError {
  readonly status = 413;
  readonly code = 'PayloadTooLarge';
}

export class UnsupportedMediaTypeError extends BerthError {
  readonly status = 415;
  readonly code = 'UnsupportedMediaType';
}

/**
 * A bound on work waiting or streams open is reached: asking again after
 * `retryAfterSeconds` (the API's `Retry-After`) may succeed.
 */
export abstract class CapacityError extends BerthError {
  override readonly retryable = true;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The caller has asked for more than a limit lets wait (Pending runs). */
export class TooManyRequestsError extends CapacityError {
  readonly status = 429;
  readonly code = 'TooManyRequests';
}

/** The server holds as many long-lived answers (event streams, followed logs) as it allows. */
export class ServerBusyError extends CapacityError {
  readonly status = 503;
  readonly code = 'ServerBusy';
}

/** The container runtime (Docker engine, Kubernetes API) cannot be reached. Runs wait; nothing fails. */
export class RuntimeUnavailableError extends BerthError {
  readonly status = 503;
  readonly code = 'RuntimeUnavailable';
  override readonly retryable = true;
}

/**
 * A reachable runtime understood a request and refused it (an invalid name,
 * a limit it does not allow, a permission it does not grant). Doing the same
 * again cannot help: a launch refused so fails its run.
 */
export class RuntimeRefusedError extends BerthError {
  readonly status = 422;
  readonly code = 'RuntimeRefused';
}

/** A reachable runtime failed a request on its side (an HTTP 5xx, an answer berth cannot read). Retryable. */
export class RuntimeApiError extends BerthError {
  readonly status = 502;
  readonly code = 'RuntimeError';
  override readonly retryable = true;
}

/** The image could not be pulled (unknown image, registry unreachable, or `Never` and absent). Fails the run. */
export class ImagePullError extends BerthError {
  readonly status = 422;
  readonly code = 'ImagePullFailed';
  constructor(
    readonly image: string,
    message: string,
  ) {
    super(message);
  }
}

/** Configuration (flags, environment) that berth cannot start with. */
export class ConfigError extends BerthError {
  readonly status = 500;
  readonly code = 'ConfigError';
}

/** A query parameter that names something that does not exist, e.g. an unknown field in `?fields=`. */
export class BadQueryError extends BerthError {
  readonly status = 400;
  readonly code = 'BadRequest';
  static forField(field: string, reason: string): BadQueryError {
    return new BadQueryError(`${field}: ${reason}`, [{ field, reason }]);
  }
}

/**
 * The store cannot take the request now: its disk is full, or PostgreSQL is
 * restarting or out of reach. Nothing was written; the same request later may
 * succeed, so it is a 503 that says why rather than a 500.
 */
export class StoreUnavailableError extends BerthError {
  readonly status = 503;
  readonly code = 'StoreUnavailable';
  override readonly retryable = true;
}
