import { DataTypes, Model, ModelStatic, Sequelize } from 'sequelize';
import type { AppSpec, AppStatus, RunSpec, RunStatus, ScheduleStatus } from '../model/types';

/** Row shapes; the schema itself is made by ./migrations.ts, never by sync(). */
export interface AppRow extends Model {
  id: number;
  name: string;
  uid: string;
  generation: number;
  resourceVersion: number;
  source: string;
  labels: Record<string, string>;
  spec: AppSpec;
  status: AppStatus;
  /** The scheduler's ScheduleStatus, kept apart from `status` so neither writer clobbers the other (0005-schedules). */
  scheduleStatus: ScheduleStatus | string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RunRow extends Model {
  id: number;
  name: string;
  uid: string;
  appId: number;
  appName: string;
  generation: number;
  resourceVersion: number;
  phase: string;
  idempotencyKey: string | null;
  labels: Record<string, string>;
  spec: RunSpec;
  status: RunStatus;
  createdAt: Date;
  updatedAt: Date;
}

export interface RunLogRow extends Model {
  runId: number;
  content: string;
  droppedBytes: number;
  updatedAt: Date;
}

export interface Models {
  App: ModelStatic<AppRow>;
  Run: ModelStatic<RunRow>;
  RunLog: ModelStatic<RunLogRow>;
}

/** Models bound to one connection (a process may hold several stores, e.g. in tests). */
export function defineModels(sequelize: Sequelize): Models {
  const common = { underscored: true, timestamps: true };
  const App = sequelize.define<AppRow>(
    'App',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      name: { type: DataTypes.STRING(63), allowNull: false },
      uid: { type: DataTypes.STRING(36), allowNull: false },
      generation: { type: DataTypes.INTEGER, allowNull: false },
      resourceVersion: { type: DataTypes.INTEGER, allowNull: false },
      source: { type: DataTypes.STRING(1024), allowNull: false },
      labels: { type: DataTypes.JSON, allowNull: false },
      spec: { type: DataTypes.JSON, allowNull: false },
      status: { type: DataTypes.JSON, allowNull: false },
      scheduleStatus: { type: DataTypes.JSON, allowNull: true },
    },
    { ...common, tableName: 'apps' },
  );
  const Run = sequelize.define<RunRow>(
    'Run',
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      name: { type: DataTypes.STRING(253), allowNull: false },
      uid: { type: DataTypes.STRING(36), allowNull: false },
      appId: { type: DataTypes.INTEGER, allowNull: false },
      appName: { type: DataTypes.STRING(63), allowNull: false },
      generation: { type: DataTypes.INTEGER, allowNull: false },
      resourceVersion: { type: DataTypes.INTEGER, allowNull: false },
      phase: { type: DataTypes.STRING(16), allowNull: false },
      idempotencyKey: { type: DataTypes.STRING(255), allowNull: true },
      labels: { type: DataTypes.JSON, allowNull: false },
      spec: { type: DataTypes.JSON, allowNull: false },
      status: { type: DataTypes.JSON, allowNull: false },
    },
    { ...common, tableName: 'runs' },
  );
  const RunLog = sequelize.define<RunLogRow>(
    'RunLog',
    {
      runId: { type: DataTypes.INTEGER, primaryKey: true },
      content: { type: DataTypes.TEXT, allowNull: false },
      droppedBytes: { type: DataTypes.BIGINT, allowNull: false },
    },
    { underscored: true, timestamps: true, createdAt: false, tableName: 'run_logs' },
  );
  return { App, Run, RunLog };
}
