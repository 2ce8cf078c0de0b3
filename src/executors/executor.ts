import type { Readable } from 'node:stream';
import type { AppSpec, RuntimeName } from '../model/types';

/** Labels every berth workload carries, so the controller can find what it owns. */
export const LABEL_RUN = 'berth.dev/run';
export const LABEL_APP = 'berth.dev/app';
export const LABEL_ATTEMPT = 'berth.dev/attempt';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** The id of the store whose run a workload belongs to (several berth stores may share one engine). */
export const LABEL_STORE = 'berth.dev/store';

/** The deterministic workload name of a run: a second launch finds the first. */
export const workloadName = (runUid: string): string => `berth-run-${runUid}`;

export interface LaunchRequest {
  /** Deterministic: `workloadName(runUid)`. */
  name: string;
  runUid: string;
  runName: string;
  appName: string;
  attempt: number;
  /** The launching store's id, stamped on the workload. */
  storeId?: string;
  /** The App spec snapshot with overrides applied. */
  template: AppSpec;
}

/** What the runtime reports about a run's workload, read fresh each time. */
export type Observation =
  | { state: 'absent' }
  /** Created but not started yet (pulling, scheduling). */
  | { state: 'waiting'; message?: string }
  | { state: 'running'; startedAt: string }
  | {
      state: 'exited';
      exitCode: number;
      oomKilled: boolean;
      startedAt?: string;
      finishedAt: string;
      message?: string;
    };

export interface OwnedWorkload {
  name: string;
  runUid: string;
  /** The store that launched it; absent on workloads launched before stores had ids. */
  storeId?: string;
  appName: string;
  attempt: number;
  observation: Observation;
}

export interface LogOptions {
  /** Keep streaming until the workload ends. */
  follow?: boolean;
  /** Only the last N lines. */
  tail?: number;
}

/** A change the runtime noticed on a workload it owns (start, exit, OOM, removal). */
export interface WorkloadEvent {
  runUid: string;
  action: string;
}

/**
 * What the reconciler needs from a container runtime. Every method is
 * idempotent and keyed by the workload name, so the reconciler can call it
 * again after a crash without knowing what happened before.
 *
 * Errors: `RuntimeUnavailableError` when the runtime cannot be reached
 * (retryable: runs wait), `ImagePullError` when the image cannot be had
 * (fails the run).
 */
export interface Executor {
  readonly runtime: RuntimeName;
  /** Throws RuntimeUnavailableError with the reason when the runtime does not answer. */
  ping(): Promise<void>;
  /** Creates and starts the workload; if one with this name exists already, leaves it as it is. */
  launch(request: LaunchRequest): Promise<void>;
  observe(name: string): Promise<Observation>;
  /** Asks the workload to stop: SIGTERM, then a kill after `graceSeconds`. No-op when absent or exited. */
  stop(name: string, graceSeconds: number): Promise<void>;
  /** stdout and stderr interleaved, as text. */
  logs(name: string, options?: LogOptions): Promise<Readable>;
  /** Removes the workload; no-op when absent. */
  remove(name: string): Promise<void>;
  /** Every workload carrying berth's labels. */
  listOwned(): Promise<OwnedWorkload[]>;
  /** Calls `onEvent` for changes to owned workloads until `signal` aborts. Reconnects by itself. */
  watch(onEvent: (event: WorkloadEvent) => void, signal: AbortSignal): void;
}
