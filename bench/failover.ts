/**
 * `npm run bench:failover`: two `berth serve --leader-elect` replicas on one
 * PostgreSQL database, with runs in flight; the leader is killed with
 * SIGKILL ten times (the killed one restarted as a follower each time):
 *  - failover: time from the SIGKILL to the first run launched by the new
 *    leader (a run asked for right after the kill turning Running), p50
 *    (target < lease duration + 1 s);
 *  - runs lost (not finished, or finished otherwise than they should) and
 *    runs doubled (more than one container created for one run), over every
 *    run asked for (target 0 each).
 * Runs are followed through the surviving replica's `/events/` stream, never
 * by polling the API.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { createsPerRun } from '../test/helpers/docker-events';
import { LABEL_APP } from '../src/executors/executor';
import { api, freePort, median, percentile, report, serverEnv } from './support';
import { followRuns } from './run-watcher';

const IMAGE = process.env.BERTH_BENCH_IMAGE ?? 'berth-test/busybox:latest';
const POSTGRES_URL = process.env.BERTH_BENCH_POSTGRES ?? 'postgres://berth:berth@127.0.0.1:5432/berth_test';
const KILLS = Number(process.env.BERTH_BENCH_KILLS ?? 10);
const LEASE_DURATION_MS = Number(process.env.BERTH_BENCH_LEASE_MS ?? 5000);
const RENEW_DEADLINE_MS = Math.round(LEASE_DURATION_MS * (2 / 3));
const RETRY_PERIOD_MS = Number(process.env.BERTH_BENCH_RETRY_MS ?? 500);
/** Runs in flight at each kill: some Running (a few seconds long), some still Pending. */
const RUNS_PER_KILL = 6;
const MAX_PARALLEL = 4;

const docker = new Docker();

interface PgClient {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Client } = require('pg') as { Client: new (config: { connectionString: string }) => PgClient };

async function sql(statement: string): Promise<void> {
  const client = new Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

interface Replica {
  id: string;
  url: string;
  child: ChildProcess;
}

type RunAnswer = { id: number; metadata: { uid: string; name: string }; status: { phase: string; exitCode?: number } };

/** Follows one replica's `/events/` stream: each run's last phase, and when each first turned Running. */
class RunWatcher {
  readonly phases = new Map<number, string>();
  readonly runningAt = new Map<number, number>();
  private readonly abort = new AbortController();
  private listeners: (() => void)[] = [];

  async open(url: string, app: string): Promise<void> {
    await followRuns(url, app, (run: RunAnswer) => this.onRun(run), this.abort.signal);
  }

  private onRun(run: RunAnswer): void {
    if (!run.status?.phase) return;
    this.phases.set(run.id, run.status.phase);
    if (run.status.phase === 'Running' && !this.runningAt.has(run.id)) this.runningAt.set(run.id, performance.now());
    for (const listener of this.listeners) listener();
  }

  /** Resolves with `check()`'s value once it is truthy, re-checked on every event; rejects after `timeoutMs`. */
  until<T>(what: string, check: () => T | undefined, timeoutMs = 60_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        const value = check();
        if (value === undefined || value === false) return;
        done();
        resolve(value);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
      };
      this.listeners.push(listener);
      listener();
    });
  }

  close(): void {
    this.abort.abort();
  }
}

async function startReplica(id: string, db: string, dir: string): Promise<Replica> {
  const port = await freePort();
  const cli = path.join(__dirname, '..', 'src', 'cli', 'main.js');
  const args = [
    cli,
    'serve',
    '--port',
    String(port),
    '--db',
    db,
    '--apps-dir',
    path.join(dir, 'apps'),
    '--log-level',
    'warn',
    '--max-parallel',
    String(MAX_PARALLEL),
    '--leader-elect',
    '--replica-id',
    id,
    '--lease-duration',
    `${LEASE_DURATION_MS}ms`,
    '--renew-deadline',
    `${RENEW_DEADLINE_MS}ms`,
    '--retry-period',
    `${RETRY_PERIOD_MS}ms`,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env: serverEnv() });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`replica ${id} exited with code ${child.exitCode} before it was ready`);
    const ready = await fetch(`${url}/readyz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ready) return { id, url, child };
    if (Date.now() > deadline) throw new Error(`replica ${id} was not ready within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function leads(replica: Replica): Promise<boolean> {
  const text = await fetch(`${replica.url}/metrics`).then((res) => res.text());
  return /^berth_leader 1/m.test(text);
}

/** The leader, once exactly one of `replicas` says it leads. */
async function leaderOf(replicas: Replica[]): Promise<Replica> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const flags = await Promise.all(replicas.map(leads));
    const leaders = replicas.filter((_, i) => flags[i]);
    if (leaders.length === 1) return leaders[0];
    if (Date.now() > deadline) throw new Error(`${leaders.length} replicas lead after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  await docker
    .getImage(IMAGE)
    .inspect()
    .catch(() => {
      throw new Error(`image ${IMAGE} is missing; run bash .ci/provision first`);
    });
  const database = `berth_bench_failover_${randomBytes(3).toString('hex')}`;
  await sql(`CREATE DATABASE ${database}`);
  const db = POSTGRES_URL.replace(/\/[^/]+$/, `/${database}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-failover-'));
  fs.mkdirSync(path.join(dir, 'apps'));
  const app = `failover-${randomBytes(3).toString('hex')}`;
  console.log(
    `berth bench:failover — ${KILLS} SIGKILLs of the leader, lease ${LEASE_DURATION_MS} ms / renew ${RENEW_DEADLINE_MS} ms / retry ${RETRY_PERIOD_MS} ms, ` +
      `${RUNS_PER_KILL} runs in flight at each (--max-parallel ${MAX_PARALLEL}), PostgreSQL advisory lock`,
  );
  const since = Date.now();
  let replicas: Replica[] = [await startReplica('replica-a', db, dir), await startReplica('replica-b', db, dir)];
  const watchers: RunWatcher[] = [];
  const asked: RunAnswer[] = [];
  const failovers: number[] = [];
  try {
    await api(`${replicas[0].url}/apps/`, 'POST', { name: app, image: IMAGE, command: ['sh', '-c', 'echo run $TAG; sleep 2; exit 0'] });
    for (let kill = 0; kill < KILLS; kill++) {
      const leader = await leaderOf(replicas);
      const survivor = replicas.find((r) => r !== leader)!;
      const watcher = new RunWatcher();
      watchers.push(watcher);
      await watcher.open(survivor.url, app);
      // Runs in flight: asked of the follower (the change feed wakes the leader), some Running at the kill.
      for (let i = 0; i < RUNS_PER_KILL; i++) asked.push(await api<RunAnswer>(`${survivor.url}/apps/${app}/run/`, 'POST', { env: { TAG: `k${kill}-${i}` } }));
      await watcher.until('runs to be Running on the leader', () => [...watcher.phases.values()].filter((p) => p === 'Running').length >= 2 || undefined);

      const killedAt = performance.now();
      await killed(leader.child);
      // Asked right after the kill: Pending until the new leader launches it.
      const probe = await api<RunAnswer>(`${survivor.url}/apps/${app}/run/`, 'POST', { env: { TAG: `k${kill}-probe` } });
      asked.push(probe);
      const firstLaunch = await watcher.until(
        'the new leader to launch a run',
        () => {
          const launched = [...watcher.runningAt.values()].filter((at) => at > killedAt);
          return launched.length ? Math.min(...launched) - killedAt : undefined;
        },
        LEASE_DURATION_MS * 4,
      );
      failovers.push(firstLaunch);
      console.log(`  kill ${kill + 1}: ${leader.id} killed; ${survivor.id} launched its first run ${firstLaunch.toFixed(0)} ms later`);
      // The killed replica comes back as a follower.
      const back = await startReplica(leader.id, db, dir);
      replicas = [survivor, back];
    }

    // Every run asked for finishes, once.
    const last = new RunWatcher();
    watchers.push(last);
    await last.open(replicas[0].url, app);
    const runs = await Promise.all(asked.map((run) => api<RunAnswer>(`${replicas[0].url}/apps/${app}/run/${run.id}/`)));
    const unfinished = new Set(runs.filter((r) => !['Succeeded', 'Failed', 'Cancelled'].includes(r.status.phase)).map((r) => r.id));
    await last
      .until(
        'every run to finish',
        () => {
          for (const [id, phase] of last.phases) if (['Succeeded', 'Failed', 'Cancelled'].includes(phase)) unfinished.delete(id);
          return unfinished.size === 0 || undefined;
        },
        120_000,
      )
      .catch(() => undefined);
    const final = await Promise.all(asked.map((run) => api<RunAnswer>(`${replicas[0].url}/apps/${app}/run/${run.id}/`)));
    const lost = final.filter((r) => r.status.phase !== 'Succeeded' || r.status.exitCode !== 0);
    const creates = await createsPerRun(docker, app, since);
    const doubled = asked.filter((run) => (creates.get(run.metadata.uid) ?? 0) > 1);
    for (const run of lost) console.log(`  lost: ${run.metadata.name} ${run.status.phase} exit ${run.status.exitCode}`);
    for (const run of doubled) console.log(`  doubled: ${run.metadata.name}: ${creates.get(run.metadata.uid)} containers`);

    report(`failover: SIGKILL → first launch by the new leader, p50 (${KILLS} kills)`, median(failovers), 'ms', { op: '<', limit: LEASE_DURATION_MS + 1000 });
    report('failover: p90', percentile(failovers, 90), 'ms');
    report('failover: max', Math.max(...failovers), 'ms');
    report(`runs lost (of ${asked.length})`, lost.length, '', { op: '<=', limit: 0 });
    report(`runs doubled (of ${asked.length})`, doubled.length, '', { op: '<=', limit: 0 });
  } finally {
    for (const watcher of watchers) watcher.close();
    // SIGTERM: each stops after its launches in flight, so none lands after the cleanup.
    await Promise.all(replicas.map((r) => stopped(r.child)));
    const left = await docker.listContainers({ all: true, filters: { label: [`${LABEL_APP}=${app}`] } });
    await Promise.all(
      left.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
    await sql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`bench:failover failed: ${err.message}`);
  process.exit(1);
});
