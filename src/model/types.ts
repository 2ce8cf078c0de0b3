/**
 * berth's object model: Apps and Runs, shaped like Kubernetes objects.
 * These types are trusted inside berth; input is validated at the edge
 * (see ./validate.ts) before it becomes one of them.
 */

import type { RetryPolicySpec } from './retry-policy';

export const API_VERSION = 'berth.dev/v1';

export const ConcurrencyPolicy = { Allow: 'Allow', Forbid: 'Forbid', Replace: 'Replace' } as const;
export type ConcurrencyPolicy = (typeof ConcurrencyPolicy)[keyof typeof ConcurrencyPolicy];

export const ImagePullPolicy = { IfNotPresent: 'IfNotPresent', Always: 'Always', Never: 'Never' } as const;
export type ImagePullPolicy = (typeof ImagePullPolicy)[keyof typeof ImagePullPolicy];

export const RuntimeName = { docker: 'docker', kubernetes: 'kubernetes' } as const;
export type RuntimeName = (typeof RuntimeName)[keyof typeof RuntimeName];

export interface ObjectMeta {
  name: string;
  labels: Record<string, string>;
  uid: string;
  /** Bumped when the spec changes. */
  generation: number;
  /** Bumped on every write; a write carrying a stale one is refused. */
  resourceVersion: string;
  creationTimestamp: string;
}

export interface Resources {
  /** Docker's --cpus: a decimal ("0.5") or Kubernetes millicores ("500m"). */
  cpu?: string;
  /** Bytes with an optional Kubernetes suffix: "256Mi", "1G", "1048576". */
  memory?: string;
}

/** A pod toleration, as Kubernetes spells it. */
export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

/** What only a cluster has, for Apps on the kubernetes runtime (refused on docker). */
export interface KubernetesPodOptions {
  serviceAccountName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  /** Names of Secrets in berth's namespace holding registry credentials. */
  imagePullSecrets?: string[];
  /** Added to the pod's labels; berth's own labels win a clash. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Capabilities an App adds back to the empty set its container starts with. */
export interface CapabilitySpec {
  /** Linux capability names without `CAP_`, each one the server allows (`--allowed-capabilities`). */
  add?: string[];
}

export const MissedRunPolicy = { Skip: 'Skip', RunOnce: 'RunOnce', RunAll: 'RunAll' } as const;
export type MissedRunPolicy = (typeof MissedRunPolicy)[keyof typeof MissedRunPolicy];

/** When an App runs by itself (see src/controller/schedule.ts for how each field is read). */
export interface ScheduleSpec {
  /** Five cron fields or a macro (`@hourly`); `H` in a field stands for a number hashed from the App's name. */
  cron: string;
  /** IANA zone the cron fields are read in. @default "UTC" */
  timeZone: string;
  /** No runs while true; times passed meanwhile count as missed when it turns false. @default false */
  suspend: boolean;
  /** A due time more than this late is not run at all; absent: no bound. */
  startingDeadlineSeconds?: number;
  /** What to make of due times passed while berth was down or the schedule suspended. @default RunOnce */
  missedRunPolicy: MissedRunPolicy;
  /** RunAll makes at most this many runs for one gap (the latest ones). @default 10 */
  maxMissedRuns: number;
  /** Each run starts this much after its due time at most, by a delay hashed from the App's name. @default 0 */
  jitterSeconds: number;
}

/** The network of an App's container: none at all, the server's default, or a named Docker network. */
export const NetworkName = { none: 'none', default: 'default' } as const;

/**
 * A typed input of the App's runs (`spec.parameters`). A run request gives
 * its value; the container gets it as the environment variable `name`.
 */
export interface AppParameter {
  /** An environment variable name: letters, digits and "_", not starting with a digit. */
  name: string;
  description?: string;
  /** A run request must give it. @default false */
  required?: boolean;
  /** The value when a request gives none; not with `required`. */
  default?: string;
  /** A regular expression the whole value must match; not with `enum`. */
  pattern?: string;
  /** The values allowed; not with `pattern`. */
  enum?: string[];
}

/** What a webhook is called for (see docs/notifications.md). */
export const NotifyEvent = {
  /** A run ended Failed, after its last retry. */
  Failed: 'Failed',
  /** A run ended Succeeded. */
  Succeeded: 'Succeeded',
  /** A run ended Succeeded after one or more runs of the App that failed. */
  Recovered: 'Recovered',
  /** A scheduled due time passed without a run: past its startingDeadlineSeconds, or late under missedRunPolicy Skip. */
  Missed: 'Missed',
} as const;
export type NotifyEvent = (typeof NotifyEvent)[keyof typeof NotifyEvent];

/** Where the server reads a webhook's signing secret: never the spec itself. */
export interface SecretRef {
  /** An environment variable of the server. */
  env?: string;
  /** A file on the server (read at each delivery, so a rotated secret is used at once). */
  file?: string;
}

/** A webhook of `spec.notify`. */
export interface NotifyWebhook {
  /** An http:// or https:// URL the server POSTs to. */
  url: string;
  on: NotifyEvent[];
  /** Failed fires only when the App's last `after` runs all failed; Recovered only after such a streak. @default 1 */
  after?: number;
  /** When set, each request carries `X-Berth-Signature: sha256=<HMAC-SHA256>`. */
  secretRef?: SecretRef;
}

export interface AppSpec {
  image: string;
  command: string[];
  env: Record<string, string>;
  /** Absent: the server's default runtime. */
  runtime?: RuntimeName;
  /** Like activeDeadlineSeconds; absent: no deadline. */
  timeoutSeconds?: number;
  /** Like backoffLimit: how many times a failed attempt is launched again. */
  retries: number;
  concurrencyPolicy: ConcurrencyPolicy;
  imagePullPolicy: ImagePullPolicy;
  resources: Resources;
  /** How many finished runs of this App are kept; absent: the server's default. */
  historyLimit?: number;
  /** Cluster-only pod settings; only with runtime kubernetes. */
  kubernetes?: KubernetesPodOptions;
  /** Added back to the container's capabilities, all of which are dropped otherwise. */
  capabilities?: CapabilitySpec;
  /** `none`, `default` (the server's `--default-network`) or the name of an existing Docker network; absent: `default`. */
  network?: string;
  /** Run as this numeric `uid` or `uid:gid` instead of the image's user. */
  user?: string;
  /** Inputs a run request fills in; see AppParameter. */
  parameters?: AppParameter[];
  /** Runs made by the clock, besides those asked for. */
  schedule?: ScheduleSpec;
  /** Webhooks called when runs end or scheduled runs are missed. */
  notify?: NotifyWebhook[];
  /** Which failed attempts are retried, and the App's backoff; see ../model/retry-policy.ts. */
  retryPolicy?: RetryPolicySpec;
}

/** Where an App's desired state comes from: `api`, or `file:<path relative to the apps folder>`. */
export type AppSource = 'api' | `file:${string}`;

export interface AppStatus {
  source: AppSource;
  /** For file-owned Apps: whether the owning file is applied (`Synced`) or held at its last good state (`Error`). */
  syncState?: 'Synced' | 'Error';
  syncMessage?: string;
  /** For scheduled Apps: written by the scheduler, on its own column so no other write of the App clobbers it. */
  schedule?: ScheduleStatus;
}

/** Where an App's schedule stands. */
export interface ScheduleStatus {
  /** The latest due time a run was made for (or passed by, under Skip or a starting deadline). */
  lastScheduleTime?: string;
  /** The next due time, before jitter; absent while suspended or when the expression never matches again. */
  nextScheduleTime?: string;
}

export interface App {
  apiVersion: typeof API_VERSION;
  kind: 'App';
  metadata: ObjectMeta;
  spec: AppSpec;
  status: AppStatus;
}

export const RunPhase = {
  Pending: 'Pending',
  Running: 'Running',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Cancelled: 'Cancelled',
} as const;
export type RunPhase = (typeof RunPhase)[keyof typeof RunPhase];

export const TERMINAL_PHASES: readonly RunPhase[] = [RunPhase.Succeeded, RunPhase.Failed, RunPhase.Cancelled];
export const isTerminal = (phase: RunPhase): boolean => TERMINAL_PHASES.includes(phase);

export const RunReason = {
  Completed: 'Completed',
  Error: 'Error',
  OOMKilled: 'OOMKilled',
  DeadlineExceeded: 'DeadlineExceeded',
  ImagePullFailed: 'ImagePullFailed',
  Cancelled: 'Cancelled',
  Replaced: 'Replaced',
  AppDeleted: 'AppDeleted',
  ContainerLost: 'ContainerLost',
  LaunchFailed: 'LaunchFailed',
  BackoffLimitExceeded: 'BackoffLimitExceeded',
  Waiting: 'Waiting',
  RuntimeUnavailable: 'RuntimeUnavailable',
} as const;
export type RunReason = (typeof RunReason)[keyof typeof RunReason];

export interface RunOverrides {
  env?: Record<string, string>;
  command?: string[];
  /** Values of the App's parameters. On a Run's spec: every value it got, defaults included. */
  parameters?: Record<string, string>;
}

export interface RunSpec extends RunOverrides {
  /** The App's name. */
  app: string;
  /** The App spec this run executes, with the overrides applied: a snapshot taken when the run was asked for. */
  template: AppSpec;
}

/** Why a Pending run has not started yet (`status.pendingReason`). */
export const PendingReason = {
  /** Every slot of `--max-parallel` is taken; `queuePosition` says how many are ahead. */
  MaxParallel: 'MaxParallel',
  /** The App's concurrencyPolicy holds it (Replace: waiting for the older runs to stop). */
  ConcurrencyPolicy: 'ConcurrencyPolicy',
  /** Its runtime cannot be reached, or is not configured on this server. */
  RuntimeUnavailable: 'RuntimeUnavailable',
  /** A failed attempt's retry waits out its backoff (`nextAttemptAt`). */
  RetryBackoff: 'RetryBackoff',
  /** Its image is being pulled before its workload is created (Docker; on Kubernetes the pod pulls after launch). */
  PullingImage: 'PullingImage',
  /** It is due at a later time (schedules). Reserved. */
  Scheduled: 'Scheduled',
} as const;
export type PendingReason = (typeof PendingReason)[keyof typeof PendingReason];

export interface RunAttempt {
  attempt: number;
  startedAt?: string;
  /** The attempt's memory limit when its App sets one: more than the App's after an OOM kill under `retryPolicy.onOOM`. */
  memory?: string;
  finishedAt?: string;
  exitCode?: number;
  reason?: RunReason;
  message?: string;
}

export interface RunStatus {
  phase: RunPhase;
  reason?: RunReason;
  message?: string;
  exitCode?: number;
  /** How many times a container was launched for this run. */
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  /** The container (Docker) or Job (Kubernetes) name of the current attempt. */
  containerName?: string;
  runtime?: RuntimeName;
  /** When the next attempt may start, after a failed one (retry backoff). */
  nextAttemptAt?: string;
  /** While Pending: why it has not started. Cleared when it starts or ends. */
  pendingReason?: PendingReason;
  /** While Pending: `pendingReason` in words, for people. */
  pendingMessage?: string;
  /** While waiting for a slot (MaxParallel): 1 for the next run to start, 2 for the one after it, … */
  queuePosition?: number;
  /** Set when someone asked for the run to stop; the controller carries it out. */
  cancelRequested?: { reason: RunReason; message: string };
  history?: RunAttempt[];
}

export interface Run {
  apiVersion: typeof API_VERSION;
  kind: 'Run';
  metadata: ObjectMeta;
  spec: RunSpec;
  status: RunStatus;
}
