/** The shapes the store reads and writes: objects with their row ids, pages, inputs, events. */
import type { App, AppSource, AppSpec, AppStatus, Run, RunPhase, RunSpec, RunStatus } from '../model/types';

export type StoredApp = App & { id: number };
export type StoredRun = Run & { id: number; appId: number };

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type StoreEvent = { type: ChangeType; kind: 'App'; object: StoredApp } | { type: ChangeType; kind: 'Run'; object: StoredRun };

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
  /** Only Apps whose spec has a schedule (the scheduler's pass). */
  scheduled?: boolean;
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

/** A run to insert, as run policy made it (src/controller/run-requests.ts). */
export interface NewRun {
  name: string;
  labels?: Record<string, string>;
  spec: RunSpec;
  idempotencyKey?: string;
  /** Insert only when the App has no run that has not finished. */
  exclusive?: boolean;
}

/** What `insertRun` did. */
export type RunInsertion =
  | { outcome: 'created'; run: StoredRun }
  /** The idempotency key was seen before: the run it made then. */
  | { outcome: 'replayed'; run: StoredRun }
  /** `exclusive`, and this run of the App has not finished. */
  | { outcome: 'active'; active: { name: string; phase: RunPhase } };

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
