/**
 * Many runs inserted by one INSERT statement, on SQLite (the scheduler's runs
 * of one due time, see Store.insertRuns).
 *
 * Not in a transaction, on purpose. sequelize gives a SQLite transaction a
 * connection of its own and holds the database's write lock from BEGIN to
 * COMMIT, while its model queries still run a `PRAGMA table_info` on the
 * default connection; that connection serves one statement at a time, and a
 * write queued on it waits (busy_timeout, 5 s) for the very lock the
 * transaction holds. A transaction of hundreds of statements then advanced
 * one statement per 5 s, and every other write in berth failed meanwhile.
 * One statement takes the write lock and releases it within itself.
 *
 * The checks insertRun makes inside its statement or transaction are made
 * here by three SELECTs first: Store.insertRuns holds each App's insertions
 * in this process while it runs, and SQLite means one process, so only the
 * unique indexes are left to catch a race (a run of that name made by hand
 * at the same moment). Then the statement fails whole, and the caller
 * inserts each run on its own.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError } from '../errors';
import { RunPhase, type RunStatus } from '../model/types';
import type { RunRow } from './models';
import { marks, type PlainSql } from './plain-sql';
import { RUN_SELECT, toRun } from './rows';
import type { NewRun, RunInsertion, StoredApp, StoredRun } from './types';

/** Runs per statement: 13 parameters each, well within SQLite's 32,766. */
export const RUNS_PER_STATEMENT = 1000;

const COLUMNS = 'name, uid, app_id, app_name, generation, resource_version, phase, idempotency_key, labels, spec, status, created_at, updated_at';

/** The runs' insertions in order, or the refusal of one of them (as `insertRun` would answer it alone). At most RUNS_PER_STATEMENT items. */
export async function insertRunsAtOnce(sql: PlainSql, items: { app: StoredApp; input: NewRun }[]): Promise<(RunInsertion | Error)[]> {
  const keys = items.flatMap(({ input }) => (input.idempotencyKey ? [input.idempotencyKey] : []));
  const replays = new Map<string, StoredRun>();
  if (keys.length) {
    for (const row of await sql.select<RunRow>(`${RUN_SELECT} WHERE idempotency_key IN (${marks(keys)})`, keys)) {
      replays.set(keyOf(row.appId, row.idempotencyKey!), toRun(row));
    }
  }
  const exclusive = [...new Set(items.filter(({ input }) => input.exclusive).map(({ app }) => app.id))];
  const active = new Map<number, { name: string; phase: RunPhase }>();
  if (exclusive.length) {
    const rows = await sql.select<{ appId: number; name: string; phase: RunPhase }>(
      `SELECT app_id AS "appId", name, phase FROM runs WHERE phase IN (?, ?) AND app_id IN (${marks(exclusive)}) ORDER BY id`,
      [RunPhase.Pending, RunPhase.Running, ...exclusive],
    );
    for (const row of rows) if (!active.has(row.appId)) active.set(row.appId, { name: row.name, phase: row.phase });
  }
  const names = items.map(({ input }) => input.name);
  const taken = new Set((await sql.select<{ name: string }>(`SELECT name FROM runs WHERE name IN (${marks(names)})`, names)).map((row) => row.name));

  // Decided in order, each run seeing those before it in the batch as if they were inserted already.
  const answers: (RunInsertion | Error | { sameAs: number } | { insert: true })[] = [];
  const batchKeys = new Map<string, number>();
  const values: unknown[] = [];
  const now = sql.now();
  for (const [at, { app, input }] of items.entries()) {
    const key = input.idempotencyKey === undefined ? undefined : keyOf(app.id, input.idempotencyKey);
    const replay = key === undefined ? undefined : replays.get(key);
    if (replay) {
      answers[at] = { outcome: 'replayed', run: replay };
      continue;
    }
    if (key !== undefined && batchKeys.has(key)) {
      answers[at] = { sameAs: batchKeys.get(key)! };
      continue;
    }
    const running = input.exclusive ? active.get(app.id) : undefined;
    if (running) {
      answers[at] = { outcome: 'active', active: running };
      continue;
    }
    if (taken.has(input.name)) {
      answers[at] = new ConflictError(`run "${input.name}" already exists`);
      continue;
    }
    taken.add(input.name);
    if (key !== undefined) batchKeys.set(key, at);
    if (input.exclusive) active.set(app.id, { name: input.name, phase: RunPhase.Pending });
    const status: RunStatus = { phase: RunPhase.Pending, attempts: 0 };
    values.push(
      input.name,
      randomUUID(),
      app.id,
      app.metadata.name,
      1,
      1,
      status.phase,
      input.idempotencyKey ?? null,
      JSON.stringify(input.labels ?? {}),
      JSON.stringify(input.spec),
      JSON.stringify(status),
      now,
      now,
    );
    answers[at] = { insert: true };
  }

  const inserted = items.filter((_, at) => 'insert' in answers[at]).map(({ input }) => input.name);
  if (inserted.length) {
    const row = `(${marks(Array.from({ length: 13 }))})`;
    await sql.execute(`INSERT INTO runs (${COLUMNS}) VALUES ${inserted.map(() => row).join(', ')}`, values);
    const rows = await sql.select<RunRow>(`${RUN_SELECT} WHERE name IN (${marks(inserted)})`, inserted);
    const byName = new Map(rows.map((r) => [r.name, toRun(r)]));
    items.forEach(({ input }, at) => {
      if ('insert' in answers[at]) answers[at] = { outcome: 'created', run: byName.get(input.name)! };
    });
  }
  return answers.map((answer) => {
    if (!('sameAs' in answer)) return answer as RunInsertion | Error;
    const first = answers[answer.sameAs] as RunInsertion;
    return first.outcome === 'created' ? { outcome: 'replayed', run: first.run } : first;
  });
}

const keyOf = (appId: number, key: string): string => `${appId}\u0000${key}`;
