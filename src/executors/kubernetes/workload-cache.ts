/**
 * berth's Jobs and pods in one namespace, kept by list+watch (client-node
 * informers) while something watches, so that observing a run reads memory
 * instead of asking the API server each time.
 *
 * client-node's ListWatch relists by itself on 410 Gone and re-watches from
 * its last resourceVersion when a watch ends cleanly, but after any other
 * failure (the API server went away, a list failed) it reports the error and
 * stops. This class restarts it with backoff until it is released: a server
 * that is down is retried quietly, and one that comes back is caught up with
 * (the missed changes replayed, or relisted when they are too old).
 */

import {
  makeInformer,
  type BatchV1Api,
  type CoreV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type ListWatch,
  type V1Job,
  type V1Pod,
} from '@kubernetes/client-node';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../executor';
import { JOB_NAME_LABEL } from './job-spec';
import type { Permission } from './kube-errors';

/** Every Job and pod berth made carries this label. */
export const OWNED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;

export type ChangeKind = 'add' | 'update' | 'delete';
/** A change to one workload's Job or one of its pods, with the object as it now is (or was, for a delete). */
export type WorkloadChange = { workload: string; kind: ChangeKind } & ({ type: 'job'; object: V1Job } | { type: 'pod'; object: V1Pod });

export interface WorkloadCacheOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  batch: BatchV1Api;
  core: CoreV1Api;
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Told why a list or watch failed, and the permission it needed; the cache retries regardless. */
  onError: (error: unknown, what: string, permission?: Permission) => void;
}

/** The workload a pod belongs to: the Job named by the label the Job API puts on its pods. */
export const workloadOfPod = (pod: V1Pod): string | undefined => pod.metadata?.labels?.[JOB_NAME_LABEL];

type Watched<T extends V1Job | V1Pod> = {
  informer: ListWatch<T>;
  what: string;
  /** The permission its list and watch need, named when the API server refuses them. */
  permission: Permission;
  backoffMs: number;
  restartedAt: number;
  timer?: NodeJS.Timeout;
  starting?: Promise<void>;
};

export class WorkloadCache {
  private users = 0;
  private running = false;
  private jobs?: Watched<V1Job>;
  private pods?: Watched<V1Pod>;
  /** Pod names by workload, kept from the pod informer's events (relists included: they report deletions too). */
  private readonly podNames = new Map<string, Set<string>>();
  private readonly listeners = new Set<(change: WorkloadChange) => void>();

  constructor(private readonly options: WorkloadCacheOptions) {}

  /** Starts the informers for one more user; they run until the last user releases them. */
  acquire(): void {
    this.users += 1;
    if (this.users === 1) this.start();
  }

  /** Ends one user's interest; the last one stops the informers and closes their connections. */
  async release(): Promise<void> {
    this.users = Math.max(0, this.users - 1);
    if (this.users === 0) await this.stop();
  }

  /** Whether both caches hold a full list (a 410 empties the mark until the relist lands). */
  get synced(): boolean {
    return this.running && !!this.jobs?.informer.latestResourceVersion() && !!this.pods?.informer.latestResourceVersion();
  }

  job(name: string): V1Job | undefined {
    return this.jobs?.informer.get(name, this.options.namespace);
  }

  podsOf(workload: string): V1Pod[] {
    const names = this.podNames.get(workload);
    if (!names || !this.pods) return [];
    const pods: V1Pod[] = [];
    for (const name of names) {
      const pod = this.pods.informer.get(name, this.options.namespace);
      if (pod) pods.push(pod);
    }
    return pods;
  }

  /** Every workload the caches know of: Jobs, and pods whose Job is gone (orphaned by a stop, say). */
  workloads(): string[] {
    const names = new Set<string>(this.podNames.keys());
    for (const job of this.jobs?.informer.list(this.options.namespace) ?? []) if (job.metadata?.name) names.add(job.metadata.name);
    return [...names];
  }

  /** Calls `listener` for every change until the returned function is called. */
  subscribe(listener: (change: WorkloadChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private start(): void {
    const { kubeConfig, namespace, batch, core } = this.options;
    this.running = true;
    this.podNames.clear();
    this.jobs = this.watched<V1Job>(
      'Jobs',
      ownedInformer(kubeConfig, `/apis/batch/v1/namespaces/${namespace}/jobs`, () => batch.listNamespacedJob({ namespace, labelSelector: OWNED_SELECTOR })),
      (job) => job.metadata?.name,
      'job',
    );
    this.pods = this.watched<V1Pod>(
      'pods',
      ownedInformer(kubeConfig, `/api/v1/namespaces/${namespace}/pods`, () => core.listNamespacedPod({ namespace, labelSelector: OWNED_SELECTOR })),
      workloadOfPod,
      'pod',
    );
    this.launch(this.jobs);
    this.launch(this.pods);
  }

  private async stop(): Promise<void> {
    this.running = false;
    const all = [this.jobs, this.pods].filter((watched): watched is Watched<V1Job> | Watched<V1Pod> => !!watched);
    for (const watched of all) clearTimeout(watched.timer);
    await Promise.all(
      all.map(async (watched) => {
        await watched.informer.stop();
        // A start still under way connects after stop(); once it has, stop again to close that connection too.
        await watched.starting?.catch(() => undefined);
        await watched.informer.stop();
      }),
    );
    this.podNames.clear();
  }

  private watched<T extends V1Job | V1Pod>(
    what: string,
    informer: ListWatch<T>,
    workloadOf: (object: T) => string | undefined,
    type: 'job' | 'pod',
  ): Watched<T> {
    const permission: Permission = type === 'job' ? { verb: 'watch', resource: 'jobs', group: 'batch' } : { verb: 'watch', resource: 'pods', group: '' };
    const watched: Watched<T> = { informer, what, permission, backoffMs: this.options.initialBackoffMs, restartedAt: Date.now() };
    closeLateConnections(informer, () => !this.running || (type === 'job' ? this.jobs : this.pods) !== (watched as unknown));
    const emit = (kind: ChangeKind) => (object: T) => {
      const workload = workloadOf(object);
      if (!workload) return;
      if (type === 'pod') this.indexPod(workload, (object as V1Pod).metadata?.name ?? '', kind);
      const change = { workload, kind, type, object } as WorkloadChange;
      for (const listener of this.listeners) {
        try {
          listener(change);
        } catch (error) {
          this.options.onError(error, `a listener of ${what} changes`);
        }
      }
    };
    informer.on('add', emit('add'));
    informer.on('update', emit('update'));
    informer.on('delete', emit('delete'));
    informer.on('error', (error: unknown) => this.retry(watched, error));
    return watched;
  }

  private launch<T extends V1Job | V1Pod>(watched: Watched<T>): void {
    watched.restartedAt = Date.now();
    // start() lists (unless it holds a resourceVersion to resume from) and opens the watch; it reports its
    // failures to the error handler, and rejects only when it cannot even build the request (credentials).
    watched.starting = watched.informer.start().catch((error: unknown) => this.retry(watched, error));
  }

  /** Reports a failed list or watch and tries again after the backoff, doubling it up to the maximum. */
  private retry<T extends V1Job | V1Pod>(watched: Watched<T>, error: unknown): void {
    if (!this.running || watched.timer) return;
    this.options.onError(error, `watching ${watched.what}`, watched.permission);
    // A watch that stayed up longer than the longest wait had recovered: start the backoff over.
    if (Date.now() - watched.restartedAt > this.options.maxBackoffMs) watched.backoffMs = this.options.initialBackoffMs;
    const wait = watched.backoffMs;
    watched.backoffMs = Math.min(watched.backoffMs * 2, this.options.maxBackoffMs);
    watched.timer = setTimeout(() => {
      watched.timer = undefined;
      if (this.running) this.launch(watched);
    }, wait);
  }

  private indexPod(workload: string, pod: string, kind: ChangeKind): void {
    let names = this.podNames.get(workload);
    if (kind === 'delete') {
      names?.delete(pod);
      if (names?.size === 0) this.podNames.delete(workload);
      return;
    }
    if (!names) this.podNames.set(workload, (names = new Set()));
    names.add(pod);
  }
}

/** An informer of berth's objects at `path`. makeInformer's ListWatch, typed as one: its resourceVersion says whether it has listed. */
function ownedInformer<T extends V1Job | V1Pod>(kubeConfig: KubeConfig, path: string, list: () => Promise<KubernetesListObject<T>>): ListWatch<T> {
  return makeInformer<T>(kubeConfig, path, list, OWNED_SELECTOR) as ListWatch<T>;
}

/**
 * ListWatch keeps the connection of its current watch in a private field,
 * assigned when the connection opens: a stop() that comes while a
 * reconnect is opening one would leave that connection open for good (and
 * the process with it). Closing any connection assigned once stopped fixes
 * that without reaching further into the class.
 */
function closeLateConnections(informer: object, stopped: () => boolean): void {
  let current: AbortController | undefined;
  Object.defineProperty(informer, 'request', {
    configurable: true,
    get: () => current,
    set: (value: AbortController | undefined) => {
      current = value;
      if (value && stopped()) {
        value.abort();
        current = undefined;
      }
    },
  });
}
