import { randomUUID } from 'node:crypto';
import { DataTypes, QueryInterface, QueryTypes, Sequelize } from 'sequelize';

type Migration = { name: string; up: (qi: QueryInterface) => Promise<void>; down: (qi: QueryInterface) => Promise<void> };

/**
 * The schema's history, oldest first. Never edit a migration that has
 * shipped: add a new one.
 */
export const migrations: Migration[] = [
  {
    name: '0001-apps-runs-logs',
    async up(qi) {
      const timestamps = {
        created_at: { type: DataTypes.DATE, allowNull: false },
        updated_at: { type: DataTypes.DATE, allowNull: false },
      };
      await qi.createTable('apps', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        name: { type: DataTypes.STRING(63), allowNull: false, unique: true },
        uid: { type: DataTypes.STRING(36), allowNull: false, unique: true },
        generation: { type: DataTypes.INTEGER, allowNull: false },
        resource_version: { type: DataTypes.INTEGER, allowNull: false },
        source: { type: DataTypes.STRING(1024), allowNull: false },
        labels: { type: DataTypes.JSON, allowNull: false },
        spec: { type: DataTypes.JSON, allowNull: false },
        status: { type: DataTypes.JSON, allowNull: false },
        ...timestamps,
      });
      await qi.createTable('runs', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        name: { type: DataTypes.STRING(253), allowNull: false, unique: true },
        uid: { type: DataTypes.STRING(36), allowNull: false, unique: true },
        app_id: { type: DataTypes.INTEGER, allowNull: false },
        app_name: { type: DataTypes.STRING(63), allowNull: false },
        generation: { type: DataTypes.INTEGER, allowNull: false },
        resource_version: { type: DataTypes.INTEGER, allowNull: false },
        phase: { type: DataTypes.STRING(16), allowNull: false },
        idempotency_key: { type: DataTypes.STRING(255), allowNull: true },
        labels: { type: DataTypes.JSON, allowNull: false },
        spec: { type: DataTypes.JSON, allowNull: false },
        status: { type: DataTypes.JSON, allowNull: false },
        ...timestamps,
      });
      await qi.addIndex('runs', ['app_id', 'id']);
      await qi.addIndex('runs', ['phase', 'id']);
      await qi.addIndex('runs', ['app_id', 'idempotency_key'], { unique: true, name: 'runs_app_idempotency_key' });
      await qi.createTable('run_logs', {
        run_id: { type: DataTypes.INTEGER, primaryKey: true },
        content: { type: DataTypes.TEXT, allowNull: false },
        dropped_bytes: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
        updated_at: { type: DataTypes.DATE, allowNull: false },
      });
    },
    async down(qi) {
      await qi.dropTable('run_logs');
      await qi.dropTable('runs');
      await qi.dropTable('apps');
    },
  },
  {
    // Each store's identity, stamped on the workloads it launches, so a controller
    // adopts and cleans up only its own when several stores share one engine.
    name: '0002-store-identity',
    async up(qi) {
      await qi.createTable('berth_settings', {
        key: { type: DataTypes.STRING(64), primaryKey: true },
        value: { type: DataTypes.TEXT, allowNull: false },
      });
      await qi.bulkInsert('berth_settings', [{ key: 'store.id', value: randomUUID() }]);
    },
    async down(qi) {
      await qi.dropTable('berth_settings');
    },
  },
  {
    // Leader election across replicas sharing a PostgreSQL store. One row per lock: who leads and
    // its epoch, bumped by each new leader, so a deposed leader's launch (checked against the epoch
    // it read, in the transaction that records the launch) is refused once another has taken over.
    name: '0003-leadership-and-launches',
    async up(qi) {
      await qi.createTable('leadership', {
        name: { type: DataTypes.STRING(63), primaryKey: true },
        holder: { type: DataTypes.STRING(253), allowNull: false },
        epoch: { type: DataTypes.BIGINT, allowNull: false },
        acquired_at: { type: DataTypes.DATE, allowNull: false },
      });
      // Each attempt's launch, recorded before the runtime is asked: the fence, and a record a new
      // leader re-issues (the workload name is deterministic, so never a second workload).
      await qi.createTable('run_launches', {
        run_id: { type: DataTypes.INTEGER, primaryKey: true },
        attempt: { type: DataTypes.INTEGER, primaryKey: true },
        workload: { type: DataTypes.STRING(253), allowNull: false },
        holder: { type: DataTypes.STRING(253), allowNull: false },
        epoch: { type: DataTypes.BIGINT, allowNull: false },
        launched_at: { type: DataTypes.DATE, allowNull: false },
      });
    },
    async down(qi) {
      await qi.dropTable('run_launches');
      await qi.dropTable('leadership');
    },
  },
  {
    // An App's runs, their logs and launch records go with it, in one statement the database makes
    // atomic, and no run can be inserted for an App that is gone. Rows orphaned before this (an App
    // deleted halfway, a run asked for as its App went) belong to nothing and are removed first.
    name: '0004-cascading-keys',
    async up(qi) {
      await (qi.sequelize.getDialect() === 'sqlite' ? rebuildSqliteTables(qi.sequelize, 'add') : alterPostgresTables(qi.sequelize, 'add'));
    },
    async down(qi) {
      await (qi.sequelize.getDialect() === 'sqlite' ? rebuildSqliteTables(qi.sequelize, 'drop') : alterPostgresTables(qi.sequelize, 'drop'));
    },
  },
  {
    // The scheduler's bookkeeping per App (last and next due time), in a column of its own: written
    // without touching the App's resourceVersion or `status`, so it races neither clients nor the folder.
    name: '0005-schedules',
    async up(qi) {
      await qi.addColumn('apps', 'schedule_status', { type: DataTypes.JSON, allowNull: true });
    },
    async down(qi) {
      await qi.removeColumn('apps', 'schedule_status');
    },
  },
  {
    // The webhook outbox: one row per notification, written before it is sent, so a delivery waiting
    // for its retry survives a restart; its attempts are kept on it, for GET /apps/{app}/notifications/.
    // `key` makes enqueueing idempotent (one notification per run, webhook and event, whoever sees the run end).
    name: '0006-notifications',
    async up(qi) {
      await qi.createTable('notifications', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        app_id: { type: DataTypes.INTEGER, allowNull: false, references: { model: 'apps', key: 'id' }, onDelete: 'CASCADE' },
        key: { type: DataTypes.STRING(512), allowNull: false, unique: true },
        webhook: { type: DataTypes.INTEGER, allowNull: false },
        url: { type: DataTypes.STRING(2048), allowNull: false },
        event: { type: DataTypes.STRING(16), allowNull: false },
        run_name: { type: DataTypes.STRING(253), allowNull: true },
        state: { type: DataTypes.STRING(16), allowNull: false },
        payload: { type: DataTypes.TEXT, allowNull: false },
        attempts: { type: DataTypes.JSON, allowNull: false },
        next_attempt_at: { type: DataTypes.DATE, allowNull: true },
        created_at: { type: DataTypes.DATE, allowNull: false },
        updated_at: { type: DataTypes.DATE, allowNull: false },
      });
      await qi.addIndex('notifications', ['app_id', 'id']);
      await qi.addIndex('notifications', ['state', 'next_attempt_at']);
    },
    async down(qi) {
      await qi.dropTable('notifications');
    },
  },
  {
    // The scheduler reads the scheduled Apps every second: an index of those alone, so that the
    // Apps without a schedule (most of them, and any number) cost that pass nothing.
    name: '0007-scheduled-apps',
    async up(qi) {
      await qi.sequelize.query(`CREATE INDEX apps_scheduled ON apps (id) WHERE ${scheduledWhere(qi.sequelize.getDialect())}`);
    },
    async down(qi) {
      await qi.sequelize.query('DROP INDEX apps_scheduled');
    },
  },
];

/**
 * Which Apps have a schedule, in `dialect`'s words (sequelize's name for it).
 * A query finds them by the index `0007-scheduled-apps` made only when it says the same.
 */
export function scheduledWhere(dialect: string): string {
  return dialect === 'postgres' ? "(spec -> 'schedule') IS NOT NULL" : "json_extract(spec, '$.schedule') IS NOT NULL";
}

/** The foreign keys of 0004, child table first: each deletes its rows with the row it references. */
const CASCADES = [
  { table: 'runs', column: 'app_id', parent: 'apps' },
  { table: 'run_logs', column: 'run_id', parent: 'runs' },
  { table: 'run_launches', column: 'run_id', parent: 'runs' },
] as const;

const cascadeClause = ({ column, parent }: (typeof CASCADES)[number]): string =>
  `FOREIGN KEY (\`${column}\`) REFERENCES \`${parent}\` (\`id\`) ON DELETE CASCADE`;

async function alterPostgresTables(sequelize: Sequelize, change: 'add' | 'drop'): Promise<void> {
  await sequelize.transaction(async (transaction) => {
    for (const cascade of CASCADES) {
      const { table, column, parent } = cascade;
      const constraint = `${table}_${column}_fkey`;
      if (change === 'drop') {
        await sequelize.query(`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${constraint}`, { transaction });
        continue;
      }
      await sequelize.query(`DELETE FROM ${table} WHERE ${column} NOT IN (SELECT id FROM ${parent})`, { transaction });
      await sequelize.query(`ALTER TABLE ${table} ADD CONSTRAINT ${constraint} ${cascadeClause(cascade).replaceAll('`', '')}`, { transaction });
    }
  });
}

/**
 * SQLite cannot add a constraint to a table: each table is made again with
 * it (or without it) and its rows copied over, in one transaction, as
 * https://sqlite.org/lang_altertable.html#otheralter describes. Foreign keys
 * are off meanwhile (a pragma that cannot change inside a transaction), or
 * dropping the old `runs` would cascade into its logs.
 */
async function rebuildSqliteTables(sequelize: Sequelize, change: 'add' | 'drop'): Promise<void> {
  const rows = async <T>(sql: string, replacements: Record<string, unknown> = {}): Promise<T[]> =>
    (await sequelize.query(sql, { replacements, type: QueryTypes.SELECT })) as T[];
  await sequelize.query('PRAGMA foreign_keys = OFF');
  try {
    await sequelize.query('BEGIN IMMEDIATE');
    try {
      for (const cascade of CASCADES) {
        const { table, column, parent } = cascade;
        if (change === 'add') await sequelize.query(`DELETE FROM ${table} WHERE ${column} NOT IN (SELECT id FROM ${parent})`);
        const [{ sql }] = await rows<{ sql: string }>(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table`, { table });
        const indexes = await rows<{ sql: string }>(`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table AND sql IS NOT NULL`, { table });
        const [sequence] = await rows<{ seq: number }>(`SELECT seq FROM sqlite_sequence WHERE name = :table`, { table }).catch(() => []);
        const withoutKey = sql.replace(`, ${cascadeClause(cascade)}`, '');
        const body = change === 'add' ? `${withoutKey.slice(0, withoutKey.lastIndexOf(')'))}, ${cascadeClause(cascade)})` : withoutKey;
        await sequelize.query(body.replace(`CREATE TABLE \`${table}\``, `CREATE TABLE \`${table}_rebuilt\``));
        await sequelize.query(`INSERT INTO \`${table}_rebuilt\` SELECT * FROM \`${table}\``);
        await sequelize.query(`DROP TABLE \`${table}\``);
        await sequelize.query(`ALTER TABLE \`${table}_rebuilt\` RENAME TO \`${table}\``);
        for (const index of indexes) await sequelize.query(index.sql);
        // AUTOINCREMENT never hands out an id twice: keep the counter past ids of rows deleted before.
        if (sequence)
          await sequelize.query(`UPDATE sqlite_sequence SET seq = MAX(seq, :seq) WHERE name = :table`, { replacements: { seq: sequence.seq, table } });
      }
      const broken = await rows<unknown>('PRAGMA foreign_key_check');
      if (broken.length) throw new Error(`0004-cascading-keys: ${broken.length} rows reference rows that do not exist: ${JSON.stringify(broken.slice(0, 5))}`);
      await sequelize.query('COMMIT');
    } catch (err) {
      await sequelize.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await sequelize.query('PRAGMA foreign_keys = ON');
  }
}

/** The table where the names of the applied migrations are kept (umzug's SequelizeStorage). */
const MIGRATIONS_TABLE = 'berth_migrations';

/** Brings the schema up to date (or up to the migration named `to`); returns the names of the migrations applied now. */
export async function migrate(sequelize: Sequelize, { to }: { to?: string } = {}): Promise<string[]> {
  if (to === undefined && (await upToDate(sequelize))) return [];
  // Loaded only when there is something to apply: umzug's code is about 17 MB of memory that a store
  // already up to date (every start but the first after an upgrade) would carry for nothing.
  const { Umzug, SequelizeStorage } = await import('umzug');
  const umzug = new Umzug<QueryInterface>({
    migrations: migrations.map((m) => ({
      name: m.name,
      up: ({ context }: { context: QueryInterface }) => m.up(context),
      down: ({ context }: { context: QueryInterface }) => m.down(context),
    })),
    context: sequelize.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize, tableName: MIGRATIONS_TABLE }),
    logger: undefined,
  });
  const applied = await umzug.up(to ? { to } : {});
  return applied.map((m) => m.name);
}

/** Whether every migration is applied already, read without umzug. */
async function upToDate(sequelize: Sequelize): Promise<boolean> {
  let rows: { name: string }[];
  try {
    rows = (await sequelize.query(`SELECT name FROM ${MIGRATIONS_TABLE}`, { type: QueryTypes.SELECT })) as { name: string }[];
  } catch {
    return false; // no such table: a new store, for umzug to create
  }
  const applied = new Set(rows.map((row) => row.name));
  return migrations.every((m) => applied.has(m.name));
}
