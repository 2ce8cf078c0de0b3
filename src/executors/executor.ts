import type { Readable } from 'node:stream';
import type { AppSpec, Resources, RuntimeName } from '../model/types';

/** Labels every berth workload carries, so the controller can find what it owns. */
export const LABEL_RUN = 'berth.dev/run';
export const LABEL_APP = 'berth.dev/app';
export const LABEL_ATTEMPT = 'berth.dev/attempt';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** The id of the store whose run a workload belongs to (several berth stores may share one engine). */
export const LABEL_STORE = 'berth.dev/store';
/** The value of LABEL_MANAGED_BY on berth's workloads. */
export const MANAGED_BY = 'berth';

/**
 * The deterministic name of one attempt's workload: a second launch of that
 * attempt finds the first, and a retry never meets the previous attempt's
 * workload, which a runtime may still be deleting (Kubernetes deletes in the
 * background). At most 10 + 36 + 1 + 4 characters: a DNS-1123 label.
 */
export const workloadName = (runUid: string, attempt: number): string => `berth-run-${runUid}-${attempt}`;

export interface LaunchRequest {
  /** Deterministic: `workloadName(runUid, attempt)`. */
  name: string;
  runUid: string;
  runName: string;
  appName: string;
  attempt: number;
  /** The launching store's id, stamped on the workload. */
  storeId?: string;
  /** The App spec snapshot with overrides applied. */
  template: AppSpec;
  /**
   * This attempt's limits, when they are not the template's: more memory
   * after an OOM kill (`spec.retryPolicy.onOOM`). Read through `launchResources`.
   */
  resources?: Resources;
  /**
   * Called once before the runtime fetches the request's image, when it
   * must; the launch goes on when the returned promise settles (so the run
   * can say it is pulling before the pull takes its time).
   */
  onPullingImage?: (image: string) => Promise<void>;
}

/** The limits a launch asks for: the attempt's own, else its template's. */
export const launchResources = (request: Pick<LaunchRequest, 'resources' | 'template'>): Resources => request.resources ?? request.template.resources;

/** Why a workload has not started yet. */
export const WaitingReason = {
  /** Being created or scheduled. */
  Creating: 'Creating',
  /** Its image is being pulled. */
  Pulling: 'Pulling',
  /** Its image cannot be had: it will never start. */
  ImagePullFailed: 'ImagePullFailed',
  /** The runtime cannot start its process (bad command, bad configuration): it will never start. */
  LaunchFailed: 'LaunchFailed',
} as const;
export type WaitingReason = (typeof WaitingReason)[keyof typeof WaitingReason];

/** What the runtime reports about a workload, read fresh each time. */
export type Observation =
  | { state: 'absent' }
  /**
   * Created but not started. `terminal` says it never will (an image that
   * cannot be pulled surfaces here on Kubernetes, after launch): the run
   * fails with `reason` instead of waiting for its deadline.
   */
  | { state: 'waiting'; reason: WaitingReason; message?: string; terminal: boolean }
  | { state: 'running'; startedAt: string }
  | {
      state: 'exited';
      exitCode: number;
      oomKilled: boolean;
      startedAt?: string;
      finishedAt: string;
      message?: string;
    }
  /**
   * The workload is there but its process ended without an exit of its own:
   * evicted, deleted underneath, its node gone. A retryable failure; `message`
   * says which.
   */
  | { state: 'lost'; message: string };

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
  /**
   * The reader keeps only the last `limitBytes` bytes: the runtime may leave
   * out output before them (by a tail of its own), so that less is read.
   */
  limitBytes?: number;
}

/** What happened to a workload, as a watcher hears it. */
export const WorkloadAction = {
  /** Its process started. */
  Started: 'started',
  /** Its process ended (exit, OOM kill, stop). */
  Exited: 'exited',
  /** Something else about it changed (created, scheduled, waiting on its image, evicted). */
  Changed: 'changed',
  /** It is gone. */
  Removed: 'removed',
} as const;
export type WorkloadAction = (typeof WorkloadAction)[keyof typeof WorkloadAction];

/** A change the runtime noticed on a workload it owns. A hint to look again, never a state to trust. */
export interface WorkloadEvent {
  runUid: string;
  name: string;
  action: WorkloadAction;
}

/**
 * What the reconciler needs from a container runtime. Every method is
 * idempotent and keyed by the workload name, so the reconciler can call it
 * again after a crash without knowing what happened before.
 *
 * Errors are berth's own (src/errors.ts), never the client library's:
 * `RuntimeUnavailableError` when the runtime cannot be reached (retryable:
 * runs wait), `ImagePullError` when the image cannot be had, and
 * `RuntimeRefusedError` when the runtime understood the request and refused
 * it (both fail the run), `RuntimeApiError` for other answers (retryable),
 * `NotFoundError` from `logs` when there is no such workload.
 */
export interface Executor {
  readonly runtime: RuntimeName;
  /** Throws RuntimeUnavailableError with the reason when the runtime does not answer. */
  ping(): Promise<void>;
  /**
   * Creates and starts the workload; if one with this name exists already,
   * leaves it as it is. A workload that cannot start (its command does not
   * exist) is no error here: `observe` reports it.
   */
  launch(request: LaunchRequest): Promise<void>;
  observe(name: string): Promise<Observation>;
  /**
   * Asks the workload to stop: SIGTERM, then a kill after `graceSeconds`.
   * Resolves once its process has ended; `observe` then reports `exited` or,
   * on runtimes that stop by deleting (Kubernetes), `absent`: read its logs
   * before stopping it. No-op when absent or exited.
   */
  stop(name: string, graceSeconds: number): Promise<void>;
  /**
   * stdout and stderr interleaved, as text.
   * @throws NotFoundError when there is no workload of that name, or its output is gone.
   */
  logs(name: string, options?: LogOptions): Promise<Readable>;
  /** Removes the workload and what it leaves behind; no-op when absent. May finish in the background. */
  remove(name: string): Promise<void>;
  /** Every workload carrying berth's labels. */
  listOwned(): Promise<OwnedWorkload[]>;
  /**
   * Calls `onEvent` for changes to owned workloads until `signal` aborts,
   * then resolves. Reconnects by itself; a runtime that cannot be reached is
   * retried, never thrown.
   */
  watch(onEvent: (event: WorkloadEvent) => void, signal: AbortSignal): Promise<void>;
  /**
   * Lets go of what the executor keeps on the runtime besides workloads (Docker's idle
   * network sandboxes), once the server has stopped launching. Never throws.
   */
  close?(): Promise<void>;
}
