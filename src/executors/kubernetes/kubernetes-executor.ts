/**
 * Runs berth's workloads as Kubernetes Jobs, through @kubernetes/client-node.
 * One Job per attempt, named and labelled so that every call finds it again
 * without remembering anything: the cluster is the state. While something
 * watches, Jobs and pods are kept by list+watch and read from memory.
 */

import {
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  createConfiguration,
  ServerConfiguration,
  VersionApi,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { PassThrough, type Readable } from 'node:stream';
import { BerthError, NotFoundError, RuntimeApiError, RuntimeRefusedError, RuntimeUnavailableError } from '../../errors';
import { assertLaunchAllowed, type ContainmentPolicy } from '../../model/containment';
import { RuntimeName } from '../../model/types';
import {
  LABEL_APP,
  LABEL_ATTEMPT,
  LABEL_RUN,
  LABEL_STORE,
  type Executor,
  type LaunchRequest,
  type LogOptions,
  type Observation,
  type OwnedWorkload,
  type WorkloadEvent,
} from '../executor';
import { ANNOTATION_APP, CONTAINER_NAME, JOB_NAME_LABEL, jobFor } from './job-spec';
import { loadClusterTarget } from './kube-config';
import { resolveOptions, type KubernetesExecutorOptions } from './options';
import { apiError, isUnreachable, permissionName, serverMessage, statusOf, unavailable, type Permission } from './kube-errors';
import { attemptPod, lossOf, readWorkload, type PullFailure, type Reading, type WorkloadState } from './observation';
import { openPodLog } from './pod-logs';
import { LossRecorder } from './losses';
import { missingPermissions } from './permissions';
import { watchWorkloads } from './workload-watch';
import { OWNED_SELECTOR, WorkloadCache, workloadOfPod } from './workload-cache';

/** While the caches are not synced, how often a bounded wait (stop, a followed log) reads the workload again. */
const POLL_MS = 250;
/** How long `stop` waits for the garbage collector to orphan the pods of a deleted Job before deleting them anyway. */
const ORPHANING_WAIT_MS = 10_000;
/** How long the end of a followed log waits for the pod's status to say its container ended. */
const FOLLOW_SETTLE_MS = 10_000;
/** How long after a remove this process still takes its pods' disappearance for its own doing. */
const REMOVAL_MEMORY_MS = 60_000;

const jobPermission = (verb: string): Permission => ({ verb, resource: 'jobs', group: 'batch' });
const podPermission = (verb: string): Permission => ({ verb, resource: 'pods', group: '' });

/** The Kubernetes implementation of berth's Executor. */
export class KubernetesExecutor implements Executor {
  readonly runtime = RuntimeName.kubernetes;
  /** The API server's URL, named in every RuntimeUnavailableError. */
  readonly server: string;
  readonly namespace: string;
  private readonly kubeConfig: KubeConfig;
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly authorization: AuthorizationV1Api;
  private readonly version: VersionApi;
  private readonly cache: WorkloadCache;
  private readonly requestTimeoutMs: number;
  private readonly imagePullGraceMs: number;
  private readonly stopTimeoutMs: number;
  private readonly deadlineBackstopSeconds: number;
  private readonly containment: ContainmentPolicy;
  private readonly onWatchError?: (error: Error) => void;
  /** Set once a ping found every permission granted; a failing check is asked again next time. */
  private permissionsGranted = false;
  /** Workloads this process is stopping or has just removed: their pods going away is no loss. */
  private readonly stopping = new Map<string, number>();
  private readonly removalTimers = new Map<string, NodeJS.Timeout>();
  /** Pods deleted underneath their live Job, as this process saw them. */
  private readonly losses: LossRecorder;
  /** The image pull failures of each workload's pod, since first seen. */
  private readonly pullFailures = new Map<string, PullFailure & { podUid: string }>();

  /** @throws ConfigError when the configuration cannot be read or an option is out of range. */
  constructor(options: KubernetesExecutorOptions = {}) {
    const settings = resolveOptions(options);
    const target = loadClusterTarget(options.kubeconfig, options.namespace);
    this.kubeConfig = target.kubeConfig;
    this.server = target.server;
    this.namespace = target.namespace;
    this.requestTimeoutMs = settings.requestTimeoutMs;
    this.imagePullGraceMs = settings.imagePullGraceMs;
    this.stopTimeoutMs = settings.stopTimeoutMs;
    this.deadlineBackstopSeconds = settings.deadlineBackstopSeconds;
    this.containment = settings.containment;
    this.onWatchError = options.onWatchError;

    const configuration = createConfiguration({
      baseServer: new ServerConfiguration(this.server, {}),
      authMethods: { default: this.kubeConfig },
      // Every call gets a deadline: a server that accepts connections but never answers must not hang a reconcile.
      promiseMiddleware: [
        {
          pre: async (context) => {
            context.setSignal(AbortSignal.timeout(this.requestTimeoutMs));
            return context;
          },
          post: async (response) => response,
        },
      ],
    });
    this.batch = new BatchV1Api(configuration);
    this.core = new CoreV1Api(configuration);
    this.authorization = new AuthorizationV1Api(configuration);
    this.version = new VersionApi(configuration);
    this.cache = new WorkloadCache({
      kubeConfig: this.kubeConfig,
      namespace: this.namespace,
      batch: this.batch,
      core: this.core,
      initialBackoffMs: settings.watchInitialBackoffMs,
      maxBackoffMs: settings.watchMaxBackoffMs,
      onError: (error, what, permission) => this.reportWatchError(error, what, permission),
    });
    this.losses = new LossRecorder({
      batch: this.batch,
      namespace: this.namespace,
      stopping: (name) => this.stopping.has(name),
      onError: (error, what) => this.reportWatchError(error, what, jobPermission('patch')),
    });
    this.cache.subscribe((change) => {
      if (change.type === 'pod' && change.kind === 'delete') {
        this.losses.podGone(change.workload, change.object, this.cache.job(change.workload), this.cache.podsOf(change.workload));
      }
    });
  }

  /**
   * The API server answers, and berth's account holds every permission it
   * uses in the namespace (checked once, by SelfSubjectAccessReview).
   *
   * @throws RuntimeUnavailableError naming the server, or each missing `verb resource`.
   */
  async ping(): Promise<void> {
    try {
      await this.version.getCode();
    } catch (error) {
      if (isUnreachable(error)) throw this.unavailable('reading /version', error);
      throw new RuntimeUnavailableError(`Kubernetes API server at ${this.server} answered /version with an error: ${serverMessage(error)}`);
    }
    if (this.permissionsGranted) return;
    let missing: Permission[];
    try {
      missing = await missingPermissions(this.authorization, this.namespace);
    } catch (error) {
      if (isUnreachable(error)) throw this.unavailable("checking berth's permissions", error);
      throw new RuntimeUnavailableError(`cannot check berth's permissions on the Kubernetes API server at ${this.server}: ${serverMessage(error)}`);
    }
    if (missing.length > 0) {
      throw new RuntimeUnavailableError(
        `berth's account lacks permissions in namespace ${this.namespace} on the Kubernetes API server at ${this.server}: ${missing.map(permissionName).join(', ')} (manifests/base/role.yaml grants what berth needs)`,
      );
    }
    this.permissionsGranted = true;
  }

  /**
   * Creates the attempt's Job. A Job of that name that exists already (an
   * earlier or concurrent launch, or one a restarted berth left) is adopted
   * as it is. The pod's fate, a bad image included, is `observe`'s to report.
   *
   * @throws RuntimeRefusedError when the containment policy refuses the App (its image's registry, a
   *   capability, a network a pod cannot have), or the API server refuses the Job (an invalid spec, a missing permission).
   * @throws RuntimeUnavailableError when it cannot be reached.
   * @throws RuntimeApiError when it fails the request on its side.
   */
  async launch(request: LaunchRequest): Promise<void> {
    assertLaunchAllowed(request.name, request.template, this.containment, RuntimeName.kubernetes);
    let body: ReturnType<typeof jobFor>;
    try {
      body = jobFor(request, { deadlineBackstopSeconds: this.deadlineBackstopSeconds, containment: this.containment });
    } catch (error) {
      // Validation at the edge keeps such quantities out; one that slips through is refused, never sent.
      throw new RuntimeRefusedError(`cannot create Job ${request.name}: ${(error as Error).message}`);
    }
    try {
      await this.batch.createNamespacedJob({ namespace: this.namespace, body });
    } catch (error) {
      if (statusOf(error) === 409) return;
      throw this.failure(`creating Job ${request.name}`, error, jobPermission('create'));
    }
  }

  async observe(name: string): Promise<Observation> {
    return this.read(name, await this.stateOf(name)).observation;
  }

  /**
   * Stops the attempt so that nothing runs it again: the Job is deleted
   * first, orphaning its pod (a Job whose pod is deleted would make a new
   * one), then the pod with `graceSeconds` (TERM, then KILL; a grace of 0
   * becomes 1 s, since 0 is a force deletion that forgets the pod before its
   * process is killed). Resolves once the process of every pod of the
   * workload has ended, force-deleting pods that outlive the grace by
   * `stopTimeoutMs` (their node no longer answers). `observe` then says
   * `absent`: read the logs first.
   * An exited workload is left as it is, logs and status kept.
   */
  async stop(name: string, graceSeconds: number): Promise<void> {
    this.markStopping(name);
    try {
      const state = await this.fetchState(name);
      if (!state.job && state.pods.length === 0) return;
      if (this.read(name, state).observation.state === 'exited') return;
      if (state.job && !state.job.metadata?.deletionTimestamp) await this.deleteJob(name, 'Orphan');
      await this.until(name, (current) => !current.job || !current.pods.some(ownedByJob), Date.now() + ORPHANING_WAIT_MS);

      const grace = Math.max(1, Math.ceil(graceSeconds));
      const deadline = Date.now() + grace * 1000 + this.stopTimeoutMs;
      const asked = new Set<string>();
      // Every pod of the workload goes, a replacement the Job controller made before the Job went included.
      // Done once each one's process has ended: the kubelet removes the pod object itself seconds later,
      // once it has cleaned up, and `observe` already reads a deleted pod of a deleted Job as absent.
      const ended = await this.until(
        name,
        async (current) => {
          const fresh = current.pods.filter((pod) => !asked.has(pod.metadata?.uid ?? ''));
          for (const pod of fresh) asked.add(pod.metadata?.uid ?? '');
          await Promise.all(fresh.map((pod) => this.deletePod(pod, grace)));
          return current.pods.every((pod) => asked.has(pod.metadata?.uid ?? '') && !!pod.metadata?.deletionTimestamp && !isRunning(pod));
        },
        deadline,
      );
      if (!ended) {
        const left = await this.fetchState(name);
        await Promise.all(left.pods.map((pod) => this.deletePod(pod, 0)));
      }
    } finally {
      this.unmarkStopping(name);
    }
  }

  /** @throws NotFoundError when there is no such workload, or its pod is gone. */
  async logs(name: string, options: LogOptions = {}): Promise<Readable> {
    const state = await this.stateOf(name);
    if (!state.job && state.pods.length === 0) throw new NotFoundError('Job', name);
    const reading = this.read(name, state);
    // Stopped or removed: its pod may linger a moment, but to berth it is gone, as `observe` says.
    if (reading.observation.state === 'absent') throw new NotFoundError('Job', name);
    const pod = attemptPod(state, lossOf(state, { lost: this.losses.get(name) })?.pod);
    if (!pod && reading.observation.state !== 'waiting') throw new NotFoundError('pod of Job', name);
    const started = pod && reading.observation.state !== 'waiting';
    if (started) {
      const output = await this.openLog(name, pod, options);
      if (output) return output;
    }
    if (!options.follow) return emptyText();
    // Followed before the container started: the stream opens now and the log joins it once there is one.
    const output = new PassThrough({ encoding: 'utf8' });
    void this.followOnceStarted(name, options, output);
    return output;
  }

  /**
   * Deletes the Job (its pods go with it, in the background) and any pod
   * left without one (orphaned by a stop), at once: removal is no stop, and
   * the output is stored by then. No-op when absent.
   */
  async remove(name: string): Promise<void> {
    this.markStopping(name);
    try {
      await this.deleteJob(name, 'Background');
      // The garbage collector deletes the Job's pods too, with their 30 s grace; these go now, and orphans with them.
      const pods = this.cache.synced ? this.cache.podsOf(name) : (await this.fetchState(name)).pods;
      await Promise.all(pods.map((pod) => this.deletePod(pod, 0)));
    } finally {
      this.unmarkStopping(name, REMOVAL_MEMORY_MS);
    }
    this.losses.forget(name);
    this.pullFailures.delete(name);
  }

  async listOwned(): Promise<OwnedWorkload[]> {
    const states = new Map<string, WorkloadState>();
    if (this.cache.synced) {
      for (const name of this.cache.workloads()) states.set(name, { job: this.cache.job(name), pods: this.cache.podsOf(name) });
    } else {
      const [jobs, pods] = await Promise.all([
        this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: OWNED_SELECTOR }).catch((error: unknown) => {
          throw this.failure('listing berth Jobs', error, jobPermission('list'));
        }),
        this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: OWNED_SELECTOR }).catch((error: unknown) => {
          throw this.failure('listing berth pods', error, podPermission('list'));
        }),
      ]);
      for (const job of jobs.items) if (job.metadata?.name) states.set(job.metadata.name, { job, pods: [] });
      for (const pod of pods.items) {
        const workload = workloadOfPod(pod);
        if (!workload) continue;
        const state = states.get(workload) ?? { pods: [] };
        state.pods.push(pod);
        states.set(workload, state);
      }
    }
    const owned: OwnedWorkload[] = [];
    for (const [name, state] of states) {
      const labels = state.job?.metadata?.labels ?? attemptPod(state)?.metadata?.labels ?? {};
      const runUid = labels[LABEL_RUN];
      if (!runUid) continue;
      const observation = this.read(name, state).observation;
      // Being deleted: for the controller it is gone already.
      if (observation.state === 'absent') continue;
      const attempt = Number.parseInt(labels[LABEL_ATTEMPT] ?? '', 10);
      owned.push({
        name,
        runUid,
        ...(labels[LABEL_STORE] ? { storeId: labels[LABEL_STORE] } : {}),
        appName: state.job?.metadata?.annotations?.[ANNOTATION_APP] ?? labels[LABEL_APP] ?? '',
        attempt: Number.isNaN(attempt) ? 0 : attempt,
        observation,
      });
    }
    return owned.sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Keeps Jobs and pods by list+watch until `signal` aborts, then stops and
   * resolves; calls `onEvent` when a workload starts, exits, changes or goes.
   * An API server that cannot be reached is retried with backoff and told to
   * `onWatchError`; the watch never rejects.
   */
  async watch(onEvent: (event: WorkloadEvent) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    await watchWorkloads(
      this.cache,
      (name, state) => this.read(name, state),
      (name) => this.pullFailures.get(name),
      this.imagePullGraceMs,
      onEvent,
      signal,
    );
  }

  // ---- reading ----

  /** The workload from the caches when they are synced and know it, else from the API server. */
  private async stateOf(name: string): Promise<WorkloadState> {
    if (this.cache.synced) {
      const cached = { job: this.cache.job(name), pods: this.cache.podsOf(name) };
      // Unknown to the caches may only mean not delivered yet (a Job created a moment ago): ask.
      if (cached.job || cached.pods.length > 0) return cached;
    }
    return this.fetchState(name);
  }

  private async fetchState(name: string): Promise<WorkloadState> {
    const [job, pods] = await Promise.all([
      this.batch.readNamespacedJob({ name, namespace: this.namespace }).catch((error: unknown) => {
        if (statusOf(error) === 404) return undefined;
        throw this.failure(`reading Job ${name}`, error, jobPermission('get'));
      }),
      this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: `${OWNED_SELECTOR},${JOB_NAME_LABEL}=${name}` }).catch((error: unknown) => {
        throw this.failure(`listing the pods of Job ${name}`, error, podPermission('list'));
      }),
    ]);
    return { job, pods: pods.items };
  }

  private read(name: string, state: WorkloadState): Reading {
    const reading = readWorkload(state, {
      now: Date.now(),
      imagePullGraceMs: this.imagePullGraceMs,
      pullFailure: (pod, reason, message) => this.pullFailure(name, pod, reason, message),
      lost: this.losses.get(name),
      stopping: this.stopping.has(name),
    });
    if (reading.deletedUnderneath) this.losses.note(name, reading.deletedUnderneath);
    return reading;
  }

  private pullFailure(name: string, pod: V1Pod, reason: string, message: string | undefined): PullFailure {
    const podUid = pod.metadata?.uid ?? '';
    let failure = this.pullFailures.get(name);
    if (!failure || failure.podUid !== podUid) this.pullFailures.set(name, (failure = { podUid, since: Date.now() }));
    // ImagePullBackOff only says "Back-off pulling image"; the registry's reason came with the ErrImagePull before it.
    if (reason !== 'ImagePullBackOff' && message) failure.lastError = message;
    return failure;
  }

  // ---- stopping ----

  private markStopping(name: string): void {
    clearTimeout(this.removalTimers.get(name));
    this.removalTimers.delete(name);
    this.stopping.set(name, (this.stopping.get(name) ?? 0) + 1);
  }

  /** Forgets a stop, or after `afterMs` a removal, whose pods' last events may still be on their way. */
  private unmarkStopping(name: string, afterMs = 0): void {
    const count = (this.stopping.get(name) ?? 1) - 1;
    if (count > 0) {
      this.stopping.set(name, count);
      return;
    }
    if (afterMs <= 0) {
      this.stopping.delete(name);
      return;
    }
    const timer = setTimeout(() => {
      this.removalTimers.delete(name);
      this.stopping.delete(name);
    }, afterMs);
    timer.unref();
    this.removalTimers.set(name, timer);
  }

  /**
   * Reads the workload until `done` says so or `deadline` passes: on every
   * change the caches see, or every POLL_MS while they are not synced.
   * Returns whether `done` was reached.
   */
  private async until(
    name: string,
    done: (state: WorkloadState) => boolean | Promise<boolean>,
    deadline: number,
    cancelled: () => boolean = () => false,
  ): Promise<boolean> {
    for (;;) {
      if (await done(await this.stateOf(name))) return true;
      const left = deadline - Date.now();
      if (left <= 0 || cancelled()) return false;
      await this.nextChange(name, this.cache.synced ? Math.min(left, 5 * POLL_MS) : Math.min(left, POLL_MS));
    }
  }

  private nextChange(name: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      };
      const timer = setTimeout(finish, ms);
      const unsubscribe = this.cache.subscribe((change) => {
        if (change.workload === name) finish();
      });
    });
  }

  private async deleteJob(name: string, propagationPolicy: 'Orphan' | 'Background'): Promise<void> {
    try {
      await this.batch.deleteNamespacedJob({ name, namespace: this.namespace, propagationPolicy });
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw this.failure(`deleting Job ${name}`, error, jobPermission('delete'));
    }
  }

  private async deletePod(pod: V1Pod, gracePeriodSeconds: number): Promise<void> {
    const name = pod.metadata?.name ?? '';
    try {
      // The uid precondition: a pod of the same name made since is not this one. With a body, the API server
      // reads the delete options from it alone: the grace period goes there too, or it is the pod's default 30 s.
      await this.core.deleteNamespacedPod({ name, namespace: this.namespace, body: { gracePeriodSeconds, preconditions: { uid: pod.metadata?.uid } } });
    } catch (error) {
      if (statusOf(error) === 404 || statusOf(error) === 409) return;
      throw this.failure(`deleting pod ${name}`, error, podPermission('delete'));
    }
  }

  // ---- logs ----

  /** Opens the pod's log, or answers undefined when its container has not started after all (it raced the read). */
  private async openLog(name: string, pod: V1Pod, options: LogOptions): Promise<Readable | undefined> {
    const podName = pod.metadata?.name ?? '';
    const doing = `reading the log of pod ${podName} of Job ${name}`;
    let source: Readable;
    try {
      source = await openPodLog(this.kubeConfig, {
        namespace: this.namespace,
        pod: podName,
        container: CONTAINER_NAME,
        follow: options.follow ?? false,
        ...podLogRange(options),
        timeoutMs: this.requestTimeoutMs,
      });
    } catch (error) {
      if (statusOf(error) === 404) throw new NotFoundError('pod of Job', name);
      // 400: "container … is waiting to start": nothing has been written yet.
      if (statusOf(error) === 400 && /waiting to start|ContainerCreating|PodInitializing/i.test(serverMessage(error))) return undefined;
      throw this.failure(doing, error, { verb: 'get', resource: 'pods/log', group: '' });
    }
    const text = new PassThrough({ encoding: 'utf8' });
    // A connection that breaks mid-stream reaches the reader as berth's error, like every other failure.
    source.on('error', (error) =>
      text.destroy(isUnreachable(error) ? this.unavailable(doing, error) : new RuntimeApiError(`${doing} broke off: ${serverMessage(error)}`)),
    );
    text.on('close', () => source.destroy());
    if (!options.follow) {
      source.pipe(text);
      return text;
    }
    // The followed log ends when the container does; the kubelet reports the end in the pod's status up to
    // a second or two later. Ending the stream only once the end is visible keeps the reader's next
    // `observe` from still saying running.
    source.pipe(text, { end: false });
    source.once('end', () => {
      const settled = (state: WorkloadState): boolean => this.read(name, state).observation.state !== 'running';
      this.until(name, settled, Date.now() + FOLLOW_SETTLE_MS, () => text.destroyed)
        .catch(() => false)
        .finally(() => text.end());
    });
    return text;
  }

  /** Waits, for as long as `output` is read, until the container has started or the workload ended; then pipes its log in. */
  private async followOnceStarted(name: string, options: LogOptions, output: PassThrough): Promise<void> {
    try {
      for (;;) {
        const seen: { pod?: V1Pod; observation?: Observation } = {};
        await this.until(
          name,
          (state) => {
            const observation = this.read(name, state).observation;
            Object.assign(seen, { observation, pod: attemptPod(state, lossOf(state, { lost: this.losses.get(name) })?.pod) });
            return observation.state !== 'waiting' || observation.terminal;
          },
          Number.POSITIVE_INFINITY,
          () => output.destroyed,
        );
        if (output.destroyed) return;
        const { pod, observation } = seen;
        if (!pod || !observation || observation.state === 'waiting' || observation.state === 'absent') {
          output.end();
          return;
        }
        const log = await this.openLog(name, pod, options);
        if (log) {
          log.on('error', (error) => output.destroy(error));
          output.on('close', () => log.destroy());
          log.pipe(output);
          return;
        }
        // The kubelet has not caught up with the start the API server reported: look again shortly.
        await this.nextChange(name, POLL_MS);
      }
    } catch (error) {
      output.destroy(error as Error);
    }
  }

  // ---- errors ----

  private unavailable(doing: string, error: unknown): RuntimeUnavailableError {
    const timedOut = error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
    return unavailable(this.server, doing, timedOut ? new Error(`no answer within ${this.requestTimeoutMs} ms`) : error);
  }

  /** Errors berth already named pass through; anything else becomes berth's, saying what was being done. */
  private failure(doing: string, error: unknown, permission?: Permission): BerthError {
    if (error instanceof BerthError) return error;
    if (isUnreachable(error)) return this.unavailable(doing, error);
    return apiError({ server: this.server, namespace: this.namespace, doing, permission }, error);
  }

  private reportWatchError(error: unknown, what: string, permission?: Permission): void {
    if (!this.onWatchError) return;
    const named = this.failure(what, error, permission);
    try {
      this.onWatchError(named);
    } catch {
      // A reporter that throws must not end the watch.
    }
  }
}

/** Whether the run's container in `pod` is running (or about to: it has not been reported waiting or ended yet). */
function isRunning(pod: V1Pod): boolean {
  const status = pod.status?.containerStatuses?.find((container) => container.name === CONTAINER_NAME);
  if (!status) return pod.status?.phase === 'Running';
  return !!status.state?.running;
}

/** How many times the bytes a reader keeps one log read may move, at most: see podLogRange. */
const LOG_READ_CAP_FACTOR = 256;

/**
 * The part of a pod's log to ask for. `tail` lines as asked; a reader that
 * keeps only the last `limitBytes` needs no more than that many lines (each
 * holds at least its newline), which the kubelet finds from the end of the
 * file instead of sending all of it. `limitBytes` on top caps what one read
 * moves; since it counts from the start of the selected lines, it is set
 * far above what the reader keeps, and bites only on lines that average
 * more than LOG_READ_CAP_FACTOR bytes (pod-logs.ts then says so).
 */
function podLogRange(options: LogOptions): { tailLines?: number; limitBytes?: number } {
  const tails = [options.tail, options.limitBytes].filter((n): n is number => n !== undefined);
  return {
    ...(tails.length > 0 ? { tailLines: Math.min(...tails) } : {}),
    ...(options.limitBytes !== undefined && !options.follow ? { limitBytes: options.limitBytes * LOG_READ_CAP_FACTOR } : {}),
  };
}

/** Whether a pod still belongs to its Job (the garbage collector has not orphaned it yet). */
const ownedByJob = (pod: V1Pod): boolean => (pod.metadata?.ownerReferences ?? []).some((owner) => owner.kind === 'Job');

function emptyText(): Readable {
  const text = new PassThrough({ encoding: 'utf8' });
  text.end();
  return text;
}
