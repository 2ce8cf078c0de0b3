import type { AppAnswer, RunAnswer } from '../../api/present';
import type { ApiClient } from './api-client';
import { UsageError } from './exit';
import { age, humanDuration, span } from './output';

export type { AppAnswer, RunAnswer };

/** How berth's objects are named on the command line: `app`/`apps`, `run`/`runs`. */
export function resourceKind(word: string): 'App' | 'Run' {
  const kind = ({ app: 'App', apps: 'App', run: 'Run', runs: 'Run' } as const)[word.toLowerCase() as 'app'];
  if (!kind) throw new UsageError(`unknown resource type "${word}": use apps or runs`);
  return kind;
}

/** The object form, as an App or Run file spells it: without the seed's flat fields the API adds beside it. */
export function objectForm(answer: AppAnswer | RunAnswer): Record<string, unknown> {
  const { apiVersion, kind, metadata, spec, status } = answer;
  return { apiVersion, kind, metadata, spec, status };
}

/** A run by name or id, wherever its App is: `/runs/{run}/`. */
export async function getRun(client: ApiClient, ref: string): Promise<RunAnswer> {
  return (await client.request<RunAnswer>('GET', `/runs/${encodeURIComponent(ref)}/`)).body;
}

export const runPath = (run: RunAnswer): string => `/apps/${encodeURIComponent(run.app)}/run/${run.id}/`;

/** `api`, or `file:hello.yaml`, with `(Error)` when the file is held at its last good state. */
export function sourceOf(app: AppAnswer): string {
  return app.status.syncState === 'Error' ? `${app.status.source} (Error)` : app.status.source;
}

export const APP_COLUMNS = ['NAME', 'IMAGE', 'SOURCE', 'AGE'];
export const APP_WIDE_COLUMNS = [...APP_COLUMNS, 'RUNTIME', 'SCHEDULE', 'NEXT RUN', 'LAST RUN', 'COMMAND', 'LABELS'];

export function appRow(app: AppAnswer, wide = false, now = Date.now()): string[] {
  const row = [app.metadata.name, app.spec.image, sourceOf(app), age(app.metadata.creationTimestamp, now)];
  if (!wide) return row;
  const command = app.spec.command.length ? app.spec.command.map(quoteWord).join(' ') : '<image default>';
  return [...row, app.spec.runtime ?? '<default>', ...scheduleColumns(app, now), truncate(command, 60), labelText(app.metadata.labels)];
}

/**
 * SCHEDULE, NEXT RUN and LAST RUN: the cron expression (with its zone when
 * not UTC), when the next due time is (`in 42s`) and how long ago the last
 * one was (`3m ago`), from the scheduler's `status.schedule`.
 */
function scheduleColumns(app: AppAnswer, now: number): [string, string, string] {
  const schedule = app.spec.schedule;
  if (!schedule) return ['<none>', '<none>', '<none>'];
  const zone = schedule.timeZone && schedule.timeZone !== 'UTC' ? ` (${schedule.timeZone})` : '';
  const { nextScheduleTime, lastScheduleTime } = app.status.schedule ?? {};
  const next = schedule.suspend ? '<suspended>' : nextScheduleTime ? `in ${humanDuration(Date.parse(nextScheduleTime) - now)}` : '<none>';
  const last = lastScheduleTime ? `${age(lastScheduleTime, now)} ago` : '<none>';
  return [`${schedule.cron}${zone}`, next, last];
}

export const RUN_COLUMNS = ['NAME', 'APP', 'PHASE', 'REASON', 'EXIT', 'ATTEMPTS', 'DURATION', 'AGE'];
export const RUN_WIDE_COLUMNS = [...RUN_COLUMNS, 'RUNTIME', 'CONTAINER', 'MESSAGE'];
/** The PHASE column, coloured on a terminal. */
export const RUN_PHASE_COLUMN = 2;

export function runRow(run: RunAnswer, wide = false, now = Date.now()): string[] {
  const s = run.status;
  const row = [
    run.metadata.name,
    run.app,
    s.phase,
    s.reason ?? '',
    s.exitCode === undefined ? '' : String(s.exitCode),
    String(s.attempts ?? 0),
    span(s.startedAt, s.finishedAt, now),
    age(run.metadata.creationTimestamp, now),
  ];
  if (!wide) return row;
  return [...row, s.runtime ?? '', s.containerName ?? '', truncate((s.message ?? '').replace(/\s+/g, ' '), 80)];
}

export function labelText(labels: Record<string, string> = {}): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return pairs.length ? pairs.join(',') : '<none>';
}

/** Parses `key=value,key2==value2` (equality only, as the server takes it) for matching events client-side. */
export function parseSelector(raw: string | undefined): Record<string, string> | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const selector: Record<string, string> = {};
  for (const term of raw.split(',')) {
    const match = /^\s*([^=!\s]+)\s*==?\s*([^=!\s]*)\s*$/.exec(term);
    if (!match) throw new UsageError(`selector "${term}" is not supported: only equality, key=value[,key=value…]`);
    selector[match[1]] = match[2];
  }
  return selector;
}

export function matchesSelector(labels: Record<string, string> = {}, selector?: Record<string, string>): boolean {
  return !selector || Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** A word as a POSIX shell reads it back: as it is when it holds nothing the shell treats specially, else in single quotes. */
function quoteWord(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word)) return word;
  // Inside single quotes nothing is special but the quote itself: end the quoting, put a quoted quote, begin again.
  const escaped = word.replaceAll("'", "'\\''");
  return `'${escaped}'`;
}

function truncate(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}
