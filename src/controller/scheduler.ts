/**
 * The scheduler: makes the runs an App's `spec.schedule` asks for. It runs on
 * the leader only (src/server.ts starts it with the controller), wakes every
 * tick, and for each scheduled App asks for the runs that came due since the
 * last due time it handled, through `requestRun` like any other run — so
 * concurrencyPolicy and the controller's limits apply as they do to runs
 * asked for by hand.
 *
 * Exactly once per due time: a due time's run is named `<app>-<unix minutes>`
 * and carries the idempotency key `schedule:<unix minutes>`, so asking again
 * (after a crash between the insert and the bookkeeping, or by a leader that
 * was just deposed) finds the run made the first time. The last due time
 * handled is kept in the store (App `status.schedule`), so a restarted berth
 * knows which due times it missed while it was down.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError } from '../errors';
import { createLogger, type Logger } from '../log';
import { metrics as processMetrics, type BerthMetrics } from '../metrics';
import { Schedule } from '../model/schedule';
import { MissedRunPolicy, type ScheduleStatus } from '../model/types';
import type { Store, StoredApp } from '../store/store';
import { requestRuns } from './run-requests';

/** A due time reached later than this counts as missed (dropped under `Skip`). */
export const ON_TIME_MS = 10_000;

/** The label a scheduled run carries: its due time in unix minutes. */
export const SCHEDULED_AT_LABEL = 'berth.dev/scheduled-at';

/** What to do about the due times found between the last one handled and now. */
export interface DuePlan {
  /** Due times to make a run for, oldest first. */
  run: Date[];
  /** The latest due time handled (run or passed by); the next pass starts after it. */
  last: Date;
  /** Due times passed by without a run (past the starting deadline, or late under `Skip`): what `Missed` notifications report. */
  missed: Date[];
}

/**
 * Decides, for one App at `now`, which due times after `last` get a run. All
 * of them whose run would have been made by now (due time plus jitter) are
 * handled at once; a due time later than `startingDeadlineSeconds` never runs.
 * Then: `RunOnce` runs the latest, `RunAll` each (the latest `maxMissedRuns`),
 * `Skip` the latest only if it is on time (within ON_TIME_MS).
 */
export function planDue(schedule: Schedule, last: Date, now: Date): DuePlan {
  const { missedRunPolicy, maxMissedRuns, startingDeadlineSeconds } = schedule.spec;
  const until = new Date(now.getTime() - schedule.jitterMs);
  const due = schedule.dueBetween(last, until, missedRunPolicy === MissedRunPolicy.RunAll ? maxMissedRuns : 1);
  if (due.length === 0) return { run: [], last, missed: [] };
  const lateness = (t: Date) => now.getTime() - schedule.fireAt(t).getTime();
  const inDeadline = (t: Date) => startingDeadlineSeconds === undefined || lateness(t) <= startingDeadlineSeconds * 1000;
  const onTime = (t: Date) => lateness(t) <= ON_TIME_MS;
  const run = due.filter((t) => inDeadline(t) && (missedRunPolicy !== MissedRunPolicy.Skip || onTime(t)));
  return { run, last: due[due.length - 1], missed: due.filter((t) => !run.includes(t)) };
}

/** The name of the run of `app` due at `due`: the same on every replica and after every restart. */
export function scheduledRunName(appName: string, due: Date): string {
  return `${appName}-${Math.floor(due.getTime() / 60_000)}`;
}

export interface SchedulerOptions {
  store: Store;
  logger?: Logger;
  metrics?: BerthMetrics;
  /** The time now; tests pass a clock they move. @default Date.now */
  clock?: () => Date;
  /** How often due times are looked for. @default 1000 */
  tickMs?: number;
  /** Told of each due time passed by without a run, before the pass is recorded (after a crash it is told again, never not at all). */
  onMissed?: (app: StoredApp, due: Date) => Promise<void>;
}

/** One App's part of a pass (see `Scheduler.tick`). */
interface Pass {
  app: StoredApp;
  schedule: Schedule;
  /** Due times to make a run for now. */
  run: Date[];
  missed: Date[];
  /** What the App's status says once the pass is done. */
  status: ScheduleStatus;
  nextFire?: number;
  /** A run could not be made: nothing of this pass is recorded, so the next tick tries again. */
  failed: boolean;
}

/** Makes scheduled runs while `start`'s signal has not aborted. */
export class Scheduler {
  private readonly store: Store;
  private readonly log: Logger;
  private readonly metrics: BerthMetrics;
  private readonly clock: () => Date;
  private readonly tickMs: number;
  private readonly onMissed?: (app: StoredApp, due: Date) => Promise<void>;
  /** Parsed schedules by App uid, kept while the App's schedule and name stay the same. */
  private readonly parsed = new Map<string, { key: string; schedule: Schedule }>();

  constructor(options: SchedulerOptions) {
    this.store = options.store;
    this.log = options.logger ?? createLogger('info');
    this.metrics = options.metrics ?? processMetrics;
    this.clock = options.clock ?? (() => new Date());
    this.tickMs = options.tickMs ?? 1000;
    this.onMissed = options.onMissed;
  }

  /**
   * Passes over the Apps every tick, and also at the moment the earliest next
   * run is due: a fixed tick alone would make every run up to a tick late.
   */
  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const nextFire = await this.tick().catch((err) => {
        this.log.error({ err }, 'schedule pass failed; trying again next tick');
        return undefined;
      });
      const untilFire = nextFire === undefined ? Infinity : nextFire - this.clock().getTime();
      await sleep(Math.max(0, Math.min(this.tickMs, untilFire)), undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * One pass over every scheduled App: the runs now due for all of them are
   * made together (Store.insertRuns: 200 Apps on one cron line come due in
   * the same instant, and made one after another, the last would be made
   * seconds late), and their bookkeeping written in one statement. An App whose pass
   * fails is tried again on the next. Returns when the earliest next run is
   * due (ms since the epoch, jitter included), if any is.
   */
  async tick(): Promise<number | undefined> {
    // Only the scheduled Apps: the pass runs every second, and the others may be any number (an index holds these).
    const { items } = await this.store.listApps({ scheduled: true });
    const now = this.clock();
    const passes: Pass[] = [];
    for (const app of items) {
      if (!app.spec.schedule) continue;
      try {
        passes.push(this.plan(app, now));
      } catch (err) {
        this.log.warn({ err, app: app.metadata.name }, 'schedule of an app does not parse; trying again next tick');
      }
    }
    const seen = new Set(items.map((app) => app.metadata.uid));
    for (const uid of this.parsed.keys()) if (!seen.has(uid)) this.parsed.delete(uid);

    await this.makeRuns(passes);
    const records: { appId: number; status: ScheduleStatus }[] = [];
    let earliest: number | undefined;
    for (const pass of passes) {
      if (pass.failed) continue;
      try {
        for (const due of pass.missed) {
          this.log.info({ app: pass.app.metadata.name, due: due.toISOString() }, 'scheduled run missed: its due time passed without a run');
          await this.onMissed?.(pass.app, due);
        }
      } catch (err) {
        this.log.warn({ err, app: pass.app.metadata.name }, 'schedule pass of an app failed; trying again next tick');
        continue;
      }
      // Written only when it changed: most ticks change nothing.
      if (JSON.stringify(pass.app.status.schedule ?? {}) !== JSON.stringify(pass.status)) records.push({ appId: pass.app.id, status: pass.status });
      if (pass.nextFire !== undefined && (earliest === undefined || pass.nextFire < earliest)) earliest = pass.nextFire;
    }
    await this.store.setScheduleStatuses(records);
    return earliest;
  }

  /** What one App's pass at `now` is to do: the runs due, the due times missed, and the status to record after. */
  private plan(app: StoredApp, now: Date): Pass {
    const schedule = this.scheduleOf(app);
    const stored = app.status.schedule?.lastScheduleTime;
    // First sight of this schedule: nothing before it is owed, so start from the latest due time whose run would be made by now.
    const until = new Date(now.getTime() - schedule.jitterMs);
    let last = stored ? new Date(stored) : (schedule.dueBetween(new Date(0), until, 1)[0] ?? until);
    let run: Date[] = [];
    let missed: Date[] = [];
    if (!schedule.spec.suspend) {
      ({ run, missed, last } = planDue(schedule, last, now));
    }
    const next = schedule.spec.suspend ? null : schedule.nextDue(new Date(Math.max(last.getTime(), until.getTime())));
    return {
      app,
      schedule,
      run,
      missed,
      status: { lastScheduleTime: last.toISOString(), ...(next ? { nextScheduleTime: next.toISOString() } : {}) },
      nextFire: next ? schedule.fireAt(next).getTime() : undefined,
      failed: false,
    };
  }

  /** Makes every pass's due runs in one go; a pass whose run could not be made (other than refused) is marked failed, to be tried again. */
  private async makeRuns(passes: Pass[]): Promise<void> {
    const asked = passes.flatMap((pass) => pass.run.map((due) => ({ pass, due })));
    if (asked.length === 0) return;
    const answers = await requestRuns(
      this.store,
      asked.map(({ pass, due }) => {
        const minutes = String(Math.floor(due.getTime() / 60_000));
        return {
          app: pass.app,
          request: { name: scheduledRunName(pass.app.metadata.name, due), labels: { [SCHEDULED_AT_LABEL]: minutes }, idempotencyKey: `schedule:${minutes}` },
        };
      }),
    ).catch((err: Error) => asked.map(() => err));
    answers.forEach((answer, i) => {
      const { pass, due } = asked[i];
      const app = pass.app.metadata.name;
      if (answer instanceof ConflictError) {
        // Forbid with a run still going, or a run of that name made by hand: this due time gets no run.
        this.log.info({ app, due: due.toISOString(), reason: answer.message }, 'scheduled run not made');
      } else if (answer instanceof Error) {
        pass.failed = true;
        this.log.warn({ err: answer, app }, 'schedule pass of an app failed; trying again next tick');
      } else if (answer.created) {
        const lateness = (this.clock().getTime() - pass.schedule.fireAt(due).getTime()) / 1000;
        this.metrics.scheduleLateness.observe(Math.max(0, lateness));
        this.log.info({ app, run: answer.run.metadata.name, due: due.toISOString(), lateness }, 'scheduled run made');
      }
    });
  }

  private scheduleOf(app: StoredApp): Schedule {
    const key = `${app.metadata.name}\u0000${JSON.stringify(app.spec.schedule)}`;
    const cached = this.parsed.get(app.metadata.uid);
    if (cached?.key === key) return cached.schedule;
    // Validated when the App was written; a schedule that no longer parses throws and is logged per tick.
    const schedule = new Schedule(app.metadata.name, app.spec.schedule!);
    this.parsed.set(app.metadata.uid, { key, schedule });
    return schedule;
  }
}
