/**
 * Leader election: of the replicas sharing one store, one leads (reconciles
 * runs, syncs the apps folder) and the rest serve the API. Each way of
 * holding the lock lives in its own file (./advisory-lock.ts on PostgreSQL,
 * ./lease.ts on a Kubernetes Lease); both record each new term in the
 * store's `leadership` table with a bumped epoch, which fences launches
 * (./fence.ts).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../log';
import type { LeaderRecord, LeadershipRecords } from '../store/leadership';

/** The lock (and the `leadership` row) the controller's leader holds. */
export const CONTROLLER_LOCK = 'berth-controller';

/** The reason a replica stops leading when it stops on purpose. */
export const SHUTTING_DOWN = 'shutting down';

/** Where this replica stands. */
export type LeaderState = { leading: true; term: LeaderRecord } | { leading: false; reason: string };

/**
 * One replica's part in an election. `start(signal)` campaigns, holds and
 * renews until `signal` aborts, then lets go of the lock (so another replica
 * can take over without waiting for it to expire) and resolves. `change` is
 * emitted on every transition, `leading: false` before anything else once the
 * lock is in doubt.
 */
export interface Leadership {
  /** This replica's identity, recorded as the holder. */
  readonly identity: string;
  state(): LeaderState;
  on(event: 'change', listener: (state: LeaderState) => void): unknown;
  off(event: 'change', listener: (state: LeaderState) => void): unknown;
  start(signal: AbortSignal): Promise<void>;
}

export interface ElectionOptions {
  /** Recorded as the holder: unique among the replicas. */
  identity: string;
  /** Where each new term's epoch is recorded. */
  records: LeadershipRecords;
  /** @default CONTROLLER_LOCK */
  lockName?: string;
  logger: Logger;
}

/** What every implementation shares: its state and the one way it changes. */
export abstract class Election extends EventEmitter<{ change: [LeaderState] }> implements Leadership {
  readonly identity: string;
  protected readonly lockName: string;
  protected readonly records: LeadershipRecords;
  protected readonly log: Logger;
  private current: LeaderState = { leading: false, reason: 'not elected yet' };

  constructor(options: ElectionOptions) {
    super();
    this.identity = options.identity;
    this.lockName = options.lockName ?? CONTROLLER_LOCK;
    this.records = options.records;
    this.log = options.logger;
  }

  state(): LeaderState {
    return this.current;
  }

  abstract start(signal: AbortSignal): Promise<void>;

  /**
   * Called once the lock is won: the store records this replica with the next
   * epoch before it leads, so launches recorded under the previous leader's
   * epoch are refused from now on.
   */
  protected async becomeLeader(): Promise<void> {
    const term = await this.records.takeOver(this.lockName, this.identity);
    this.current = { leading: true, term };
    this.log.info({ epoch: term.epoch }, 'leading');
    this.emit('change', this.current);
  }

  protected stopLeading(reason: string): void {
    const was = this.current.leading;
    this.current = { leading: false, reason };
    if (was && reason === SHUTTING_DOWN) this.log.info('stopped leading: shutting down');
    else if (was) this.log.warn({ reason }, 'stopped leading');
    if (was) this.emit('change', this.current);
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
