/**
 * Changes across replicas. A store's `change` events are emitted in the
 * process that wrote; replicas sharing one PostgreSQL database also need each
 * other's (a run asked for on a follower must wake the leader's controller; a
 * follower's `/events/` must show the leader's progress). Each write is
 * published with NOTIFY on one channel; each store LISTENs on a connection of
 * its own and re-emits the others' changes, reading ADDED and MODIFIED
 * objects fresh (a notification is a hint, never the state; and its payload
 * is limited to 8000 bytes). DELETED objects are gone, so they travel in the
 * payload, trimmed to what their listeners read when they are large.
 */
import type { Logger } from 'pino';
import { pgClient } from './pg-client';
import type { StoreEvent } from './types';

export const CHANGE_CHANNEL = 'berth_changes';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_PAYLOAD = 7900;

/** A change as it travels: who wrote it, and what changed. */
export interface ChangeNotice {
  /** The publishing store instance: it already emitted the change itself. */
  origin: string;
  type: StoreEvent['type'];
  kind: StoreEvent['kind'];
  id: number;
  /** DELETED only: the object as it was. */
  object?: StoreEvent['object'];
}

/** The payload of `event`, published by store instance `origin`. */
export function noticeOf(origin: string, event: StoreEvent): string {
  const notice: ChangeNotice = { origin, type: event.type, kind: event.kind, id: event.object.id };
  if (event.type !== 'DELETED') return JSON.stringify(notice);
  const whole = JSON.stringify({ ...notice, object: event.object });
  if (whole.length <= MAX_PAYLOAD) return whole;
  // What a deleted object's listeners read: its identity and status, and a run's runtime (to find its workloads).
  const object = event.object;
  const trimmed =
    event.kind === 'Run'
      ? {
          ...event.object,
          metadata: { ...object.metadata, labels: {} },
          spec: { app: event.object.spec.app, template: { runtime: event.object.spec.template.runtime } },
        }
      : { ...object, metadata: { ...object.metadata, labels: {} }, spec: {} };
  return JSON.stringify({ ...notice, object: trimmed });
}

/** The part of pg's Client the listener uses (pg ships no types). */
interface ListenConnection {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}
interface ListenConnectionOptions {
  connectionString: string;
  application_name: string;
  keepAlive: boolean;
}

/**
 * LISTENs for other stores' changes until `stop`. A lost connection is made
 * again after a pause, and `onReconnect` called: changes may have been
 * missed meanwhile, which the controller's periodic resync makes good.
 */
export class ChangeListener {
  private connection?: ListenConnection;
  private stopped = false;
  private retry?: NodeJS.Timeout;

  constructor(
    private readonly options: {
      url: string;
      origin: string;
      onNotice: (notice: ChangeNotice) => void;
      logger?: Logger;
      /** @default 1000 */
      retryMs?: number;
    },
  ) {}

  /** Resolves once listening (the first time); rejects when the first connection fails. */
  async start(): Promise<void> {
    const Client = pgClient<ListenConnectionOptions, ListenConnection>();
    const connection = new Client({ connectionString: this.options.url, application_name: 'berth change feed', keepAlive: true });
    connection.on('notification', (message) => this.receive(message.payload));
    const lost = (): void => {
      if (this.connection !== connection || this.stopped) return;
      this.connection = undefined;
      void connection.end().catch(() => undefined);
      this.options.logger?.warn('change feed: the LISTEN connection was lost; reconnecting');
      this.retry = setTimeout(() => void this.start().catch(() => this.scheduleRetry()), this.options.retryMs ?? 1000);
    };
    connection.on('error', lost);
    connection.on('end', lost);
    this.connection = connection;
    try {
      await connection.connect();
      await connection.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (err) {
      this.connection = undefined;
      await connection.end().catch(() => undefined);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const connection = this.connection;
    this.connection = undefined;
    await connection?.end().catch(() => undefined);
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.retry = setTimeout(() => void this.start().catch(() => this.scheduleRetry()), this.options.retryMs ?? 1000);
  }

  private receive(payload: string | undefined): void {
    if (!payload) return;
    let notice: ChangeNotice;
    try {
      notice = JSON.parse(payload) as ChangeNotice;
    } catch {
      return;
    }
    if (notice.origin !== this.options.origin) this.options.onNotice(notice);
  }
}
