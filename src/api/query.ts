import type { Context } from 'koa';
import { FieldProblem, ValidationError } from '../errors';
import { RunPhase } from '../model/types';

/** At most this many items per page. */
export const MAX_PAGE_SIZE = 1000;
/** Items per page when `?limit=` is not given: a list never answers every row at once. */
export const DEFAULT_PAGE_SIZE = 100;

export interface Pagination {
  limit?: number;
  offset?: number;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const PHASES = Object.values(RunPhase) as string[];

/**
 * `?limit=&offset=`: both optional; limit from 0 to 1000, 100 when not
 * given (`X-Total-Count` says how many there are in all), offset from 0.
 */
export function pagination(ctx: Context): Required<Pagination> {
  const problems: FieldProblem[] = [];
  const limit = integerParam(ctx, 'limit', 0, MAX_PAGE_SIZE, problems);
  const offset = integerParam(ctx, 'offset', 0, Number.MAX_SAFE_INTEGER, problems);
  if (problems.length) throw ValidationError.fromProblems(problems, 'query');
  return { limit: limit ?? DEFAULT_PAGE_SIZE, offset: offset ?? 0 };
}

/**
 * `?labelSelector=team=data,tier=batch`: equality only (`=` or `==`), every
 * pair must match. Set-based and inequality selectors are refused by name
 * rather than silently ignored.
 */
export function labelSelector(ctx: Context): Record<string, string> | undefined {
  const raw = single(ctx, 'labelSelector');
  if (raw === undefined || raw.trim() === '') return undefined;
  const selector: Record<string, string> = {};
  for (const term of raw.split(',')) {
    const match = /^\s*([^=!\s]+)\s*==?\s*([^=!\s]*)\s*$/.exec(term);
    if (!match) {
      throw ValidationError.forField('labelSelector', `"${term}" is not supported: only equality selectors "key=value[,key=value…]" are`);
    }
    const [, key, value] = match;
    if (!LABEL_KEY.test(key)) throw ValidationError.forField('labelSelector', `"${key}" is not a valid label key`);
    if (!LABEL_VALUE.test(value)) throw ValidationError.forField('labelSelector', `"${value}" is not a valid label value`);
    selector[key] = value;
  }
  return selector;
}

/** `?phase=Pending,Running`: a comma-separated list of run phases. */
export function phases(ctx: Context): RunPhase[] | undefined {
  const raw = single(ctx, 'phase');
  if (raw === undefined || raw === '') return undefined;
  const list = raw.split(',').map((p) => p.trim());
  const unknown = list.filter((p) => !PHASES.includes(p));
  if (unknown.length) {
    throw ValidationError.forField('phase', `"${unknown.join(',')}" is not a run phase; use ${PHASES.join(', ')}`);
  }
  return list as RunPhase[];
}

/** A query parameter given at most once. */
export function single(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  if (Array.isArray(value)) throw ValidationError.forField(name, 'must be given at most once');
  return value;
}

/** A flag such as `?follow=1`: present and not `0`/`false`. */
export function flag(ctx: Context, name: string): boolean {
  const value = single(ctx, name);
  return value !== undefined && !['0', 'false', 'no'].includes(value.toLowerCase());
}

export function integerParam(ctx: Context, name: string, min: number, max: number, problems?: FieldProblem[]): number | undefined {
  const raw = single(ctx, name);
  if (raw === undefined) return undefined;
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
  const reason = max === Number.MAX_SAFE_INTEGER ? `must be an integer of at least ${min}` : `must be an integer from ${min} to ${max}`;
  if (!problems) throw ValidationError.forField(name, reason);
  problems.push({ field: name, reason });
  return undefined;
}

/** Sets `X-Total-Count`, the size of the whole collection before paging. */
export function setTotal(ctx: Context, total: number): void {
  ctx.set('X-Total-Count', String(total));
}
