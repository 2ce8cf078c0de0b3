/**
 * bench:schedule — how punctually berth makes scheduled runs, and whether it
 * makes each exactly once, on the local Docker engine.
 *
 * 200 Apps on `* * * * *` (a third each under missedRunPolicy RunOnce, RunAll
 * and Skip) for BENCH_MINUTES (5) minutes: the lateness of each run's
 * creation against its due time (p50, p99; target p99 < 1 s), and due times
 * that got no run or more than one (target 0). Then berth is stopped for
 * BENCH_GAP_MINUTES (2) and started again on the same store, half a minute
 * away from any due time: the runs it makes for the gap must be what each
 * App's policy says — every missed due time under RunAll, the latest under
 * RunOnce, none under Skip.
 *
 * Runs are followed over `/events/` (ADDED events), never by polling: a poll
 * would load the server whose punctuality it measures.
 */
import { followEvents } from './run-watcher';
import { api, percentile, report, startBerth, type BerthProcess } from './support';

const APPS = Number(process.env.BENCH_APPS ?? 200);
const MINUTES = Number(process.env.BENCH_MINUTES ?? 5);
const GAP_MINUTES = Number(process.env.BENCH_GAP_MINUTES ?? 2);
const IMAGE = process.env.BERTH_BENCH_IMAGE ?? 'berth-test/busybox:latest';
const POLICIES = ['RunOnce', 'RunAll', 'Skip'] as const;
const MINUTE = 60_000;
const SCHEDULED_AT = 'berth.dev/scheduled-at';

interface Made {
  app: string;
  /** Due time, unix minutes. */
  due: number;
  /** Run creation time as berth recorded it, ms. */
  createdMs: number;
  /** When the bench saw its ADDED event, ms. */
  seenMs: number;
}

type RunObject = { metadata: { name: string; creationTimestamp: string; labels?: Record<string, string> }; spec: { app: string } };

const sleepUntil = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms - Date.now())));
const minuteOf = (ms: number): number => Math.floor(ms / MINUTE);
const policyOf = (index: number): (typeof POLICIES)[number] => POLICIES[index % POLICIES.length];

async function follow(berth: BerthProcess, made: Made[], abort: AbortController): Promise<void> {
  await followEvents<RunObject>(
    berth.url,
    'kind=Run',
    (type, run) => {
      if (type !== 'ADDED') return;
      const due = Number(run.metadata.labels?.[SCHEDULED_AT]);
      if (!Number.isFinite(due)) return;
      made.push({ app: run.spec.app, due, createdMs: Date.parse(run.metadata.creationTimestamp), seenMs: Date.now() });
    },
    abort.signal,
  );
}

async function main(): Promise<void> {
  const apps = Array.from({ length: APPS }, (_, i) => `sched-${String(i).padStart(3, '0')}`);
  // Enough room that the containers of one minute do not queue into the next.
  const flags = ['--max-parallel', '16', '--max-pending', String(APPS * 4), '--max-pending-per-app', '10', '--default-network', 'none'];
  let berth = await startBerth(flags);
  const { dir } = berth;
  const made: Made[] = [];
  const abort = new AbortController();
  await follow(berth, made, abort);
  for (const [i, name] of apps.entries()) {
    const schedule = { cron: '* * * * *', missedRunPolicy: policyOf(i), maxMissedRuns: 10 };
    await api(`${berth.url}/apps/`, 'POST', {
      apiVersion: 'berth.dev/v1',
      kind: 'App',
      metadata: { name },
      spec: { image: IMAGE, command: ['true'], historyLimit: 3, schedule },
    });
  }
  // Measured from the first due time after every App exists, through MINUTES due times.
  const first = minuteOf(Date.now()) + 1;
  const last = first + MINUTES - 1;
  console.log(`bench:schedule: ${APPS} Apps on "* * * * *", ${MINUTES} due times from ${new Date(first * MINUTE).toISOString()}`);
  await sleepUntil((last + 1) * MINUTE - 25_000);

  const window = made.filter((m) => m.due >= first && m.due <= last);
  const lateness = window.map((m) => m.createdMs - m.due * MINUTE);
  const seen = window.map((m) => m.seenMs - m.due * MINUTE);
  const perDue = new Map<string, number>();
  for (const m of window) perDue.set(`${m.app}@${m.due}`, (perDue.get(`${m.app}@${m.due}`) ?? 0) + 1);
  let missed = 0;
  for (const app of apps) for (let due = first; due <= last; due++) if (!perDue.has(`${app}@${due}`)) missed++;
  const doubled = [...perDue.values()].filter((n) => n > 1).length;

  // Stop half a minute before a due time, start again half a minute after the GAP_MINUTES-th: no due time is on time then.
  const stopAt = (last + 1) * MINUTE - 30_000;
  await sleepUntil(stopAt);
  abort.abort();
  await berth.stop();
  const stoppedMs = Date.now();
  console.log(`stopped at ${new Date(stoppedMs).toISOString()} for ${GAP_MINUTES} minutes`);
  await sleepUntil(stopAt + GAP_MINUTES * MINUTE);
  const gap = Array.from({ length: GAP_MINUTES }, (_, i) => last + 1 + i);
  const restartedMs = Date.now();
  berth = await startBerth(flags, { dir });
  // The scheduler handles the gap on its first pass, which may come before any event stream could open:
  // the gap's runs are read once per App, by their due-time label, well before the next due time.
  await sleepUntil(restartedMs + 20_000);
  const afterGap: Made[] = [];
  for (const app of apps) {
    for (const run of await api<RunObject[]>(`${berth.url}/apps/${app}/run/?limit=50`)) {
      const due = Number(run.metadata.labels?.[SCHEDULED_AT]);
      if (gap.includes(due)) afterGap.push({ app: run.spec.app, due, createdMs: Date.parse(run.metadata.creationTimestamp), seenMs: NaN });
    }
  }
  await berth.stop();

  let wrong = 0;
  const examples: string[] = [];
  for (const [i, app] of apps.entries()) {
    const policy = policyOf(i);
    const got = afterGap
      .filter((m) => m.app === app && gap.includes(m.due))
      .map((m) => m.due)
      .sort();
    const want = policy === 'RunAll' ? gap : policy === 'RunOnce' ? gap.slice(-1) : [];
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      wrong++;
      if (examples.length < 5) examples.push(`${app} (${policy}): due ${got.join(',') || 'none'}, expected ${want.join(',') || 'none'}`);
    }
  }
  const gapLateness = afterGap.filter((m) => gap.includes(m.due)).map((m) => m.createdMs - restartedMs);

  console.log(`\n${window.length} scheduled runs made for ${APPS * MINUTES} due times`);
  report('creation lateness p50', percentile(lateness, 50), 'ms');
  report('creation lateness p99', percentile(lateness, 99), 'ms', { op: '<', limit: 1000 });
  report('seen on /events/ p99 (after the due time)', percentile(seen, 99), 'ms');
  report('due times without a run', missed, '', { op: '<=', limit: 0 });
  report('due times with more than one run', doubled, '', { op: '<=', limit: 0 });
  report(`Apps whose gap runs differ from their policy (${GAP_MINUTES} min down)`, wrong, '', { op: '<=', limit: 0 });
  if (gapLateness.length) report('gap runs made after the restart, p99', percentile(gapLateness, 99), 'ms');
  for (const example of examples) console.log(`  ${example}`);
  process.exit(missed || doubled || wrong ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
