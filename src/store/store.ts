import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { ForeignKeyConstraintError, Op, QueryTypes, Sequelize, Transaction, UniqueConstraintError, WhereOptions } from 'sequelize';
import { ConflictError, NotFoundError } from '../errors';
import { AppSource, RunPhase, RunStatus, ScheduleStatus, TERMINAL_PHASES } from '../model/types';
import { ChangeListener, noticeOf, CHANGE_CHANNEL, type ChangeNotice } from './change-feed';
import { connect, DatabaseLocation, isPostgresUrl } from './db';
import { migrate, scheduledWhere } from './migrations';
import { LeadershipRecords } from './leadership';
import { NotificationRecords } from './notifications';
import { AppRow, defineModels, Models, RunRow } from './models';
import { isConstraintViolation, isForeignKeyViolation, marks, PlainSql } from './plain-sql';
import { gatheredInserts, gatheredReads, type NewAppRow } from './gathered-apps';
import type { Gathering } from './gathering';
import { KnownApps } from './known-apps';
import { AppCache, PAGE_OF_VERSIONS, pageOfVersions, VERSION_COLUMNS } from './app-cache';
import { PageMemo, type Stamp, STAMP_COLUMNS } from './page-memo';
import { insertRunsAtOnce, RUNS_PER_STATEMENT } from './run-batch';
import { APP_SELECT, checkPrecondition, newAppRow, parseJson, refWhere, RUN_SELECT, sameJson, staleWrite, toApp, toRun } from './rows';
import type {
  ActiveRunState,
  AppChange,
  AppListOptions,
  ChangeType,
  NewApp,
  NewRun,
  Page,
  Precondition,
  RunInsertion,
  RunListOptions,
  StoredApp,
  StoredLogs,
  StoredRun,
  StoreEvent,
} from './types';

export type * from './types';
export type { LaunchRecord, LeaderRecord, Term } from './leadership';

const ACTIVE_PHASES: RunPhase[] = [RunPhase.Pending, RunPhase.Running];

/**
 * The store of desired and observed state: Apps, Runs and run logs, on
 * SQLite or PostgreSQL. Every write bumps the object's resourceVersion and
 * emits a `change` event; writes carrying a stale resourceVersion are refused.
 */
export class Store extends EventEmitter<{ change: [StoreEvent] }> {
  private readonly models: Models;
  private readonly sql: PlainSql;
  /**
   * Serialises run insertion per App within this process (on SQLite, the only
   * guard there is; SQLite means one replica). Across replicas on PostgreSQL
   * the database decides: see `insertRun`.
   */
  private readonly runCreation = new Map<number, Promise<unknown>>();
  /** Who leads, its epoch, and the launches fenced by it (src/leadership/). */
  readonly leadership: LeadershipRecords;
  /** The webhook outbox and its delivery attempts (src/controller/notifier.ts). */
  readonly notifications: NotificationRecords;
  /** This instance, as the origin of the changes it publishes to other replicas. */
  private readonly instance = randomUUID();
  /** Apps as last read by a plain list, reused while their version is the same (see `listAppsPlainly`). */
  private readonly appCache = new AppCache();
  /** The pages of those lists, reused while the database is unchanged (./page-memo.ts). */
  private readonly pageMemo: PageMemo;
  /** On SQLite: creates and reads of one App, gathered into shared statements under load (./gathered-apps.ts). */
  private readonly appInserts: Gathering<NewAppRow, AppRow>;
  private readonly appReads: Gathering<string | number, StoredApp | null>;
  /** On SQLite: reads of one App answered from memory while this store has not written one (./known-apps.ts). */
  private readonly knownApps?: KnownApps;
  /** On PostgreSQL: other replicas' changes, re-emitted here (./change-feed.ts). */
  private listener?: ChangeListener;

  private constructor(
    readonly sequelize: Sequelize,
    /** This store's identity: the workloads launched for its runs carry it. */
    readonly id: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.models = defineModels(sequelize);
    this.sql = new PlainSql(sequelize);
    this.appInserts = gatheredInserts(this.sql);
    this.appReads = gatheredReads(this.sql);
    if (this.dialect === 'sqlite') this.knownApps = new KnownApps(this.sql, (ref) => this.appReads.add(ref));
    this.pageMemo = new PageMemo(this.sql);
    this.leadership = new LeadershipRecords(sequelize);
    this.notifications = new NotificationRecords(sequelize, this.sql);
  }

  /** Connects, brings the schema up to date, and returns a ready store. */
  static async open(location: DatabaseLocation): Promise<Store> {
    const sequelize = await connect(location);
    try {
      await migrate(sequelize);
      const [row] = (await sequelize.query(`SELECT value FROM berth_settings WHERE key = 'store.id'`, { type: QueryTypes.SELECT })) as { value: string }[];
      const store = new Store(sequelize, row.value);
      if (isPostgresUrl(location)) {
        const listener = new ChangeListener({ url: location, origin: store.instance, onNotice: (notice) => void store.receive(notice) });
        await listener.start();
        store.listener = listener;
      }
      return store;
    } catch (err) {
      await sequelize.close().catch(() => undefined);
      throw err;
    }
  }

  get dialect(): string {
    return this.sequelize.getDialect();
  }

  async close(): Promise<void> {
    await this.listener?.stop();
    await this.sql.close();
    await this.sequelize.close();
  }

  /** Throws when the database does not answer. */
  async ping(): Promise<void> {
    await this.sequelize.query('SELECT 1');
  }

  // ---- Apps ----

  async createApp(input: NewApp): Promise<StoredApp> {
    return this.writingApps(async () => {
      try {
        const row = this.dialect === 'sqlite' ? await this.appInserts.add(newAppRow(input)) : await this.models.App.create(newAppRow(input));
        return this.emitApp('ADDED', row);
      } catch (err) {
        if (err instanceof UniqueConstraintError || isConstraintViolation(err)) throw new ConflictError(`app "${input.name}" already exists`);
        throw err;
      }
    });
  }

  /**
   * Creates many Apps in one transaction (the folder source's start-up scan
   * over thousands of files), emitting ADDED for each. All or none: a name
   * that exists already fails the whole batch with a ConflictError.
   */
  async createApps(inputs: NewApp[]): Promise<StoredApp[]> {
    return this.writingApps(async () => {
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
    });
  }

  /** By numeric id or by name. */
  async getApp(ref: string | number): Promise<StoredApp | null> {
    // The API's hottest read. A plain query, because sequelize's model path on
    // SQLite runs an extra `PRAGMA table_info` before every SELECT.
    if (this.dialect === 'sqlite') return this.appReads.add(ref);
    const where = refWhere(ref);
    const [column, value] = 'id' in where ? ['id', where.id] : ['name', where.name];
    const rows = await this.sql.select<AppRow>(`${APP_SELECT} WHERE ${column} = ?`, [value]);
    return rows.length ? toApp(rows[0]) : null;
  }

  async mustGetApp(ref: string | number): Promise<StoredApp> {
    const app = await this.getApp(ref);
    if (!app) throw new NotFoundError('app', ref);
    return app;
  }

  /**
   * An App to read and not change, by numeric id or by name: frozen, and on
   * SQLite answered from memory while this store has written no App since it
   * was read (./known-apps.ts). Another connection's write shows within a
   * tenth of a second; this store's own, at once.
   */
  async readApp(ref: string | number): Promise<Readonly<StoredApp> | null> {
    return this.knownApps ? this.knownApps.get(ref) : this.getApp(ref);
  }

  async mustReadApp(ref: string | number): Promise<Readonly<StoredApp>> {
    const app = await this.readApp(ref);
    if (!app) throw new NotFoundError('app', ref);
    return app;
  }

  async listApps(options: AppListOptions = {}): Promise<Page<StoredApp>> {
    if (this.dialect === 'sqlite' && !options.sources && !options.names) return this.listAppsPlainly(options);
    const where: Record<string | symbol, unknown> = {};
    if (options.sources) where.source = { [Op.in]: options.sources };
    if (options.names) where.name = { [Op.in]: options.names };
    const clauses: WhereOptions[] = Object.entries(options.labels ?? {}).map(([key, value]) => Sequelize.where(this.jsonField('labels', key), value));
    if (options.scheduled) clauses.push(Sequelize.literal(scheduledWhere(this.dialect)));
    const fullWhere: WhereOptions = clauses.length ? { [Op.and]: [where, ...clauses] } : where;
    const { rows, count } = await this.models.App.findAndCountAll({
      where: fullWhere,
      order: [['id', 'ASC']],
      limit: options.limit,
      offset: options.offset,
    });
    return { items: rows.map(toApp), total: count };
  }

  /**
   * listApps for SQLite by label, in plain queries (see `select`); counts only
   * when the page does not tell the total.
   *
   * The page is read in two steps: which Apps, at which versions (small
   * columns), then the whole rows of only those not already in `appCache` at
   * that version. Reading and parsing every spec and status was most of a
   * list's cost, and Apps change far less often than they are listed.
   */
  private async listAppsPlainly(options: AppListOptions): Promise<Page<StoredApp>> {
    const labels = Object.entries(options.labels ?? {});
    const conditions = [...labels.map(() => 'json_extract(labels, ?) = ?'), ...(options.scheduled ? [scheduledWhere('sqlite')] : [])];
    const where = conditions.length ? ` WHERE ${conditions.join(' AND ')}` : '';
    const values = labels.flatMap(([key, value]) => [`$."${key.replace(/"/g, '""')}"`, value]);
    const offset = options.offset ?? 0;
    const limit = options.limit ?? (offset ? -1 : undefined);
    const page = limit === undefined ? '' : ' LIMIT ? OFFSET ?';
    // With a limit, the page does not tell the total: it is counted in the same statement.
    const counted = options.limit !== undefined;
    // The page and count as last read, unless the database has changed since (./page-memo.ts).
    const read = await this.pageMemo.read(JSON.stringify([values, options.scheduled, limit, offset, counted]), async () => {
      const sql =
        `SELECT ${STAMP_COLUMNS}, ${PAGE_OF_VERSIONS} AS page${counted ? `, (SELECT COUNT(*) FROM apps${where}) AS total` : ''} ` +
        `FROM (SELECT ${VERSION_COLUMNS} FROM apps${where} ORDER BY id ASC${page})`;
      const [row] = await this.sql.select<Stamp & { page: string; total?: number }>(sql, [
        ...(counted ? values : []),
        ...values,
        ...(page ? [limit, offset] : []),
      ]);
      return { stamp: { changes: row.changes, version: row.version }, versions: pageOfVersions(row.page), total: counted ? Number(row.total) : undefined };
    });
    return {
      items: await this.appCache.read(read.versions, (ids) => this.sql.select<AppRow>(`${APP_SELECT} WHERE id IN (${marks(ids)})`, ids)),
      total: read.total ?? offset + read.versions.length,
    };
  }

  /** The distinct sources of file-owned Apps (`file:<path>`), without reading the Apps themselves. */
  async listFileSources(): Promise<AppSource[]> {
    const rows = await this.sql.select<{ source: AppSource }>(`SELECT DISTINCT source FROM apps WHERE source LIKE 'file:%'`, []);
    return rows.map((row) => row.source);
  }

  /**
   * Applies a change to an App. The generation is bumped when the spec
   * changes; the resourceVersion on every write.
   */
  async updateApp(ref: string | number, change: AppChange, pre: Precondition = {}): Promise<StoredApp> {
    return this.writingApps(async () => {
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
    });
  }

  /**
   * Records where an App's schedule stands. Bookkeeping, not a change of the
   * App: no resourceVersion bump and no event, so a client's precondition is
   * not made stale once a minute.
   */
  async setScheduleStatus(appId: number, status: ScheduleStatus): Promise<void> {
    await this.setScheduleStatuses([{ appId, status }]);
  }

  /** setScheduleStatus for many Apps, in one statement per 200 (a due time's bookkeeping for every App it concerns). */
  async setScheduleStatuses(entries: { appId: number; status: ScheduleStatus }[]): Promise<void> {
    return this.writingApps(async () => {
      for (let i = 0; i < entries.length; i += 200) {
        const chunk = entries.slice(i, i + 200);
        // PostgreSQL types a CASE of parameters as text, which a json column does not take as it is.
        const value = this.dialect === 'postgres' ? 'CAST(? AS json)' : '?';
        const cases = chunk.map(() => `WHEN ? THEN ${value}`).join(' ');
        const values = [...chunk.flatMap(({ appId, status }) => [appId, JSON.stringify(status)]), ...chunk.map(({ appId }) => appId)];
        await this.sql.execute(`UPDATE apps SET schedule_status = CASE id ${cases} END WHERE id IN (${marks(chunk)})`, values);
      }
    });
  }

  /**
   * Deletes an App with its runs, their logs and launch records, all or
   * nothing: one transaction, the rest following by the schema's cascading
   * keys. Emits DELETED for the App and each run once committed, so the
   * controller stops what still runs.
   *
   * A run asked for at the same moment is either in the list deleted (and
   * its DELETED sent) or refused as its App is gone: the App's row is locked
   * first (on SQLite, the whole database: an IMMEDIATE transaction), and a
   * run's insert checks that row under the same lock.
   */
  async deleteApp(ref: string | number, pre: Precondition = {}): Promise<StoredApp> {
    return this.writingApps(async () => {
      const current = await this.mustGetApp(ref);
      checkPrecondition('app', current.metadata.name, current.metadata.resourceVersion, pre);
      const runs = await this.sequelize.transaction({ type: Transaction.TYPES.IMMEDIATE }, async (transaction) => {
        const lock = this.dialect === 'postgres' ? ' FOR UPDATE' : '';
        const [row] = (await this.sequelize.query(`SELECT resource_version AS "resourceVersion" FROM apps WHERE id = :id${lock}`, {
          replacements: { id: current.id },
          type: QueryTypes.SELECT,
          transaction,
        })) as { resourceVersion: number | string }[];
        if (!row) throw new NotFoundError('app', ref);
        if (Number(row.resourceVersion) !== Number(current.metadata.resourceVersion)) throw staleWrite('app', current.metadata.name);
        const deleted = (await this.sequelize.query(`${RUN_SELECT} WHERE app_id = :id`, {
          replacements: { id: current.id },
          type: QueryTypes.SELECT,
          transaction,
        })) as RunRow[];
        await this.sequelize.query('DELETE FROM apps WHERE id = :id', { replacements: { id: current.id }, transaction });
        return deleted.map(toRun);
      });
      this.publish({ type: 'DELETED', kind: 'App', object: current });
      for (const run of runs) this.publish({ type: 'DELETED', kind: 'Run', object: run });
      return current;
    });
  }

  // ---- Runs ----

  /**
   * Inserts a Pending run, atomically with two checks the caller asks for: a
   * repeated idempotency key answers the run it made before (`replayed`), and
   * `exclusive` refuses while the App has a run not finished (`active`, naming
   * it). What the run is — its name, template, whether it must be exclusive —
   * is run policy, decided by the caller (src/controller/run-requests.ts).
   *
   * @throws ConflictError when a run of that name exists.
   */
  async insertRun(app: StoredApp, input: NewRun): Promise<RunInsertion> {
    return this.serialisePerApps([app.id], () => this.insertRunNow(app, input));
  }

  /**
   * Inserts many runs, each as `insertRun` would, at once: the scheduler's
   * runs of one due time, which were made seconds late one by one. Each
   * entry of the answer is that run's insertion, or the error `insertRun`
   * would have thrown for it alone; no run's event is sent before the last
   * run is in.
   *
   * On SQLite, by one INSERT statement per RUNS_PER_STATEMENT (./run-batch.ts
   * says why not a transaction); on PostgreSQL, in one transaction that locks
   * the rows of exclusive Apps as insertRun does. A refusal only the insert
   * finds (a race with another insert, an App deleted meanwhile) undoes the
   * statement or transaction, and then its runs are inserted one by one.
   */
  async insertRuns(items: { app: StoredApp; input: NewRun }[]): Promise<(RunInsertion | Error)[]> {
    const answers: (RunInsertion | Error)[] = [];
    for (let i = 0; i < items.length; i += RUNS_PER_STATEMENT) {
      const chunk = items.slice(i, i + RUNS_PER_STATEMENT);
      const appIds = [...new Set(chunk.map(({ app }) => app.id))];
      answers.push(...(await this.serialisePerApps(appIds, () => this.insertRunsNow(chunk))));
    }
    for (const done of answers) if (!(done instanceof Error) && done.outcome === 'created') this.publish({ type: 'ADDED', kind: 'Run', object: done.run });
    return answers;
  }

  /** insertRuns for one chunk, once its Apps' earlier insertions in this process are done; publishes nothing. */
  private async insertRunsNow(items: { app: StoredApp; input: NewRun }[]): Promise<(RunInsertion | Error)[]> {
    try {
      if (this.dialect !== 'postgres') return await insertRunsAtOnce(this.sql, items);
      return await this.sequelize.transaction(async (transaction) => {
        // As insertRun does for an exclusive insert, in id order so two batches cannot deadlock.
        const exclusive = [...new Set(items.filter(({ input }) => input.exclusive).map(({ app }) => app.id))].sort((a, b) => a - b);
        for (const id of exclusive) await this.lockApp(id, transaction);
        // A name taken (a run made by hand) fails the insert and so the transaction: then one at a time, below.
        const done: RunInsertion[] = [];
        for (const { app, input } of items) done.push(await this.insertRunChecked(app, input, transaction));
        return done;
      });
    } catch (err) {
      if (!(err instanceof UniqueConstraintError || err instanceof ForeignKeyConstraintError || isConstraintViolation(err))) throw err;
      const one: (RunInsertion | Error)[] = [];
      for (const { app, input } of items) one.push(await this.insertRunNow(app, input, false).catch((e: Error) => e));
      return one;
    }
  }

  /** insertRun, once the App's earlier insertions in this process are done; the caller publishes a created run when `publish` is false. */
  private async insertRunNow(app: StoredApp, input: NewRun, publish = true): Promise<RunInsertion> {
    let inserted: RunInsertion;
    try {
      // Exclusive inserts on PostgreSQL lock the App's row first, so another replica's insert for the
      // same App waits for this one to commit and then sees its run as active.
      inserted =
        input.exclusive && this.dialect === 'postgres'
          ? await this.sequelize.transaction(async (transaction) => {
              await this.lockApp(app.id, transaction);
              return this.insertRunChecked(app, input, transaction);
            })
          : await this.insertRunChecked(app, input);
    } catch (err) {
      // The App was deleted since it was read (or is being deleted, and that committed first): no run for it.
      if (err instanceof ForeignKeyConstraintError)
        throw new NotFoundError('app', app.metadata.name, 'it was deleted as the run was asked for; no run was created');
      if (!(err instanceof UniqueConstraintError)) throw err;
      // Another replica inserted a run with this idempotency key between our check and our insert
      // (the unique index on (app_id, idempotency_key) refused ours): answer its run.
      const earlier = input.idempotencyKey ? await this.models.Run.findOne({ where: { appId: app.id, idempotencyKey: input.idempotencyKey } }) : null;
      if (earlier) return { outcome: 'replayed', run: toRun(earlier) };
      throw new ConflictError(`run "${input.name}" already exists`);
    }
    if (publish && inserted.outcome === 'created') this.publish({ type: 'ADDED', kind: 'Run', object: inserted.run });
    return inserted;
  }

  /** On PostgreSQL: holds the App's row until `transaction` ends, so another replica's exclusive insert for it waits. */
  private async lockApp(appId: number, transaction: Transaction): Promise<void> {
    await this.sequelize.query('SELECT id FROM apps WHERE id = :id FOR UPDATE', { replacements: { id: appId }, type: QueryTypes.SELECT, transaction });
  }

  /** insertRun's checks and insert, inside `transaction` when given; emits nothing (the caller does, once committed). */
  private async insertRunChecked(app: StoredApp, input: NewRun, transaction?: Transaction): Promise<RunInsertion> {
    if (input.idempotencyKey) {
      const earlier = await this.models.Run.findOne({ where: { appId: app.id, idempotencyKey: input.idempotencyKey }, transaction });
      if (earlier) return { outcome: 'replayed', run: toRun(earlier) };
    }
    if (input.exclusive) {
      const active = await this.models.Run.findOne({ where: { appId: app.id, phase: { [Op.in]: ACTIVE_PHASES } }, transaction });
      if (active) return { outcome: 'active', active: { name: active.name, phase: active.phase as RunPhase } };
    }
    const status: RunStatus = { phase: RunPhase.Pending, attempts: 0 };
    const row = await this.models.Run.create(
      {
        name: input.name,
        uid: randomUUID(),
        appId: app.id,
        appName: app.metadata.name,
        generation: 1,
        resourceVersion: 1,
        phase: status.phase,
        idempotencyKey: input.idempotencyKey ?? null,
        labels: input.labels ?? {},
        spec: input.spec,
        status,
      },
      { transaction },
    );
    return { outcome: 'created', run: toRun(row) };
  }

  /** By numeric id or name; within one App when `appId` is given. */
  async getRun(ref: string | number, appId?: number): Promise<StoredRun | null> {
    // The controller reads a run on every reconcile: a plain query (see `select`).
    const where = refWhere(ref);
    const [column, value] = 'id' in where ? ['id', where.id] : ['name', where.name];
    const sql = `${RUN_SELECT} WHERE ${column} = ?${appId === undefined ? '' : ' AND app_id = ?'}`;
    const rows = await this.sql.select<RunRow>(sql, appId === undefined ? [value] : [value, appId]);
    return rows.length ? toRun(rows[0]) : null;
  }

  async mustGetRun(ref: string | number, appId?: number): Promise<StoredRun> {
    const run = await this.getRun(ref, appId);
    if (!run) throw new NotFoundError('run', ref);
    return run;
  }

  /** By metadata.uid: how the controller maps a workload (labelled with its run's uid) back to the run. */
  async getRunByUid(uid: string): Promise<StoredRun | null> {
    const rows = await this.sql.select<RunRow>(`${RUN_SELECT} WHERE uid = ?`, [uid]);
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

  /** How many runs are in each phase (phases with none are absent). */
  async countRunsByPhase(): Promise<Partial<Record<RunPhase, number>>> {
    const rows = await this.sql.select<{ phase: RunPhase; count: number | string }>('SELECT phase, COUNT(*) AS count FROM runs GROUP BY phase', []);
    return Object.fromEntries(rows.map((row) => [row.phase, Number(row.count)]));
  }

  /** How many runs are Pending, of one App when `appId` is given: what the caps on waiting runs count. */
  async countPendingRuns(appId?: number): Promise<number> {
    const sql = `SELECT COUNT(*) AS count FROM runs WHERE phase = ?${appId === undefined ? '' : ' AND app_id = ?'}`;
    const rows = await this.sql.select<{ count: number | string }>(sql, appId === undefined ? [RunPhase.Pending] : [RunPhase.Pending, appId]);
    return Number(rows[0]?.count ?? 0);
  }

  /** Runs that are Pending or Running, oldest first (the order they are started in). */
  async listActiveRuns(): Promise<StoredRun[]> {
    const rows = await this.sql.select<RunRow>(`${RUN_SELECT} WHERE phase IN (?, ?) ORDER BY id ASC`, ACTIVE_PHASES);
    return rows.map(toRun);
  }

  /**
   * The same runs as `listActiveRuns`, without their specs: what admission
   * decisions read, many times per finished run, so they skip parsing templates.
   */
  async listActiveRunStates(): Promise<ActiveRunState[]> {
    const rows = await this.sql.select<{ id: number; appId: number; name: string; status: RunStatus | string }>(
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
    const changed = await this.sql.execute(
      'UPDATE runs SET status = ?, phase = ?, resource_version = ?, updated_at = ? WHERE id = ? AND resource_version = ?',
      [JSON.stringify(status), status.phase, version + 1, this.sql.now(), run.id, version],
    );
    if (changed === 0) {
      const exists = await this.sql.select(`SELECT id FROM runs WHERE id = ?`, [run.id]);
      if (!exists.length) throw new NotFoundError('run', run.metadata.name);
      throw staleWrite('run', run.metadata.name);
    }
    // The row is what was read plus this write: no need to read it back.
    const written: StoredRun = {
      ...run,
      metadata: { ...run.metadata, resourceVersion: String(version + 1) },
      status: JSON.parse(JSON.stringify(status)) as RunStatus,
    };
    this.publish({ type: 'MODIFIED', kind: 'Run', object: written });
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
    // One statement: the logs and launch records go with the runs by the schema's cascading keys.
    await this.models.Run.destroy({ where: { id: { [Op.in]: old.map((r) => r.id) } } });
    const runs = old.map(toRun);
    for (const run of runs) this.publish({ type: 'DELETED', kind: 'Run', object: run });
    return runs;
  }

  // ---- Logs ----

  /** Keeps a run's logs; a run deleted meanwhile has none to keep, and this does nothing. */
  async setLogs(runId: number, logs: StoredLogs): Promise<void> {
    try {
      await this.sql.execute(
        'INSERT INTO run_logs (run_id, content, dropped_bytes, updated_at) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (run_id) DO UPDATE SET content = excluded.content, dropped_bytes = excluded.dropped_bytes, updated_at = excluded.updated_at',
        [runId, logs.content, logs.droppedBytes, this.sql.now()],
      );
    } catch (err) {
      if (!isForeignKeyViolation(err)) throw err;
    }
  }

  async getLogs(runId: number): Promise<StoredLogs | null> {
    const row = await this.models.RunLog.findByPk(runId);
    return row ? { content: row.content, droppedBytes: Number(row.droppedBytes) } : null;
  }

  // ---- internals ----

  private jsonField(column: string, key: string) {
    // Label keys are validated (DNS-ish) at the edge, but quote them anyway.
    const escaped = key.replace(/"/g, '""').replace(/'/g, "''");
    return this.dialect === 'postgres' ? Sequelize.literal(`("${column}"->>'${escaped}')`) : Sequelize.literal(`json_extract("${column}", '$."${escaped}"')`);
  }

  /** Runs `work` once the earlier insertions of each of these Apps in this process are done; theirs after it wait for it in turn. */
  private async serialisePerApps<T>(appIds: number[], work: () => Promise<T>): Promise<T> {
    const previous = Promise.all(appIds.map((id) => this.runCreation.get(id)));
    const next = previous.then(work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    for (const id of appIds) this.runCreation.set(id, settled);
    void settled.then(() => {
      for (const id of appIds) if (this.runCreation.get(id) === settled) this.runCreation.delete(id);
    });
    return next;
  }

  /** Emits a change here and, on PostgreSQL, tells the other replicas' stores. */
  private publish(event: StoreEvent): void {
    // Before the listeners hear of it: one that reads the App at once must not find it as it was.
    if (event.kind === 'App') this.knownApps?.forget();
    this.emit('change', event);
    if (!this.listener) return;
    // After the write, outside its transaction; a notice lost (the store closing) only delays the others until their resync.
    void this.sequelize
      .query('SELECT pg_notify(:channel, :payload)', {
        replacements: { channel: CHANGE_CHANNEL, payload: noticeOf(this.instance, event) },
        type: QueryTypes.SELECT,
      })
      .catch(() => undefined);
  }

  /** Another replica's change: re-emitted with the object as it is now (or, deleted, as it was). */
  private async receive(notice: ChangeNotice): Promise<void> {
    try {
      if (notice.type === 'DELETED') {
        if (notice.object) this.emit('change', { type: 'DELETED', kind: notice.kind, object: notice.object } as StoreEvent);
        return;
      }
      if (notice.kind === 'Run') {
        const run = await this.getRun(notice.id);
        if (run) this.emit('change', { type: notice.type, kind: 'Run', object: run });
      } else {
        const app = await this.getApp(notice.id);
        if (app) this.emit('change', { type: notice.type, kind: 'App', object: app });
      }
    } catch {
      // The store is closing, or the database is away: the controller's resync covers what was missed.
    }
  }

  /**
   * Every App write: whatever came of it (it may have committed and failed
   * after), the Apps kept for reads of one are forgotten before it returns
   * (and, when it succeeded, before its change event: see `publish`).
   */
  private async writingApps<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      this.knownApps?.forget();
    }
  }

  private emitApp(type: ChangeType, row: AppRow): StoredApp {
    const app = toApp(row);
    this.publish({ type, kind: 'App', object: app });
    return app;
  }
}
