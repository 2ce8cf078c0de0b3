/**
 * The webhook outbox (migration 0006): every notification is a row written
 * before it is sent, so deliveries outlive the process, and every attempt is
 * kept on its row for `GET /apps/{app}/notifications/`. The notifier
 * (src/controller/notifier.ts) decides what to send and when; this module
 * only keeps the rows.
 */
import type { Sequelize } from 'sequelize';
import type { NotifyEvent } from '../model/types';
import { isForeignKeyViolation, type PlainSql } from './plain-sql';
import { parseJson } from './rows';
import type { Page } from './types';

export const NotificationState = {
  /** Waiting for its first attempt or its next retry. */
  Pending: 'Pending',
  /** The receiver answered 2xx. */
  Delivered: 'Delivered',
  /** Every attempt failed; no more are made. */
  Failed: 'Failed',
  /** Never sent: the outbox was full when it was made. */
  Dropped: 'Dropped',
} as const;
export type NotificationState = (typeof NotificationState)[keyof typeof NotificationState];

/** One try at delivering a notification. */
export interface DeliveryAttempt {
  attempt: number;
  at: string;
  durationMs: number;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** Why the attempt failed, when it did: a non-2xx answer, a timeout, a refused connection. */
  error?: string;
}

export interface NotificationRecord {
  id: number;
  appId: number;
  /** The index of the webhook in the App's `spec.notify`, when the notification was made. */
  webhook: number;
  url: string;
  event: NotifyEvent;
  runName?: string;
  state: NotificationState;
  /** The JSON body sent, the same on every attempt. */
  payload: string;
  attempts: DeliveryAttempt[];
  nextAttemptAt?: string;
  createdAt: string;
  updatedAt: string;
}

export interface NewNotification {
  appId: number;
  /** Unique per notification: a second enqueue with the same key does nothing. */
  key: string;
  webhook: number;
  url: string;
  event: NotifyEvent;
  runName?: string;
  payload: string;
}

/** What `enqueue` did. */
export type Enqueued = 'queued' | 'dropped' | 'duplicate';

interface NotificationRow {
  id: number;
  appId: number;
  webhook: number;
  url: string;
  event: NotifyEvent;
  runName: string | null;
  state: NotificationState;
  payload: string;
  attempts: DeliveryAttempt[] | string;
  nextAttemptAt: string | Date | null;
  createdAt: string | Date;
  updatedAt: string | Date;
}

const SELECT =
  'SELECT id, app_id AS "appId", webhook, url, event, run_name AS "runName", state, payload, attempts, ' +
  'next_attempt_at AS "nextAttemptAt", created_at AS "createdAt", updated_at AS "updatedAt" FROM notifications';

export class NotificationRecords {
  /** The store's, whose statements it closes with the store. */
  constructor(
    private readonly sequelize: Sequelize,
    private readonly sql: PlainSql,
  ) {}

  /**
   * Adds a notification to the outbox, due at `now`; when `maxPending` are
   * waiting already, records it as Dropped instead. A key seen before (the
   * same run's end observed twice) adds nothing. An App deleted meanwhile
   * gets nothing either.
   */
  async enqueue(input: NewNotification, now: Date, maxPending: number): Promise<Enqueued> {
    const state = (await this.countPending()) >= maxPending ? NotificationState.Dropped : NotificationState.Pending;
    const at = this.date(now);
    try {
      const added = await this.sql.execute(
        'INSERT INTO notifications (app_id, key, webhook, url, event, run_name, state, payload, attempts, next_attempt_at, created_at, updated_at) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING',
        [
          input.appId,
          input.key,
          input.webhook,
          input.url,
          input.event,
          input.runName ?? null,
          state,
          input.payload,
          '[]',
          state === NotificationState.Pending ? at : null,
          at,
          at,
        ],
      );
      if (added === 0) return 'duplicate';
    } catch (err) {
      if (isForeignKeyViolation(err)) return 'duplicate';
      throw err;
    }
    return state === NotificationState.Pending ? 'queued' : 'dropped';
  }

  /** Pending notifications due by `now`, oldest due first, at most `limit`. */
  async due(now: Date, limit: number): Promise<NotificationRecord[]> {
    const rows = await this.sql.select<NotificationRow>(`${SELECT} WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at ASC, id ASC LIMIT ?`, [
      NotificationState.Pending,
      this.date(now),
      limit,
    ]);
    return rows.map(toRecord);
  }

  /** When the next Pending notification is due, if any is. */
  async nextDueAt(): Promise<Date | undefined> {
    const [row] = await this.sql.select<{ at: string | Date | null }>('SELECT MIN(next_attempt_at) AS at FROM notifications WHERE state = ?', [
      NotificationState.Pending,
    ]);
    return row?.at ? new Date(isoOf(row.at)) : undefined;
  }

  async countPending(): Promise<number> {
    const [row] = await this.sql.select<{ count: number | string }>('SELECT COUNT(*) AS count FROM notifications WHERE state = ?', [NotificationState.Pending]);
    return Number(row?.count ?? 0);
  }

  /** Appends an attempt and moves the notification on: to `state`, and (Pending) to its next attempt at `nextAttemptAt`. */
  async recordAttempt(record: NotificationRecord, attempt: DeliveryAttempt, state: NotificationState, nextAttemptAt?: Date): Promise<void> {
    const attempts = [...record.attempts, attempt];
    await this.sql.execute('UPDATE notifications SET attempts = ?, state = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?', [
      JSON.stringify(attempts),
      state,
      nextAttemptAt ? this.date(nextAttemptAt) : null,
      this.date(new Date(attempt.at)),
      record.id,
    ]);
  }

  /** An App's notifications, newest first. */
  async list(appId: number, page: { limit: number; offset: number }): Promise<Page<NotificationRecord>> {
    const rows = await this.sql.select<NotificationRow>(`${SELECT} WHERE app_id = ? ORDER BY id DESC LIMIT ? OFFSET ?`, [appId, page.limit, page.offset]);
    const [{ count }] = await this.sql.select<{ count: number | string }>('SELECT COUNT(*) AS count FROM notifications WHERE app_id = ?', [appId]);
    return { items: rows.map(toRecord), total: Number(count) };
  }

  /**
   * The phases of an App's finished runs before run `beforeRunId`, newest
   * first, at most `limit`: Succeeded and Failed only (a cancelled run says
   * nothing about whether the App works). What Recovered and `after` count.
   */
  async earlierOutcomes(appId: number, beforeRunId: number, limit: number): Promise<string[]> {
    const rows = await this.sql.select<{ phase: string }>(
      `SELECT phase FROM runs WHERE app_id = ? AND id < ? AND phase IN ('Succeeded', 'Failed') ORDER BY id DESC LIMIT ?`,
      [appId, beforeRunId, limit],
    );
    return rows.map((row) => row.phase);
  }

  /** A time as the dialect's DATE columns hold it; on SQLite the text must sort as the time does. */
  private date(at: Date): string | Date {
    return this.sequelize.getDialect() === 'sqlite' ? at.toISOString().replace('T', ' ').replace('Z', ' +00:00') : at;
  }
}

function isoOf(value: string | Date): string {
  if (value instanceof Date) return value.toISOString();
  // SQLite: 'YYYY-MM-DD HH:MM:SS.SSS +00:00'.
  return new Date(value.replace(' ', 'T').replace(' +00:00', 'Z')).toISOString();
}

function toRecord(row: NotificationRow): NotificationRecord {
  return {
    id: Number(row.id),
    appId: Number(row.appId),
    webhook: Number(row.webhook),
    url: row.url,
    event: row.event,
    ...(row.runName ? { runName: row.runName } : {}),
    state: row.state,
    payload: row.payload,
    attempts: parseJson(row.attempts),
    ...(row.nextAttemptAt ? { nextAttemptAt: isoOf(row.nextAttemptAt) } : {}),
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
}
