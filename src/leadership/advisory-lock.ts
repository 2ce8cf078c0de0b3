/**
 * Leader election on PostgreSQL, outside a cluster: the leader is the
 * replica holding a session-level advisory lock, on a connection of its own
 * (not the store's pool, whose connections come and go). PostgreSQL frees
 * the lock the moment that session ends — a killed replica's socket closes,
 * a terminated backend is gone — so the next replica to try takes over
 * within one retry period. Losing the connection means losing leadership at
 * once: the session, and with it the lock, may already be another's.
 */
import { pgClient } from '../store/pg-client';
import { Election, pause, SHUTTING_DOWN, type ElectionOptions } from './leadership';

/** The part of pg's Client used here (pg ships no types of its own). */
interface LockConnection {
  connect(): Promise<void>;
  query<R>(sql: string, values?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}
interface LockConnectionOptions {
  connectionString: string;
  application_name: string;
  query_timeout: number;
  connectionTimeoutMillis: number;
  keepAlive: boolean;
}

export interface AdvisoryLockOptions extends ElectionOptions {
  /** The store's `postgres://` URL. */
  url: string;
  /**
   * How often a follower tries the lock, and the leader checks its connection.
   * @default 2000
   */
  retryPeriodMs?: number;
  /**
   * How long the leader's check of its connection may take before it counts
   * the connection (and the lock) as lost.
   * @default 10000
   */
  renewDeadlineMs?: number;
  /**
   * How long PostgreSQL keeps the lock's session once the leader stops
   * checking it (a frozen or cut-off leader): the session's
   * `idle_session_timeout`, so the server frees the lock even when no FIN
   * ever arrives. Longer than the renew deadline, which a live leader checks within.
   * @default 15000
   */
  leaseDurationMs?: number;
}

/** The advisory-lock election. See the module comment. */
export class AdvisoryLockElection extends Election {
  private readonly url: string;
  private readonly retryPeriodMs: number;
  private readonly renewDeadlineMs: number;
  private readonly leaseDurationMs: number;

  constructor(options: AdvisoryLockOptions) {
    super(options);
    this.url = options.url;
    this.retryPeriodMs = options.retryPeriodMs ?? 2000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
  }

  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const Client = pgClient<LockConnectionOptions, LockConnection>();
      const connection = new Client({
        connectionString: this.url,
        application_name: `berth leader election ${this.identity}`.slice(0, 63),
        query_timeout: this.renewDeadlineMs,
        connectionTimeoutMillis: this.renewDeadlineMs,
        keepAlive: true,
      });
      // Settles with why the connection went, however it goes; until then, the session holds the lock.
      const lost = new Promise<string>((resolve) => {
        connection.on('error', (err) => resolve(`the lock's database connection failed: ${err.message}`));
        connection.on('end', () => resolve(`the lock's database connection closed`));
      });
      try {
        await connection.connect();
        await this.bound(connection);
        if (await this.campaign(connection, lost, signal)) {
          await this.becomeLeader();
          const why = await this.hold(connection, lost, signal);
          this.stopLeading(why ?? SHUTTING_DOWN);
        }
      } catch (err) {
        this.stopLeading(`the lock's database connection failed: ${(err as Error).message}`);
        this.log.warn({ err }, 'leader election: cannot reach the database; trying again');
      } finally {
        // Ending the session frees the lock at once; a new connection is made for the next try.
        await connection.end().catch(() => undefined);
      }
      if (!(await pause(this.retryPeriodMs, signal))) break;
    }
    this.stopLeading(SHUTTING_DOWN);
  }

  /**
   * A session PostgreSQL ends by itself when its leader goes quiet: an idle
   * timeout of a lease duration (a live leader checks every retry period),
   * and TCP keepalives that find a peer gone without a word. Older servers
   * without `idle_session_timeout` (before 14) keep the keepalives only.
   */
  private async bound(connection: LockConnection): Promise<void> {
    const seconds = Math.max(1, Math.ceil(this.leaseDurationMs / 3000));
    await connection.query(`SET tcp_keepalives_idle = ${seconds}; SET tcp_keepalives_interval = ${seconds}; SET tcp_keepalives_count = 3`);
    try {
      await connection.query(`SET idle_session_timeout = ${Math.round(this.leaseDurationMs)}`);
    } catch (err) {
      this.log.debug({ err }, 'leader election: this PostgreSQL has no idle_session_timeout; relying on TCP keepalives');
    }
  }

  /** Tries the lock every retry period; true once held, false when stopped first. */
  private async campaign(connection: LockConnection, lost: Promise<string>, signal: AbortSignal): Promise<boolean> {
    for (;;) {
      const { rows } = await connection.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [this.lockName]);
      if (rows[0].locked) return true;
      this.stopLeading('another replica holds the advisory lock');
      const waited = await Promise.race([pause(this.retryPeriodMs, signal), lost.then((why) => why)]);
      if (typeof waited === 'string') throw new Error(waited);
      if (!waited) return false;
    }
  }

  /**
   * Holds the lock until the connection goes (returns why) or `signal`
   * aborts (returns undefined). A silent network partition sends no error,
   * so the connection is also checked each retry period, within the renew deadline.
   */
  private async hold(connection: LockConnection, lost: Promise<string>, signal: AbortSignal): Promise<string | undefined> {
    for (;;) {
      const waited = await Promise.race([pause(this.retryPeriodMs, signal), lost]);
      if (typeof waited === 'string') return waited;
      if (!waited) return undefined;
      try {
        await connection.query('SELECT 1');
      } catch (err) {
        return `the lock's database connection did not answer: ${(err as Error).message}`;
      }
    }
  }
}
