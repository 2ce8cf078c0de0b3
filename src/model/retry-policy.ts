/**
 * `spec.retryPolicy`: which failed attempts are launched again and how long
 * to wait between them. `spec.retries` stays the limit on how many times;
 * this only narrows which failures count and sets the App's own backoff.
 * The decision itself is taken in src/controller/phases.ts `finishAttempt`.
 */

/** Exit codes an attempt that exited with an error is retried on (`in`) or never retried on (`notIn`); one of the two. */
export type ExitCodeRule = { in: number[]; notIn?: never } | { notIn: number[]; in?: never };

/** The App's delays between attempts: `baseSeconds` doubling per failed attempt, at most `maxSeconds`; each absent: the server's `--retry-*`. */
export interface RetryBackoff {
  baseSeconds?: number;
  maxSeconds?: number;
}

export interface RetryPolicySpec {
  /** Absent: every exit code other than 0 is retried (while `retries` allows). */
  exitCodes?: ExitCodeRule;
  backoff?: RetryBackoff;
}

/** Whether an attempt that exited with `exitCode` may be retried under `rule` (absent: yes). */
export function exitCodeRetries(rule: ExitCodeRule | undefined, exitCode: number | undefined): boolean {
  if (!rule || exitCode === undefined) return true;
  if (rule.in) return rule.in.includes(exitCode);
  return !(rule.notIn ?? []).includes(exitCode);
}

const MAX_EXIT_CODES = 256;

const exitCodeList = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_EXIT_CODES,
  uniqueItems: true,
  items: { type: 'integer', minimum: 0, maximum: 255, errorMessage: 'must be an exit code from 0 to 255' },
  errorMessage: { type: 'must be a list of exit codes such as [1, 2]', minItems: 'must list at least one exit code', uniqueItems: 'must not repeat an exit code' },
};

const seconds = (max: number) => ({ type: 'integer', minimum: 1, maximum: max, errorMessage: `must be an integer from 1 to ${max}` });

/** The JSON Schema of `spec.retryPolicy`, used by ./schema.ts. */
export const retryPolicySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    exitCodes: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: { in: exitCodeList, notIn: exitCodeList },
      errorMessage: {
        type: 'must be an object such as {in: [1, 2]} or {notIn: [3]}',
        additionalProperties: 'only in and notIn are supported',
        minProperties: 'must give in or notIn',
        maxProperties: 'must give in or notIn, not both',
      },
    },
    backoff: {
      type: 'object',
      additionalProperties: false,
      properties: { baseSeconds: seconds(86_400), maxSeconds: seconds(86_400) },
      errorMessage: { type: 'must be an object such as {baseSeconds: 5, maxSeconds: 300}', additionalProperties: 'only baseSeconds and maxSeconds are supported' },
    },
  },
  errorMessage: { type: 'must be an object', additionalProperties: 'only exitCodes and backoff are supported' },
};
