import assert from 'node:assert/strict';
import { planDue } from '../../src/controller/scheduler';
import { hashFields, Schedule, SCHEDULE_DEFAULTS } from '../../src/model/schedule';
import type { ScheduleSpec } from '../../src/model/types';
import { validateAppManifest } from '../../src/model/validate';
import { problemsOf } from '../helpers/validation';

const spec = (fields: Partial<ScheduleSpec> & { cron: string }): ScheduleSpec => ({ ...SCHEDULE_DEFAULTS, ...fields }) as ScheduleSpec;
const at = (iso: string) => new Date(iso);
const isos = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('Schedule: due times', () => {
  it('reads the five fields and the macros in the zone given', () => {
    const hourly = new Schedule('a', spec({ cron: '@hourly', timeZone: 'Asia/Kolkata' }));
    // Kolkata is UTC+05:30: its full hours fall on the half hour in UTC.
    assert.equal(hourly.nextDue(at('2026-06-01T10:00:00Z'))?.toISOString(), '2026-06-01T10:30:00.000Z');
    const daily = new Schedule('a', spec({ cron: '15 9 * * 1-5', timeZone: 'America/New_York' }));
    assert.equal(daily.nextDue(at('2026-06-05T14:00:00Z'))?.toISOString(), '2026-06-08T13:15:00.000Z');
  });

  it('skips a time that does not exist when the clocks go forward (Europe/Berlin, 29 March 2026)', () => {
    const nightly = new Schedule('a', spec({ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }));
    // 02:30 does not happen on the 29th: no run that night (croner alone would run it at 03:00).
    assert.deepEqual(isos(nightly.dueBetween(at('2026-03-27T12:00:00Z'), at('2026-03-31T12:00:00Z'), 10)), [
      '2026-03-28T01:30:00.000Z',
      '2026-03-30T00:30:00.000Z',
      '2026-03-31T00:30:00.000Z',
    ]);
    assert.equal(nightly.nextDue(at('2026-03-28T12:00:00Z'))?.toISOString(), '2026-03-30T00:30:00.000Z');
    const halfHourly = new Schedule('a', spec({ cron: '*/30 * * * *', timeZone: 'Europe/Berlin' }));
    assert.deepEqual(isos(halfHourly.dueBetween(at('2026-03-29T00:00:00Z'), at('2026-03-29T01:30:00Z'), 10)), [
      '2026-03-29T00:30:00.000Z', // 01:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST: 02:00 and 02:30 never happened
      '2026-03-29T01:30:00.000Z',
    ]);
  });

  it('runs a time that happens twice when the clocks go back only once (Europe/Berlin, 25 October 2026)', () => {
    const hourly = new Schedule('a', spec({ cron: '0 * * * *', timeZone: 'Europe/Berlin' }));
    assert.deepEqual(isos(hourly.dueBetween(at('2026-10-24T23:30:00Z'), at('2026-10-25T02:30:00Z'), 10)), [
      '2026-10-25T00:00:00.000Z', // 02:00 CEST
      // 01:00Z is 02:00 CET, the same wall-clock time again: not due.
      '2026-10-25T02:00:00.000Z', // 03:00 CET
    ]);
    assert.equal(hourly.nextDue(at('2026-10-25T00:00:00Z'))?.toISOString(), '2026-10-25T02:00:00.000Z');
    const nightly = new Schedule('a', spec({ cron: '30 2 * * *', timeZone: 'Europe/Berlin' }));
    assert.deepEqual(isos(nightly.dueBetween(at('2026-10-24T12:00:00Z'), at('2026-10-26T12:00:00Z'), 10)), [
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('returns only the latest `limit` due times of a long gap', () => {
    const everyMinute = new Schedule('a', spec({ cron: '* * * * *' }));
    assert.deepEqual(isos(everyMinute.dueBetween(at('2026-01-01T00:00:00Z'), at('2026-02-01T00:00:30Z'), 2)), [
      '2026-01-31T23:59:00.000Z',
      '2026-02-01T00:00:00.000Z',
    ]);
  });

  it('refuses a bad expression or zone, naming the field', () => {
    const base = { image: 'busybox:1.36' };
    const manifest = (schedule: unknown) => ({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: 'a' }, spec: { ...base, schedule } });
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ cron: '61 * * * *' }))),
      [{ field: 'spec.schedule.cron', reason: '"61 * * * *" is not a 5-field cron expression or macro: Invalid value for minute: 61' }],
    );
    assert.match(problemsOf(() => validateAppManifest(manifest({ cron: '0 * * * * *' })))[0].reason, /requires exactly 5 parts/);
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ cron: '@hourly', timeZone: 'Mars/Olympus' }))),
      [{ field: 'spec.schedule.timeZone', reason: '"Mars/Olympus" is not an IANA time zone (such as UTC or Europe/Berlin)' }],
    );
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ cron: '@hourly', missedRunPolicy: 'Sometimes' }))),
      [{ field: 'spec.schedule.missedRunPolicy', reason: 'must be one of Skip, RunOnce, RunAll' }],
    );
  });

  it('fills in the defaults', () => {
    const app = validateAppManifest({ kind: 'App', metadata: { name: 'a' }, spec: { image: 'busybox:1.36', schedule: { cron: '@daily' } } });
    assert.deepEqual(app.spec.schedule, { cron: '@daily', timeZone: 'UTC', suspend: false, missedRunPolicy: 'RunOnce', maxMissedRuns: 10, jitterSeconds: 0 });
  });
});

describe('Schedule: H fields and jitter', () => {
  it('replaces H with a number from the App name, the same every time and within the field', () => {
    const one = hashFields('H H(2-5) * * H', 'reports');
    assert.equal(hashFields('H H(2-5) * * H', 'reports'), one);
    const [minute, hour, , , weekday] = one.split(' ').map(Number);
    assert.ok(minute >= 0 && minute <= 59 && hour >= 2 && hour <= 5 && weekday >= 0 && weekday <= 6, one);
    assert.match(hashFields('H/15 * * * *', 'reports'), /^([0-9]|1[0-4])-59\/15 \* \* \* \*$/);
  });

  it('spreads Apps on H * * * * over the hour', () => {
    const minutes = new Set(Array.from({ length: 100 }, (_, i) => hashFields('H * * * *', `app-${i}`).split(' ')[0]));
    assert.ok(minutes.size >= 40, `100 Apps landed on only ${minutes.size} distinct minutes`);
  });

  it('refuses an H it cannot read, naming the field', () => {
    assert.deepEqual(
      problemsOf(() => hashFields('H(50-70) * * * *', 'a')),
      [{ field: 'spec.schedule.cron', reason: '"H(50-70)" in the minute field must stay within 0-59' }],
    );
    assert.deepEqual(
      problemsOf(() => hashFields('* Hx * * *', 'a')),
      [{ field: 'spec.schedule.cron', reason: '"Hx" in the hour field must be H, H/step, H(from-to) or H(from-to)/step' }],
    );
  });

  it('delays by jitter stable per App, within bounds, and spread across Apps', () => {
    const delays = Array.from({ length: 50 }, (_, i) => new Schedule(`app-${i}`, spec({ cron: '* * * * *', jitterSeconds: 30 })).jitterMs);
    // A new Schedule for the same App (a restart, another replica) waits the same.
    assert.equal(new Schedule('app-7', spec({ cron: '* * * * *', jitterSeconds: 30 })).jitterMs, delays[7]);
    assert.ok(delays.every((d) => d >= 0 && d <= 30_000));
    assert.ok(new Set(delays).size >= 45, 'jitter should differ between Apps');
    assert.equal(new Schedule('a', spec({ cron: '* * * * *' })).jitterMs, 0);
  });
});

describe('planDue: missed runs after a gap', () => {
  const everyMinute = (fields: Partial<ScheduleSpec> = {}) => new Schedule('gap', spec({ cron: '* * * * *', ...fields }));
  // berth handled 12:00, then was down until 12:05:03.
  const last = at('2026-05-01T12:00:00Z');
  const now = at('2026-05-01T12:05:03Z');

  it('RunOnce makes one run, for the latest due time', () => {
    assert.deepEqual(planDue(everyMinute(), last, now), { run: [at('2026-05-01T12:05:00Z')], last: at('2026-05-01T12:05:00Z'), missed: [] });
  });

  it('RunAll makes one run per due time, at most maxMissedRuns', () => {
    assert.deepEqual(
      isos(planDue(everyMinute({ missedRunPolicy: 'RunAll' }), last, now).run),
      [1, 2, 3, 4, 5].map((m) => `2026-05-01T12:0${m}:00.000Z`),
    );
    assert.deepEqual(isos(planDue(everyMinute({ missedRunPolicy: 'RunAll', maxMissedRuns: 2 }), last, now).run), [
      '2026-05-01T12:04:00.000Z',
      '2026-05-01T12:05:00.000Z',
    ]);
  });

  it('Skip runs only a due time reached on time', () => {
    assert.deepEqual(isos(planDue(everyMinute({ missedRunPolicy: 'Skip' }), last, now).run), ['2026-05-01T12:05:00.000Z']);
    const late = planDue(everyMinute({ missedRunPolicy: 'Skip' }), last, at('2026-05-01T12:05:40Z'));
    assert.deepEqual(late, { run: [], last: at('2026-05-01T12:05:00Z'), missed: [at('2026-05-01T12:05:00Z')] });
  });

  it('never runs a due time later than startingDeadlineSeconds', () => {
    const plan = planDue(everyMinute({ missedRunPolicy: 'RunAll', startingDeadlineSeconds: 130 }), last, now);
    assert.deepEqual(isos(plan.run), ['2026-05-01T12:03:00.000Z', '2026-05-01T12:04:00.000Z', '2026-05-01T12:05:00.000Z']);
    assert.deepEqual(planDue(everyMinute({ startingDeadlineSeconds: 2 }), last, now), {
      run: [],
      last: at('2026-05-01T12:05:00Z'),
      missed: [at('2026-05-01T12:05:00Z')],
    });
  });

  it('waits for the jitter before a due time counts', () => {
    const jittered = new Schedule('gap', spec({ cron: '* * * * *', jitterSeconds: 59 }));
    const due = at('2026-05-01T12:01:00Z');
    assert.deepEqual(planDue(jittered, last, new Date(due.getTime() + jittered.jitterMs - 1)).run, []);
    assert.deepEqual(planDue(jittered, last, new Date(due.getTime() + jittered.jitterMs)).run, [due]);
  });
});
