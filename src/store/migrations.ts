import { randomUUID } from 'node:crypto';
import { DataTypes, QueryInterface, Sequelize } from 'sequelize';
import { Umzug, SequelizeStorage } from 'umzug';

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
];

/** Brings the schema up to date; returns the names of the migrations applied now. */
export async function migrate(sequelize: Sequelize): Promise<string[]> {
  const umzug = new Umzug<QueryInterface>({
    migrations: migrations.map((m) => ({
      name: m.name,
      up: ({ context }: { context: QueryInterface }) => m.up(context),
      down: ({ context }: { context: QueryInterface }) => m.down(context),
    })),
    context: sequelize.getQueryInterface(),
    storage: new SequelizeStorage({ sequelize, tableName: 'berth_migrations' }),
    logger: undefined,
  });
  const applied = await umzug.up();
  return applied.map((m) => m.name);
}
