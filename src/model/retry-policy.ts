/**
 * `spec.retryPolicy`: which failed attempts are launched again and how long
 * to wait between them. `spec.retries` stays the limit on how many times;
 * this only narrows which failures count and sets the App's own backoff.
 * The decision itself is taken in src/controller/phases.ts `finishAttempt`.
 */
import type { FieldProblem } from '../errors';
import { parseMemoryBytes } from './quantity';

/** Exit codes an attempt that exited with an error is retried on (`in`) or never retried on (`notIn`); one of the two. */
export type ExitCodeRule = { in: number[]; notIn?: never } | { notIn: number[]; in?: never };

/** The App's delays between attempts: `baseSeconds` doubling per failed attempt, at most `maxSeconds`; each absent: the server's `--retry-*`. */
export interface RetryBackoff {
  baseSeconds?: number;
  maxSeconds?: number;
}

/**
 * More memory for the attempt after an OOM kill: the killed attempt's limit
 * times `memoryFactor`, at most `maxMemory`. Needs `resources.memory`, the
 * first attempt's limit.
 */
export interface OnOOMRule {
  /** Greater than 1, at most 16. */
  memoryFactor: number;
  /** A memory quantity, at least `resources.memory`. */
  maxMemory: string;
}

export interface RetryPolicySpec {
  /** Absent: every exit code other than 0 is retried (while `retries` allows). */
  exitCodes?: ExitCodeRule;
  backoff?: RetryBackoff;
  /** Absent: an OOM-killed attempt is retried like any failure, with the same memory. */
  onOOM?: OnOOMRule;
}

/** The largest `onOOM.memoryFactor`: a few retries already reach any sensible limit. */
export const MAX_MEMORY_FACTOR = 16;

/**
 * The memory limit of the attempt after one that was OOM-killed with
 * `killedBytes`: times the factor, rounded up to a whole KiB, at most
 * `maxMemory`. Undefined when the killed attempt already had `maxMemory`
 * (more is not allowed, and the same again would be killed again).
 */
export function grownMemoryBytes(killedBytes: number, rule: OnOOMRule): number | undefined {
  const max = parseMemoryBytes(rule.maxMemory);
  if (killedBytes >= max) return undefined;
  return Math.min(Math.ceil((killedBytes * rule.memoryFactor) / 1024) * 1024, max);
}

/**
 * Cross-field rules of `onOOM` that the schema cannot say: it needs
 * `resources.memory` to grow from, and `maxMemory` must not be below it.
 * `path` is where the spec sits (`spec`).
 */
export function onOOMProblems(spec: { resources: { memory?: string }; retryPolicy?: RetryPolicySpec }, path: string): FieldProblem[] {
  const rule = spec.retryPolicy?.onOOM;
  if (!rule) return [];
  const field = `${path}.retryPolicy.onOOM`;
  if (spec.resources.memory === undefined) {
    return [{ field: `${path}.resources.memory`, reason: `is required with ${field}: it is the first attempt's limit, which an OOM kill grows` }];
  }
  if (parseMemoryBytes(rule.maxMemory) < parseMemoryBytes(spec.resources.memory)) {
    return [{ field: `${field}.maxMemory`, reason: `must be at least ${path}.resources.memory (${spec.resources.memory})` }];
  }
  return [];
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
  errorMessage: {
    type: 'must be a list of exit codes such as [1, 2]',
    minItems: 'must list at least one exit code',
    uniqueItems: 'must not repeat an exit code',
  },
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
      errorMessage: {
        type: 'must be an object such as {baseSeconds: 5, maxSeconds: 300}',
        additionalProperties: 'only baseSeconds and maxSeconds are supported',
      },
    },
    onOOM: {
      type: 'object',
      required: ['memoryFactor', 'maxMemory'],
      additionalProperties: false,
      properties: {
        memoryFactor: {
          type: 'number',
          exclusiveMinimum: 1,
          maximum: MAX_MEMORY_FACTOR,
          errorMessage: `must be a number greater than 1 and at most ${MAX_MEMORY_FACTOR}, such as 2`,
        },
        // `quantity` is a keyword of ./validate.ts backed by ./quantity.ts.
        maxMemory: { type: ['string', 'integer'], quantity: 'memory', errorMessage: { type: 'must be a memory quantity such as "1Gi"' } },
      },
      errorMessage: {
        type: 'must be an object such as {memoryFactor: 2, maxMemory: 1Gi}',
        required: { memoryFactor: 'is required', maxMemory: 'is required' },
        additionalProperties: 'only memoryFactor and maxMemory are supported',
      },
    },
  },
  errorMessage: { type: 'must be an object', additionalProperties: 'only exitCodes, backoff and onOOM are supported' },
};
