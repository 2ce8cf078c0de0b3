/**
 * How big an object berth accepts. Every run copies its App's spec and every
 * `/events/` client serialises it again, so a spec's size is paid many times
 * over: these bounds keep that cost small whatever a client or a file sends.
 * The schema (./schema.ts) and the YAML reader (./yaml.ts) enforce them.
 */
import { FieldProblem, ValidationError } from '../errors';

/** A YAML document, with its aliases expanded, as JSON: 2 MiB (a 1 MiB body may grow a little as JSON). */
export const MAX_DOCUMENT_BYTES = 2 * 1024 * 1024;
/** How deep collections may nest in a YAML text: an App needs about ten; the parser's time and stack grow with depth. */
export const MAX_YAML_NESTING = 64;
/** Alias expansions per YAML document, as the yaml library counts them (a use of an anchor holding aliases counts each). */
export const MAX_YAML_ALIASES = 100;
/** An App's spec as JSON, and a run request's overrides: 256 KiB. */
export const MAX_SPEC_BYTES = 256 * 1024;
/** Words of a command, given as a list or as a string split into words. */
export const MAX_COMMAND_ITEMS = 4096;
/** One word of a command, or one environment value: Linux's limit on one argument (MAX_ARG_STRLEN). */
export const MAX_ARGUMENT_BYTES = 128 * 1024;
/** Variables in an App's `env`, or in a run's `env` overrides. */
export const MAX_ENV_ENTRIES = 1024;

/**
 * The size of `value` as JSON, counted only up to `budget`: a value larger
 * than that answers `budget + 1` after visiting about `budget` bytes' worth,
 * so a document whose aliases expand a million-fold costs no more to measure
 * than one at the limit. (Aliases are shared objects in the parsed value:
 * walking it counts every use, as serialising it would.) A value that
 * contains itself (an alias inside its own anchor) would never end as JSON:
 * its size is Infinity.
 */
export function jsonSizeWithin(value: unknown, budget: number): number {
  let size = 0;
  const open = new Set<object>();
  const visit = (v: unknown): boolean => {
    if (size > budget) return false;
    if (typeof v === 'object' && v !== null) {
      if (open.has(v)) {
        size = Infinity;
        return false;
      }
      open.add(v);
      const within = visitCollection(v);
      open.delete(v);
      return within;
    }
    if (typeof v === 'string') size += v.length + 2;
    else if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') size += String(v).length;
    else if (v === null || v === undefined) size += 4;
    return size <= budget;
  };
  const visitCollection = (v: object): boolean => {
    if (Array.isArray(v)) {
      size += 2 + Math.max(0, v.length - 1);
      for (const item of v) if (!visit(item)) return false;
    } else {
      size += 2;
      for (const [key, item] of Object.entries(v)) {
        size += key.length + 4;
        if (!visit(item)) return false;
      }
    }
    return size <= budget;
  };
  visit(value);
  return size === Infinity ? Infinity : size > budget ? budget + 1 : size;
}

/**
 * Refuses a spec (or a run's overrides) larger than MAX_SPEC_BYTES as JSON,
 * naming the field, its size and the limit.
 *
 * @throws ValidationError
 */
export function checkSpecSize(spec: unknown, field: string, locate?: (field: string) => Partial<FieldProblem>): void {
  const bytes = Buffer.byteLength(JSON.stringify(spec) ?? '');
  if (bytes <= MAX_SPEC_BYTES) return;
  const reason = `is ${bytes} bytes as JSON; at most ${MAX_SPEC_BYTES} (256 KiB) are allowed`;
  throw new ValidationError(`${field}: ${reason}`, [{ field, reason, ...(locate?.(field) ?? {}) }]);
}
