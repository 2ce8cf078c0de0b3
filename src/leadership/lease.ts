/**
 * Leader election in a cluster, on a `coordination.k8s.io/v1` Lease, by the
 * algorithm of client-go's leaderelection package (client-node 1.x has no
 * helper): a follower tries every retry period to take the Lease, which it
 * may once the holder has not renewed it for a lease duration *as observed
 * on this replica's clock* (when the record last changed here, never the
 * timestamps written by another clock); the leader renews every retry
 * period and stops leading when it has not renewed within the renew
 * deadline, which is shorter than the lease duration, so it has stopped
 * before anyone else may take over. Every write is an optimistic update on
 * the resourceVersion read: two replicas racing for the Lease cannot both win.
 *
 * RBAC: `get`, `create`, `update` on `leases` (API group `coordination.k8s.io`)
 * in berth's namespace.
 */
import { CoordinationV1Api, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import { loadClusterTarget } from '../executors/kubernetes/kube-config';
import { Election, pause, SHUTTING_DOWN, type ElectionOptions } from './leadership';

/** The Lease calls the election makes; a fake stands in for it in tests. */
export interface LeaseClient {
  /** The Lease, or undefined when there is none. */
  read(name: string): Promise<V1Lease | undefined>;
  /** Rejects with a conflict (HTTP 409) when one exists already. */
  create(lease: V1Lease): Promise<V1Lease>;
  /** Rejects with a conflict (HTTP 409) when `lease.metadata.resourceVersion` is stale. */
  replace(lease: V1Lease): Promise<V1Lease>;
}

export interface LeaseTiming {
  /**
   * How long followers wait, after the Lease last changed, before taking it.
   * @default 15000
   */
  leaseDurationMs: number;
  /**
   * How long the leader keeps trying to renew before it stops leading; shorter than the lease duration.
   * @default 10000
   */
  renewDeadlineMs: number;
  /**
   * Between tries, to take or to renew.
   * @default 2000
   */
  retryPeriodMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2000 };

export interface LeaseElectionOptions extends ElectionOptions {
  client: LeaseClient;
  /** The Lease's name; also its namespace's only berth Lease. @default the lock name, `berth-controller` */
  leaseName?: string;
  timing?: Partial<LeaseTiming>;
  /** @default Date.now */
  now?: () => number;
}

/** The Lease election. See the module comment. */
export class LeaseElection extends Election {
  private readonly client: LeaseClient;
  private readonly leaseName: string;
  private readonly timing: LeaseTiming;
  private readonly now: () => number;
  /** The holder record last read, and when (on this clock) it was first seen: expiry is counted from then. */
  private observed?: { record: string; at: number };
  /** The holder the last read found: a leader that finds another there stops at once, not at its renew deadline. */
  private lastHolder?: string;

  constructor(options: LeaseElectionOptions) {
    super(options);
    this.client = options.client;
    this.leaseName = options.leaseName ?? this.lockName;
    this.timing = { ...DEFAULT_LEASE_TIMING, ...options.timing };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.timing;
    if (!(leaseDurationMs > renewDeadlineMs))
      throw new RangeError(`lease duration (${leaseDurationMs} ms) must be longer than the renew deadline (${renewDeadlineMs} ms)`);
    if (!(renewDeadlineMs > retryPeriodMs))
      throw new RangeError(`renew deadline (${renewDeadlineMs} ms) must be longer than the retry period (${retryPeriodMs} ms)`);
    this.now = options.now ?? Date.now;
  }

  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.acquire(signal))) break;
      try {
        await this.becomeLeader();
      } catch (err) {
        this.log.warn({ err }, 'leader election: won the Lease but cannot record the term in the store; letting go');
        await this.release();
        if (!(await pause(this.timing.retryPeriodMs, signal))) break;
        continue;
      }
      const why = await this.renew(signal);
      this.stopLeading(why ?? SHUTTING_DOWN);
      if (!why) await this.release();
    }
    this.stopLeading(SHUTTING_DOWN);
  }

  /** Tries every retry period (jittered, as client-go does) until this replica holds the Lease; false when stopped first. */
  private async acquire(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (await this.tryAcquireOrRenew()) return true;
      this.stopLeading(`another replica holds the Lease ${this.leaseName}, or it cannot be reached`);
      const jitter = Math.random() * 1.2 * this.timing.retryPeriodMs;
      if (!(await pause(this.timing.retryPeriodMs + jitter, signal))) return false;
    }
  }

  /**
   * Renews every retry period until a renewal has not succeeded within the
   * renew deadline (returns why) or `signal` aborts (returns undefined).
   */
  private async renew(signal: AbortSignal): Promise<string | undefined> {
    let renewedAt = this.now();
    for (;;) {
      if (!(await pause(this.timing.retryPeriodMs, signal))) return undefined;
      // A call that hangs must not keep a leader leading past its deadline: it counts as a failure once the deadline passes.
      const left = renewedAt + this.timing.renewDeadlineMs - this.now();
      const renewed = await Promise.race([this.tryAcquireOrRenew(), new Promise<false>((resolve) => setTimeout(resolve, Math.max(0, left), false).unref())]);
      if (renewed) {
        renewedAt = this.now();
        continue;
      }
      if (this.lastHolder && this.lastHolder !== this.identity) return `the Lease ${this.leaseName} is held by ${this.lastHolder} now`;
      if (this.now() - renewedAt >= this.timing.renewDeadlineMs) {
        return `the Lease ${this.leaseName} was not renewed within the renew deadline (${this.timing.renewDeadlineMs} ms)`;
      }
    }
  }

  /**
   * One round of client-go's `tryAcquireOrRenew`: true when this replica
   * holds the Lease afterwards. Failures to reach the API server, and lost
   * races (409), are a false, never an error.
   */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    const durationSeconds = Math.ceil(this.timing.leaseDurationMs / 1000);
    let lease: V1Lease | undefined;
    try {
      lease = await this.client.read(this.leaseName);
      if (!lease) {
        const time = new V1MicroTime(now);
        await this.client.create({
          metadata: { name: this.leaseName },
          spec: { holderIdentity: this.identity, leaseDurationSeconds: durationSeconds, acquireTime: time, renewTime: time, leaseTransitions: 0 },
        });
        this.observed = { record: this.identity, at: now };
        return true;
      }
    } catch (err) {
      this.log.debug({ err }, 'leader election: reading or creating the Lease failed');
      return false;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    this.lastHolder = holder;
    // The record as a whole: a renewal changes renewTime, so a live holder keeps resetting our count.
    const record = JSON.stringify([holder, spec.renewTime ? new Date(spec.renewTime).toISOString() : '', spec.leaseTransitions ?? 0]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const observedDurationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder && holder !== this.identity && this.observed.at + observedDurationMs > now) return false;

    const time = new V1MicroTime(now);
    const ours = holder === this.identity;
    const next: V1Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: time,
        acquireTime: ours && spec.acquireTime ? spec.acquireTime : time,
        leaseTransitions: ours ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      const written = await this.client.replace(next);
      const w = written.spec ?? {};
      this.observed = { record: JSON.stringify([this.identity, w.renewTime ? new Date(w.renewTime).toISOString() : '', w.leaseTransitions ?? 0]), at: now };
      return true;
    } catch (err) {
      this.log.debug({ err }, 'leader election: updating the Lease failed (another replica was first, or the API server is away)');
      return false;
    }
  }

  /** Lets the Lease go on shutdown, so a follower takes over at its next try instead of after a lease duration. */
  private async release(): Promise<void> {
    try {
      const lease = await this.client.read(this.leaseName);
      if (!lease || lease.spec?.holderIdentity !== this.identity) return;
      const time = new V1MicroTime(this.now());
      await this.client.replace({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: time, acquireTime: time } });
    } catch (err) {
      this.log.debug({ err }, 'leader election: releasing the Lease failed; it expires after its duration');
    }
  }
}

/** The LeaseClient of a real cluster: berth's kubeconfig and namespace, as the kubernetes runtime reads them. */
export function clusterLeaseClient(kubeconfig: string | undefined, namespace: string | undefined): LeaseClient {
  const target = loadClusterTarget(kubeconfig, namespace);
  const api = target.kubeConfig.makeApiClient(CoordinationV1Api);
  const ns = target.namespace;
  return {
    async read(name) {
      try {
        return await api.readNamespacedLease({ name, namespace: ns });
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) return undefined;
        throw err;
      }
    },
    create: (lease) => api.createNamespacedLease({ namespace: ns, body: lease }),
    replace: (lease) => api.replaceNamespacedLease({ name: lease.metadata!.name!, namespace: ns, body: lease }),
  };
}
