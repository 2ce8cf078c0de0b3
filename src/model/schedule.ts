/**
 * What an App's `spec.schedule` means in time: which instants are due, and
 * when each one's run is made. croner reads the cron fields and the zone;
 * this module adds what berth promises beyond it, in one place:
 *
 * - `H` in a field is a number hashed from the App's name (as Jenkins does),
 *   rewritten before croner sees the expression, so Apps on `H * * * *` spread
 *   over the hour and each keeps its minute across restarts.
 * - Daylight saving: a local time that does not exist is skipped (croner would
 *   move a fixed-time job to the end of the gap), and a local time that occurs
 *   twice is due once, at its first occurrence.
 * - Jitter: a delay in [0, jitterSeconds] hashed from the App's name.
 */
import { createHash } from 'node:crypto';
import { Cron } from 'croner';
import { ValidationError } from '../errors';
import type { ScheduleSpec } from './types';

/** The defaults of the optional schedule fields. */
export const SCHEDULE_DEFAULTS = { timeZone: 'UTC', suspend: false, missedRunPolicy: 'RunOnce', maxMissedRuns: 10, jitterSeconds: 0 } as const;

/** Where `H` may land in each of the five fields; day-of-month stops at 28 so every month has it. */
const FIELD_RANGES: readonly [number, number][] = [
  [0, 59],
  [0, 23],
  [1, 28],
  [1, 12],
  [0, 6],
];
const FIELD_NAMES = ['minute', 'hour', 'day of month', 'month', 'day of week'];

/** An App's schedule, parsed: the due times it yields and the jitter its runs wait. */
export class Schedule {
  /** The expression croner reads, with each `H` replaced by the App's number. */
  readonly expression: string;
  readonly jitterMs: number;
  private readonly cron: Cron;
  private readonly wallClock: Intl.DateTimeFormat;

  /** @throws ValidationError naming `<field>.cron` or `<field>.timeZone`. */
  constructor(
    readonly appName: string,
    readonly spec: ScheduleSpec,
    field = 'spec.schedule',
  ) {
    try {
      this.wallClock = new Intl.DateTimeFormat('en-CA', {
        timeZone: spec.timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
      });
    } catch {
      throw ValidationError.forField(`${field}.timeZone`, `"${spec.timeZone}" is not an IANA time zone (such as UTC or Europe/Berlin)`);
    }
    this.expression = hashFields(spec.cron.trim(), appName, `${field}.cron`);
    try {
      this.cron = new Cron(this.expression, { timezone: spec.timeZone, mode: '5-part', paused: true });
    } catch (err) {
      const reason = (err as Error).message.replace(/^CronPattern: /, '');
      throw ValidationError.forField(`${field}.cron`, `"${spec.cron}" is not a 5-field cron expression or macro: ${reason}`);
    }
    this.jitterMs = spec.jitterSeconds > 0 ? hashOf(`${appName}:jitter`) % (spec.jitterSeconds * 1000 + 1) : 0;
  }

  /** The first due time strictly after `after`, or null when the expression never matches again. */
  nextDue(after: Date): Date | null {
    let cursor = after;
    // A skipped (non-existent or repeated) time is at most a few in a row: DST moves clocks once.
    for (let i = 0; i < 8; i++) {
      const next = this.cron.nextRun(cursor);
      if (!next) return null;
      if (this.isDue(next)) return next;
      cursor = next;
    }
    return null;
  }

  /**
   * Due times in (after, until], oldest first; at most the latest `limit`
   * of them, so a gap of weeks on `* * * * *` costs what a gap of minutes does.
   */
  dueBetween(after: Date, until: Date, limit: number): Date[] {
    // croner walks back from `until`; asking for a few more covers the times the DST rules drop.
    const found = this.cron.previousRuns(limit + 4, new Date(until.getTime() + 1));
    return found
      .filter((t) => t.getTime() > after.getTime() && t.getTime() <= until.getTime() && this.isDue(t))
      .sort((a, b) => a.getTime() - b.getTime())
      .slice(-limit);
  }

  /** When the run of due time `due` is made: after the App's jitter. */
  fireAt(due: Date): Date {
    return new Date(due.getTime() + this.jitterMs);
  }

  /** False for a time croner moved out of a DST gap, and for the second occurrence of a repeated local time. */
  private isDue(t: Date): boolean {
    if (!this.cron.match(t)) return false;
    const local = this.wallClock.format(t);
    // Clocks go back by at most two hours (and by 30 minutes on Lord Howe Island).
    return ![30, 60, 120].some((minutes) => this.wallClock.format(new Date(t.getTime() - minutes * 60_000)) === local);
  }
}

/** Replaces `H`, `H/n`, `H(a-b)` and `H(a-b)/n` in each field with numbers hashed from the App's name. */
export function hashFields(expression: string, appName: string, field = 'spec.schedule.cron'): string {
  if (!/H/.test(expression) || expression.startsWith('@')) return expression;
  const parts = expression.split(/\s+/);
  if (parts.length !== 5) return expression; // croner names the count as the problem
  return parts
    .map((part, index) =>
      part
        .split(',')
        .map((item) => hashItem(item, index, appName, field))
        .join(','),
    )
    .join(' ');
}

function hashItem(item: string, index: number, appName: string, field: string): string {
  if (!item.includes('H')) return item;
  const match = /^H(?:\((\d+)-(\d+)\))?(?:\/(\d+))?$/.exec(item);
  const [min, max] = FIELD_RANGES[index];
  const bad = (why: string) => ValidationError.forField(field, `"${item}" in the ${FIELD_NAMES[index]} field ${why}`);
  if (!match) throw bad('must be H, H/step, H(from-to) or H(from-to)/step');
  const from = match[1] === undefined ? min : Number(match[1]);
  const to = match[2] === undefined ? max : Number(match[2]);
  if (from < min || to > max || from > to) throw bad(`must stay within ${min}-${max}`);
  const hash = hashOf(`${appName}:${index}`);
  if (match[3] === undefined) return String(from + (hash % (to - from + 1)));
  const step = Number(match[3]);
  if (step < 1 || step > to - from + 1) throw bad(`has a step outside 1-${to - from + 1}`);
  return `${from + (hash % step)}-${to}/${step}`;
}

/** A stable number from a string: the same on every replica and after every restart. */
function hashOf(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0);
}
