import { EventEmitter } from 'node:events';
import { randomUUID, randomBytes } from 'node:crypto';
import { Op, QueryTypes, Sequelize, UniqueConstraintError, WhereOptions } from 'sequelize';
import { ConflictError, NotFoundError } from '../errors';
import {
  API_VERSION,
  App,
  AppSource,
  AppSpec,
  AppStatus,
  Run,
  RunOverrides,
  RunPhase,
  RunStatus,
  TERMINAL_PHASES,
} from '../spec/types';
import { connect, DatabaseLocation } from './db';
import { migrate } from './migrations';
import { AppRow, defineModels, Models, RunRow } from './models';

export type StoredApp = App & { id: number };
export type StoredRun = Run & { id: number; appId: number };

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type StoreEvent =
  | { type: ChangeType; kind: 'App'; object: StoredApp }
  | { type: ChangeType; kind: 'Run'; object: StoredRun };

export interface Page<T> {
  items: T[];
  total: number;
}

export interface AppListOptions {
  limit?: number;
  offset?: number;
  /** Equality selector on labels: every pair must match. */
  labels?: Record<string, string>;
  /** Only Apps whose source is one of these. */
  sources?: AppSource[];
  /** Only Apps with one of these names (the folder source looks up the names a batch of files declares). */
  names?: string[];
}

export interface RunListOptions {
  appId?: number;
  phases?: RunPhase[];
  limit?: number;
  offset?: number;
}

export interface NewApp {
  name: string;
  labels?: Record<string, string>;
  spec: AppSpec;
  source: AppSource;
  status?: Omit<AppStatus, 'source'>;
}

export interface AppChange {
  labels?: Record<string, string>;
  spec?: AppSpec;
  status?: Omit<AppStatus, 'source'>;
  source?: AppSource;
}

export interface NewRun {
  /** Absent: `<app>-<random>`, like generateName. */
  name?: string;
  labels?: Record<string, string>;
  overrides?: RunOverrides;
  idempotencyKey?: string;
  /** Refuse (409) when the App has a run that has not finished: concurrencyPolicy Forbid. */
  forbidIfActive?: boolean;
}

/** An active run as admission sees it: who, which App, and its status. */
export interface ActiveRunState {
  id: number;
  appId: number;
  name: string;
  status: RunStatus;
}

/** A precondition on a write: the resourceVersion the writer last read. */
export interface Precondition {
  resourceVersion?: string;
}

export interface StoredLogs {
  content: string;
  /** How many bytes of the oldest output were dropped to keep the tail within bounds. */
  droppedBytes: number;
}

/** The part of a sqlite3 Database that plain reads use. */
interface SqliteConnection {
  all(sql: string, values: unknown[], callback: (err: Error | null, rows: unknown[]) => void): void;
  run(sql: string, values: unknown[], callback: (this: { changes: number }, err: Error | null) => void): void;
}

/** The columns of an App row under the names the model gives them, for plain queries. */
const APP_SELECT =
  'SELECT id, name, uid, generation, resource_version AS "resourceVersion", labels, spec, status, created_at AS "createdAt" FROM apps';

/** The columns of a Run row under the names the model gives them, for plain queries. */
const RUN_SELECT =
  'SELECT id, name, uid, app_id AS "appId", app_name AS "appName", generation, resource_version AS "resourceVersion", phase, ' +
  'idempotency_key AS "idempotencyKey", labels, spec, status, created_at AS "createdAt" FROM runs';

const ACTIVE_PHASES: RunPhase[] = [RunPhase.Pending, RunPhase.Running];

/**
 * The store of desired and observed state: Apps, Runs and run logs, on
 * SQLite or PostgreSQL. Every write bumps the object's resourceVersion and
 * emits a `change` event; writes carrying a stale resourceVersion are refused.
 */
export class Store extends EventEmitter<{ change: [StoreEvent] }> {
  private readonly models: Models;
  /** Serialises run creation per App so concurrencyPolicy Forbid and idempotency keys hold under concurrent requests. */
  private readonly runCreation = new Map<number, Promise<unknown>>();

  private constructor(
    readonly sequelize: Sequelize,
    /** This store's identity: the workloads launched for its runs carry it. */
    readonly id: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.models = defineModels(sequelize);
  }

  /** Connects, brings the schema up to date, and returns a ready store. */
  static async open(location: DatabaseLocation): Promise<Store> {
    const sequelize = await connect(location);
    try {
      await migrate(sequelize);
      const [row] = (await sequelize.query(`SELECT value FROM berth_settings WHERE key = 'store.id'`, { type: QueryTypes.SELECT })) as { value: string }[];
      return new Store(sequelize, row.value);
    } catch (err) {
      await sequelize.close().catch(() => undefined);
      throw err;
    }
  }

  get dialect(): string {
    return this.sequelize.getDialect();
  }

  async close(): Promise<void> {
    await this.sequelize.close();
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await this.sequelize.query('SELECT 1');
  }

  // ---- Apps ----

  async createApp(input: NewApp): Promise<StoredApp> {
    try {
      const row = await this.models.App.create(newAppRow(input));
      return this.emitApp('ADDED', row);
    } catch (err) {
      if (err instanceof UniqueConstraintError) throw new ConflictError(`app "${input.name}" already exists`);
      throw err;
    }
  }

  /**
   * Creates many Apps in one transaction (the folder source's start-up scan
   * over thousands of files), emitting ADDED for each. All or none: a name
   * that exists already fails the whole batch with a ConflictError.
   */
  async createApps(inputs: NewApp[]): Promise<StoredApp[]> {
    if (inputs.length === 0) return [];
    const rows = inputs.map(newAppRow);
    let created: AppRow[] = [];
    try {
      created = await this.sequelize.transaction(async (transaction) => {
        const found: AppRow[] = [];
        // Bounded statements: SQLite caps the variables of one statement.
        for (let i = 0; i < rows.length; i += 200) {
          const chunk = rows.slice(i, i + 200);
          await this.models.App.bulkCreate(chunk, { transaction });
          found.push(...(await this.models.App.findAll({ where: { name: { [Op.in]: chunk.map((r) => r.name) } }, transaction })));
        }
        return found;
      });
    } catch (err) {
      if (err instanceof UniqueConstraintError) throw new ConflictError(`an app of this batch already exists: ${err.message}`);
      throw err;
    }
    return created.map((row) => this.emitApp('ADDED', row));
  }

  /** By numeric id or by name. */
  async getApp(ref: string | number): Promise<StoredApp | null> {
    // The API's hottest read. A plain query, because sequelize's model path on
    // SQLite runs an extra `PRAGMA table_info` before every SELECT.
    const where = refWhere(ref);
    const [column, value] = 'id' in where ? ['id', where.id] : ['name', where.name];
    const rows = await this.select<AppRow>(`${APP_SELECT} WHERE ${column} = ?`, [value]);
    return rows.length ? toApp(rows[0]) : null;
  }

  async mustGetApp(ref: string | number): Promise<StoredApp> {
    const app = await this.getApp(ref);
    if (!app) throw new NotFoundError('app', ref);
    return app;
  }

  async listApps(options: AppListOptions = {}): Promise<Page<StoredApp>> {
    if (this.dialect === 'sqlite' && !options.sources && !options.names) return this.listAppsPlainly(options);
    const where: Record<string | symbol, unknown> = {};
    if (options.sources) where.source = { [Op.in]: options.sources };
    if (options.names) where.name = { [Op.in]: options.names };
    const labelClauses = Object.entries(options.labels ?? {}).map(([key, value]) =>
      Sequelize.where(this.jsonField('labels', key), value),
    );
    const fullWhere: WhereOptions = labelClauses.length ? { [Op.and]: [where, ...labelClauses] } : where;
    const { rows, count } = await this.models.App.findAndCountAll({
      where: fullWhere,
      order: [['id', 'ASC']],
      limit: options.limit,
      offset: options.offset,
    });
    return { items: rows.map(toApp), total: count };
  }

  /** listApps for SQLite by label, in plain queries (see `select`); counts only when the page does not tell the total. */
  private async listAppsPlainly(options: AppListOptions): Promise<Page<StoredApp>> {
    const labels = Object.entries(options.labels ?? {});
    const where = labels.length ? ` WHERE ${labels.map(() => 'json_extract(labels, ?) = ?').join(' AND ')}` : '';
    const values = labels.flatMap(([key, value]) => [`$."${key.replace(/"/g, '""')}"`, value]);
    const offset = options.offset ?? 0;
    const page = options.limit === undefined ? '' : ' LIMIT ? OFFSET ?';
    const pageValues = options.limit === undefined ? [] : [options.limit, offset];
    const sql = `${APP_SELECT}${where} ORDER BY id ASC${page || (offset ? ' LIMIT -1 OFFSET ?' : '')}`;
    const rows = await this.select<AppRow>(sql, [...values, ...(page ? pageValues : offset ? [offset] : [])]);
    const pageIsShort = options.limit === undefined || rows.length < options.limit;
    let total = offset + rows.length;
    if (!pageIsShort || (rows.length === 0 && offset > 0)) {
      const [{ count }] = await this.select<{ count: number }>(`SELECT COUNT(*) AS count FROM apps${where}`, values);
      total = Number(count);
    }
    return { items: rows.map(toApp), total };
  }

  /**
   * Applies a change to an App. The generation is bumped when the spec
   * changes; the resourceVersion on every write.
   */
  async updateApp(ref: string | number, change: AppChange, pre: Precondition = {}): Promise<StoredApp> {
    const current = await this.mustGetApp(ref);
    checkPrecondition('app', current.metadata.name, current.metadata.resourceVersion, pre);
    const specChanged = change.spec !== undefined && !sameJson(change.spec, current.spec);
    const source = change.source ?? current.status.source;
    const values = {
      labels: change.labels ?? current.metadata.labels,
      spec: change.spec ?? current.spec,
      status: change.status ? { ...change.status, source } : { ...current.status, source },
      source,
      generation: current.metadata.generation + (specChanged ? 1 : 0),
      resourceVersion: Number(current.metadata.resourceVersion) + 1,
    };
    const [count] = await this.models.App.update(values, {
      where: { id: current.id, resourceVersion: Number(current.metadata.resourceVersion) },
    });
    if (count === 0) throw staleWrite('app', current.metadata.name);
    const row = await this.models.App.findByPk(current.id);
    if (!row) throw new NotFoundError('app', ref);
    return this.emitApp('MODIFIED', row);
  }

  /** Deletes an App and its runs (DELETED events for each, so the controller stops what still runs). */
  async deleteApp(ref: string | number, pre: Precondition = {}): Promise<StoredApp> {
    const current = await this.mustGetApp(ref);
    checkPrecondition('app', current.metadata.name, current.metadata.resourceVersion, pre);
    const count = await this.models.App.destroy({
      where: { id: current.id, resourceVersion: Number(current.metadata.resourceVersion) },
    });
    if (count === 0) throw staleWrite('app', current.metadata.name);
    const runs = await this.models.Run.findAll({ where: { appId: current.id } });
    await this.models.Run.destroy({ where: { appId: current.id } });
    await this.models.RunLog.destroy({ where: { runId: { [Op.in]: runs.map((r) => r.id) } } });
    this.emit('change', { type: 'DELETED', kind: 'App', object: current });
    for (const run of runs) this.emit('change', { type: 'DELETED', kind: 'Run', object: toRun(run) });
    return current;
  }

  // ---- Runs ----

  /**
   * Records a request for a run of an App: a Pending Run that snapshots the
   * App's spec with the overrides applied. Executing it is the controller's job.
   * Returns `created: false` with the earlier run for a repeated idempotency key.
   */
  async createRun(app: StoredApp, input: NewRun = {}): Promise<{ run: StoredRun; created: boolean }> {
    return this.serialisePerApp(app.id, async () => {
      if (input.idempotencyKey) {
        const earlier = await this.models.Run.findOne({ where: { appId: app.id, idempotencyKey: input.idempotencyKey } });
        if (earlier) return { run: toRun(earlier), created: false };
      }
      if (input.forbidIfActive) {
        const active = await this.models.Run.findOne({ where: { appId: app.id, phase: { [Op.in]: ACTIVE_PHASES } } });
        if (active) {
          throw new ConflictError(
            `app "${app.metadata.name}" has concurrencyPolicy Forbid and run "${active.name}" is still ${active.phase}`,
          );
        }
      }
      const overrides = input.overrides ?? {};
      const template: AppSpec = {
        ...app.spec,
        command: overrides.command ?? app.spec.command,
        env: { ...app.spec.env, ...(overrides.env ?? {}) },
      };
      const name = input.name ?? `${app.metadata.name}-${randomBytes(4).toString('hex')}`;
      const status: RunStatus = { phase: RunPhase.Pending, attempts: 0 };
      try {
        const row = await this.models.Run.create({
          name,
          uid: randomUUID(),
          appId: app.id,
          appName: app.metadata.name,
          generation: 1,
          resourceVersion: 1,
          phase: status.phase,
          idempotencyKey: input.idempotencyKey ?? null,
          labels: input.labels ?? {},
          spec: { app: app.metadata.name, ...overrides, template },
          status,
        });
        return { run: this.emitRun('ADDED', row), created: true };
      } catch (err) {
        if (err instanceof UniqueConstraintError) throw new ConflictError(`run "${name}" already exists`);
        throw err;
      }
    });
  }

  /** By numeric id or name; within one App when `appId` is given. */
  async getRun(ref: string | number, appId?: number): Promise<StoredRun | null> {
    // The controller reads a run on every reconcile: a plain query (see `select`).
    const where = refWhere(ref);
    const [column, value] = 'id' in where ? ['id', where.id] : ['name', where.name];
    const sql = `${RUN_SELECT} WHERE ${column} = ?${appId === undefined ? '' : ' AND app_id = ?'}`;
    const rows = await this.select<RunRow>(sql, appId === undefined ? [value] : [value, appId]);
    return rows.length ? toRun(rows[0]) : null;
  }

  async mustGetRun(ref: string | number, appId?: number): Promise<StoredRun> {
    const run = await this.getRun(ref, appId);
    if (!run) throw new NotFoundError('run', ref);
    return run;
  }

  /** By metadata.uid: how the controller maps a workload (labelled with its run's uid) back to the run. */
  async getRunByUid(uid: string): Promise<StoredRun | null> {
    const rows = await this.select<RunRow>(`${RUN_SELECT} WHERE uid = ?`, [uid]);
    return rows.length ? toRun(rows[0]) : null;
  }

  /** Newest first. */
  async listRuns(options: RunListOptions = {}): Promise<Page<StoredRun>> {
    const where: Record<string, unknown> = {};
    if (options.appId !== undefined) where.appId = options.appId;
    if (options.phases) where.phase = { [Op.in]: options.phases };
    const { rows, count } = await this.models.Run.findAndCountAll({
      where,
      order: [['id', 'DESC']],
      limit: options.limit,
      offset: options.offset,
    });
    return { items: rows.map(toRun), total: count };
  }

  /** Runs that are Pending or Running, oldest first (the order they are started in). */
  async listActiveRuns(): Promise<StoredRun[]> {
    const rows = await this.select<RunRow>(`${RUN_SELECT} WHERE phase IN (?, ?) ORDER BY id ASC`, ACTIVE_PHASES);
    return rows.map(toRun);
  }

  /**
   * The same runs as `listActiveRuns`, without their specs: what admission
   * decisions read, many times per finished run, so they skip parsing templates.
   */
  async listActiveRunStates(): Promise<ActiveRunState[]> {
    const rows = await this.select<{ id: number; appId: number; name: string; status: RunStatus | string }>(
      'SELECT id, app_id AS "appId", name, status FROM runs WHERE phase IN (?, ?) ORDER BY id ASC',
      ACTIVE_PHASES,
    );
    return rows.map((row) => ({ id: row.id, appId: row.appId, name: row.name, status: parseJson(row.status) }));
  }

  /**
   * Writes a run's status, provided nobody wrote the run since `run` was read
   * (otherwise a ConflictError: read again and retry).
   */
  async updateRunStatus(run: StoredRun, status: RunStatus): Promise<StoredRun> {
    const version = Number(run.metadata.resourceVersion);
    const changed = await this.execute(
      'UPDATE runs SET status = ?, phase = ?, resource_version = ?, updated_at = ? WHERE id = ? AND resource_version = ?',
      [JSON.stringify(status), status.phase, version + 1, this.now(), run.id, version],
    );
    if (changed === 0) {
      const exists = await this.select(`SELECT id FROM runs WHERE id = ?`, [run.id]);
      if (!exists.length) throw new NotFoundError('run', run.metadata.name);
      throw staleWrite('run', run.metadata.name);
    }
    // The row is what was read plus this write: no need to read it back.
    const written: StoredRun = { ...run, metadata: { ...run.metadata, resourceVersion: String(version + 1) }, status: JSON.parse(JSON.stringify(status)) as RunStatus };
    this.emit('change', { type: 'MODIFIED', kind: 'Run', object: written });
    return written;
  }

  /**
   * Reads a run, changes its status with `mutate`, and writes it back,
   * retrying when another writer got there first. `mutate` may throw to refuse.
   */
  async mutateRunStatus(id: number, mutate: (run: StoredRun) => RunStatus): Promise<StoredRun> {
    for (let attempt = 0; ; attempt++) {
      const run = await this.mustGetRun(id);
      try {
        return await this.updateRunStatus(run, mutate(run));
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 20) throw err;
      }
    }
  }

  /** Deletes finished runs of an App beyond the newest `keep`; returns those deleted. */
  async pruneFinishedRuns(appId: number, keep: number): Promise<StoredRun[]> {
    const old = await this.models.Run.findAll({
      where: { appId, phase: { [Op.in]: TERMINAL_PHASES as RunPhase[] } },
      order: [['id', 'DESC']],
      offset: keep,
    });
    if (old.length === 0) return [];
    const ids = old.map((r) => r.id);
    await this.models.Run.destroy({ where: { id: { [Op.in]: ids } } });
    await this.models.RunLog.destroy({ where: { runId: { [Op.in]: ids } } });
    const runs = old.map(toRun);
    for (const run of runs) this.emit('change', { type: 'DELETED', kind: 'Run', object: run });
    return runs;
  }

  // ---- Logs ----

  async setLogs(runId: number, logs: StoredLogs): Promise<void> {
    await this.execute(
      'INSERT INTO run_logs (run_id, content, dropped_bytes, updated_at) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (run_id) DO UPDATE SET content = excluded.content, dropped_bytes = excluded.dropped_bytes, updated_at = excluded.updated_at',
      [runId, logs.content, logs.droppedBytes, this.now()],
    );
  }

  async getLogs(runId: number): Promise<StoredLogs | null> {
    const row = await this.models.RunLog.findByPk(runId);
    return row ? { content: row.content, droppedBytes: Number(row.droppedBytes) } : null;
  }

  // ---- internals ----

  /**
   * A plain SELECT for hot reads. On SQLite it goes straight to the
   * connection: sequelize wraps every query in `serialize()` (one query in
   * flight at a time, each waiting for the previous one's callback) and runs
   * a `PRAGMA table_info` before each model SELECT.
   */
  private async select<T extends object>(sql: string, values: unknown[]): Promise<T[]> {
    if (this.dialect !== 'sqlite') {
      return (await this.sequelize.query(sql, { replacements: values, type: QueryTypes.SELECT, raw: true })) as T[];
    }
    const manager = this.sequelize.connectionManager as unknown as { getConnection(options: object): Promise<SqliteConnection> };
    const connection = await manager.getConnection({});
    return new Promise((resolve, reject) =>
      connection.all(sql, values, (err, rows) => (err ? reject(err) : resolve(rows as T[]))),
    );
  }

  /** A plain write (see `select`); returns how many rows it changed. */
  private async execute(sql: string, values: unknown[]): Promise<number> {
    if (this.dialect !== 'sqlite') {
      const [, meta] = await this.sequelize.query(sql, { replacements: values, type: QueryTypes.UPDATE, raw: true });
      return Number(meta);
    }
    const manager = this.sequelize.connectionManager as unknown as { getConnection(options: object): Promise<SqliteConnection> };
    const connection = await manager.getConnection({});
    return new Promise((resolve, reject) =>
      connection.run(sql, values, function (err) {
        if (err) reject(err);
        else resolve(this.changes);
      }),
    );
  }

  /** A timestamp as each dialect's DATE columns hold it. */
  private now(): string | Date {
    // sequelize writes SQLite dates as 'YYYY-MM-DD HH:MM:SS.SSS +00:00'; keep the column uniform.
    return this.dialect === 'sqlite' ? new Date().toISOString().replace('T', ' ').replace('Z', ' +00:00') : new Date();
  }

  private jsonField(column: string, key: string) {
    // Label keys are validated (DNS-ish) at the edge, but quote them anyway.
    const escaped = key.replace(/"/g, '""').replace(/'/g, "''");
    return this.dialect === 'postgres'
      ? Sequelize.literal(`("${column}"->>'${escaped}')`)
      : Sequelize.literal(`json_extract("${column}", '$."${escaped}"')`);
  }

  private async serialisePerApp<T>(appId: number, work: () => Promise<T>): Promise<T> {
    const previous = this.runCreation.get(appId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.runCreation.set(appId, settled);
    void settled.then(() => {
      if (this.runCreation.get(appId) === settled) this.runCreation.delete(appId);
    });
    return next;
  }

  private emitApp(type: ChangeType, row: AppRow): StoredApp {
    const app = toApp(row);
    this.emit('change', { type, kind: 'App', object: app });
    return app;
  }

  private emitRun(type: ChangeType, row: RunRow): StoredRun {
    const run = toRun(row);
    this.emit('change', { type, kind: 'Run', object: run });
    return run;
  }
}

/** The row of a new App: generation and resourceVersion 1, its source recorded in status. */
function newAppRow(input: NewApp) {
  return {
    name: input.name,
    uid: randomUUID(),
    generation: 1,
    resourceVersion: 1,
    source: input.source,
    labels: input.labels ?? {},
    spec: input.spec,
    status: { ...(input.status ?? {}), source: input.source },
  };
}

function refWhere(ref: string | number): { id: number } | { name: string } {
  if (typeof ref === 'number') return { id: ref };
  return /^[0-9]+$/.test(ref) ? { id: Number(ref) } : { name: ref };
}

function checkPrecondition(kind: string, name: string, current: string, pre: Precondition): void {
  if (pre.resourceVersion !== undefined && pre.resourceVersion !== current) {
    throw new ConflictError(
      `${kind} "${name}" was modified: resourceVersion ${pre.resourceVersion} is stale (current is ${current}); read it again and retry`,
    );
  }
}

function staleWrite(kind: string, name: string): ConflictError {
  return new ConflictError(`${kind} "${name}" was modified concurrently; read it again and retry`);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return value;
}

function parseJson<T>(value: T | string): T {
  // sqlite3 hands JSON columns back as text in some query paths.
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}

function toApp(row: AppRow): StoredApp {
  return {
    id: row.id,
    apiVersion: API_VERSION,
    kind: 'App',
    metadata: {
      name: row.name,
      labels: parseJson(row.labels),
      uid: row.uid,
      generation: row.generation,
      resourceVersion: String(row.resourceVersion),
      creationTimestamp: new Date(row.createdAt).toISOString(),
    },
    spec: parseJson(row.spec),
    status: parseJson(row.status),
  };
}

function toRun(row: RunRow): StoredRun {
  return {
    id: row.id,
    appId: row.appId,
    apiVersion: API_VERSION,
    kind: 'Run',
    metadata: {
      name: row.name,
      labels: parseJson(row.labels),
      uid: row.uid,
      generation: row.generation,
      resourceVersion: String(row.resourceVersion),
      creationTimestamp: new Date(row.createdAt).toISOString(),
    },
    spec: parseJson(row.spec),
    status: parseJson(row.status),
  };
}
