/**
 * The notifier: calls an App's webhooks (`spec.notify`) when its runs end
 * and when a scheduled due time is missed. It runs on the leader only
 * (src/server.ts starts it with the controller) and is fed by the store's
 * change feed, which reports every terminal run whichever replica wrote it.
 *
 * Sending never holds up a run: deciding what to send only writes a row to
 * the outbox (src/store/notifications.ts), and the rows are sent apart from
 * the controller, a bounded number at once, each request with a deadline.
 * A row stays Pending until it is delivered or out of attempts, so a berth
 * that restarts sends what it had not sent yet. Delivery is at least once:
 * each request carries its notification's id (`X-Berth-Delivery`) for
 * receivers that must not act twice.
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, type Logger } from '../log';
import { metrics as processMetrics, type BerthMetrics } from '../metrics';
import { MAX_AFTER } from '../model/notify';
import { API_VERSION, NotifyEvent, RunPhase, type NotifyWebhook, type SecretRef } from '../model/types';
import { NotificationState, type NotificationRecord } from '../store/notifications';
import type { Store, StoredApp, StoredRun, StoreEvent } from '../store/store';

export interface NotifierOptions {
  store: Store;
  logger?: Logger;
  metrics?: BerthMetrics;
  /** The time now; tests pass a clock they move. @default Date.now */
  clock?: () => Date;
  /** The address people reach berth at (`--public-url`): notifications link to the run there. @default none: no link */
  publicUrl?: string;
  /** How long one request may take, answer included. @default 10000 */
  timeoutMs?: number;
  /** Requests in flight at once, over all webhooks. @default 4 */
  concurrency?: number;
  /** Notifications waiting to be sent beyond which new ones are recorded as Dropped. @default 1000 */
  maxPending?: number;
  /** Attempts per notification, the first included. @default 8 */
  maxAttempts?: number;
  /** Delay before the first retry; doubles with each further one. @default 1000 */
  retryBaseMs?: number;
  /** The longest delay between attempts. @default 300000 (5 minutes) */
  retryMaxMs?: number;
  /** How often the outbox is looked at even when nothing woke the notifier. @default 1000 */
  pollMs?: number;
  /** Reads a webhook's secret. @default the server's environment variable or file */
  readSecret?: (ref: SecretRef) => Promise<string>;
}

/** A notification's body: what receivers parse (documented in docs/notifications.md). */
export interface NotificationPayload {
  apiVersion: typeof API_VERSION;
  kind: 'Notification';
  event: NotifyEvent;
  app: string;
  /** The run that ended; absent for Missed. */
  run?: {
    name: string;
    uid: string;
    phase: RunPhase;
    reason?: string;
    message?: string;
    exitCode?: number;
    attempts: number;
    startedAt?: string;
    finishedAt?: string;
  };
  /** Missed: the due time that got no run. */
  scheduledAt?: string;
  /** Failed runs of the App in a row, this one included (Failed), or before this one (Recovered). */
  consecutiveFailures?: number;
  /** The run (or, Missed, the App) in berth's API, when berth knows its public address. */
  link?: string;
}

/**
 * Which event, if any, a webhook is called with for a run that ended.
 * `earlier` is the phases of the App's finished runs before it, newest
 * first. One call per run and webhook: a success that ends a streak of
 * failures is Recovered to a webhook that asked for it, else Succeeded.
 */
export function eventFor(webhook: NotifyWebhook, phase: RunPhase, earlier: readonly string[]): { event: NotifyEvent; consecutiveFailures: number } | undefined {
  const after = webhook.after ?? 1;
  const streak = earlier.findIndex((p) => p !== RunPhase.Failed);
  const failedBefore = streak === -1 ? earlier.length : streak;
  if (phase === RunPhase.Failed) {
    return webhook.on.includes(NotifyEvent.Failed) && failedBefore + 1 >= after
      ? { event: NotifyEvent.Failed, consecutiveFailures: failedBefore + 1 }
      : undefined;
  }
  if (phase !== RunPhase.Succeeded) return undefined;
  if (webhook.on.includes(NotifyEvent.Recovered) && failedBefore >= after) return { event: NotifyEvent.Recovered, consecutiveFailures: failedBefore };
  return webhook.on.includes(NotifyEvent.Succeeded) ? { event: NotifyEvent.Succeeded, consecutiveFailures: 0 } : undefined;
}

/** The delay before attempt `attempt + 1`, after `attempt` attempts failed: base, doubling, capped. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/**
 * `X-Berth-Signature`'s value: HMAC-SHA256, keyed by the secret, of the
 * timestamp header's value, a dot, and the raw body. Signing the timestamp
 * with the body is what lets a receiver refuse a replayed request.
 */
export function signatureOf(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Reads a secret from the server's environment or a file (its first line), refusing a missing or empty one. */
export async function readServerSecret(ref: SecretRef): Promise<string> {
  if (ref.env !== undefined) {
    const value = process.env[ref.env];
    if (!value) throw new Error(`secretRef: the environment variable ${ref.env} is not set on the server`);
    return value;
  }
  const content = await readFile(ref.file!, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`secretRef: cannot read ${ref.file}: ${err.code ?? err.message}`);
  });
  const value = content.split(/\r?\n/)[0];
  if (!value) throw new Error(`secretRef: ${ref.file} is empty`);
  return value;
}

/** Makes and sends notifications while `start`'s signal has not aborted. */
export class Notifier {
  private readonly store: Store;
  private readonly log: Logger;
  private readonly metrics: BerthMetrics;
  private readonly clock: () => Date;
  private readonly publicUrl?: string;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly maxPending: number;
  private readonly maxAttempts: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly pollMs: number;
  private readonly readSecret: (ref: SecretRef) => Promise<string>;
  /** Notifications being sent now, by id: never sent twice at once. */
  private readonly inFlight = new Map<number, Promise<void>>();
  private wake?: () => void;

  constructor(options: NotifierOptions) {
    this.store = options.store;
    this.log = options.logger ?? createLogger('info');
    this.metrics = options.metrics ?? processMetrics;
    this.clock = options.clock ?? (() => new Date());
    this.publicUrl = options.publicUrl?.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.concurrency = options.concurrency ?? 4;
    this.maxPending = options.maxPending ?? 1000;
    this.maxAttempts = options.maxAttempts ?? 8;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 300_000;
    this.pollMs = options.pollMs ?? 1000;
    this.readSecret = options.readSecret ?? readServerSecret;
  }

  /** Runs until `signal` aborts; resolves once the requests in flight are done (aborted ones stay Pending, for the next start). */
  /** How many deliveries have ended so far (see `send`). */
  private settled = 0;
  /** The runs that ended, made into notifications one after another. */
  private arriving: Promise<void> = Promise.resolve();

  async start(signal: AbortSignal): Promise<void> {
    const onChange = (event: StoreEvent) => {
      if (event.kind !== 'Run' || event.type === 'DELETED') return;
      const { phase } = event.object.status;
      if (phase !== RunPhase.Succeeded && phase !== RunPhase.Failed) return;
      // One run at a time, in the order they ended: the outbox's bound is a count read before each insert, which
      // two runs handled at once (a pool of PostgreSQL connections) would both pass.
      this.arriving = this.arriving
        .then(() => this.runFinished(event.object))
        .catch((err) => this.log.warn({ err, run: event.object.metadata.name }, 'could not make the notifications of a run that ended'));
    };
    this.store.on('change', onChange);
    try {
      while (!signal.aborted) {
        const woken = new Promise<void>((resolve) => (this.wake = resolve));
        await this.send(signal).catch((err) => this.log.error({ err }, 'notification pass failed; trying again'));
        await Promise.race([woken, sleep(this.pollMs, undefined, { signal }).catch(() => undefined)]);
      }
    } finally {
      this.store.off('change', onChange);
      await this.arriving;
      await Promise.all(this.inFlight.values());
    }
  }

  /** A run ended: each webhook that asked for what happened gets a notification. */
  async runFinished(run: StoredRun): Promise<void> {
    const app = await this.store.getApp(run.appId);
    const webhooks = app?.spec.notify;
    if (!app || !webhooks?.length) return;
    // As far back as any `after` can reach, so `consecutiveFailures` is the streak's length (up to that bound).
    const earlier = await this.store.notifications.earlierOutcomes(app.id, run.id, MAX_AFTER);
    for (const [index, webhook] of webhooks.entries()) {
      const decided = eventFor(webhook, run.status.phase, earlier);
      if (!decided) continue;
      const payload: NotificationPayload = {
        apiVersion: API_VERSION,
        kind: 'Notification',
        event: decided.event,
        app: app.metadata.name,
        run: {
          name: run.metadata.name,
          uid: run.metadata.uid,
          phase: run.status.phase,
          ...definedOnly({ reason: run.status.reason, message: run.status.message, exitCode: run.status.exitCode }),
          attempts: run.status.attempts,
          ...definedOnly({ startedAt: run.status.startedAt, finishedAt: run.status.finishedAt }),
        },
        ...(decided.consecutiveFailures ? { consecutiveFailures: decided.consecutiveFailures } : {}),
        ...this.link(`/apps/${encodeURIComponent(app.metadata.name)}/run/${encodeURIComponent(run.metadata.name)}/`),
      };
      await this.enqueue(app, index, webhook, `run:${run.metadata.uid}:${index}`, payload, run.metadata.name);
    }
  }

  /** A scheduled due time passed without a run (the scheduler calls this). */
  async missed(app: StoredApp, due: Date): Promise<void> {
    for (const [index, webhook] of (app.spec.notify ?? []).entries()) {
      if (!webhook.on.includes(NotifyEvent.Missed)) continue;
      const payload: NotificationPayload = {
        apiVersion: API_VERSION,
        kind: 'Notification',
        event: NotifyEvent.Missed,
        app: app.metadata.name,
        scheduledAt: due.toISOString(),
        ...this.link(`/apps/${encodeURIComponent(app.metadata.name)}/`),
      };
      await this.enqueue(app, index, webhook, `missed:${app.metadata.uid}:${due.getTime()}:${index}`, payload);
    }
  }

  private link(path: string): { link?: string } {
    return this.publicUrl ? { link: `${this.publicUrl}${path}` } : {};
  }

  private async enqueue(app: StoredApp, index: number, webhook: NotifyWebhook, key: string, payload: NotificationPayload, runName?: string): Promise<void> {
    const input = { appId: app.id, key, webhook: index, url: webhook.url, event: payload.event, runName, payload: JSON.stringify(payload) };
    const outcome = await this.store.notifications.enqueue(input, this.clock(), this.maxPending);
    if (outcome === 'dropped') {
      this.metrics.notifications.inc({ event: payload.event, state: NotificationState.Dropped });
      this.log.warn({ app: app.metadata.name, event: payload.event, maxPending: this.maxPending }, 'notification dropped: the outbox is full');
    }
    if (outcome === 'queued') this.wake?.();
  }

  /** Starts sending the due notifications that fit in the free slots. */
  private async send(signal: AbortSignal): Promise<void> {
    const free = this.concurrency - this.inFlight.size;
    if (free <= 0) return;
    // A delivery that ends while the query runs leaves the query's copy of its row stale (still Pending, and no
    // longer in flight): sending that copy would deliver it twice. So the query is read again until none ended.
    let due: NotificationRecord[];
    let settled: number;
    do {
      settled = this.settled;
      due = await this.store.notifications.due(this.clock(), free + this.inFlight.size);
    } while (settled !== this.settled);
    for (const record of due.filter((r) => !this.inFlight.has(r.id)).slice(0, free)) {
      const delivery = this.deliver(record, signal)
        .catch((err) => this.log.error({ err, notification: record.id }, 'could not record a notification attempt'))
        .finally(() => {
          this.settled++;
          this.inFlight.delete(record.id);
          this.wake?.();
        });
      this.inFlight.set(record.id, delivery);
    }
  }

  /** One attempt at one notification, recorded with what came of it. */
  private async deliver(record: NotificationRecord, stop: AbortSignal): Promise<void> {
    const started = this.clock();
    const attempt = record.attempts.length + 1;
    let status: number | undefined;
    let error: string | undefined;
    const webhook = await this.webhookOf(record);
    if (!webhook) {
      // Nobody asks for it any more (the webhook or its App was removed): not sent, and not retried.
      const tried = { attempt, at: started.toISOString(), durationMs: 0, error: "not sent: the webhook is no longer in the App's spec.notify" };
      await this.store.notifications.recordAttempt(record, tried, NotificationState.Failed);
      this.metrics.notifications.inc({ event: record.event, state: NotificationState.Failed });
      return;
    }
    try {
      const headers = await this.headersFor(record, webhook, started);
      const response = await fetch(record.url, {
        method: 'POST',
        body: record.payload,
        headers,
        // A redirect is an answer that is not 2xx: following one would send the body (and its signature) elsewhere.
        redirect: 'manual',
        signal: AbortSignal.any([stop, AbortSignal.timeout(this.timeoutMs)]),
      });
      status = response.status;
      await response.body?.cancel().catch(() => undefined);
      if (status < 200 || status > 299) error = `the receiver answered ${status}`;
    } catch (err) {
      // Stopping: the row stays as it was, to be sent by the next start.
      if (stop.aborted) return;
      error = describe(err, this.timeoutMs);
    }
    const finished = this.clock();
    const tried = { attempt, at: finished.toISOString(), durationMs: finished.getTime() - started.getTime(), ...definedOnly({ status, error }) };
    const event = record.event;
    if (!error) {
      await this.store.notifications.recordAttempt(record, tried, NotificationState.Delivered);
      this.metrics.notificationAttempts.inc({ result: 'delivered' });
      this.metrics.notifications.inc({ event, state: NotificationState.Delivered });
      return;
    }
    this.metrics.notificationAttempts.inc({ result: 'failed' });
    const host = new URL(record.url).host;
    if (attempt >= this.maxAttempts) {
      await this.store.notifications.recordAttempt(record, tried, NotificationState.Failed);
      this.metrics.notifications.inc({ event, state: NotificationState.Failed });
      this.log.warn({ notification: record.id, host, event, attempts: attempt, error }, 'notification not delivered: out of attempts');
      return;
    }
    const next = new Date(finished.getTime() + retryDelayMs(attempt, this.retryBaseMs, this.retryMaxMs));
    await this.store.notifications.recordAttempt(record, tried, NotificationState.Pending, next);
    this.log.info({ notification: record.id, host, event, attempt, error, retryAt: next.toISOString() }, 'notification attempt failed; retrying');
  }

  private async headersFor(record: NotificationRecord, webhook: NotifyWebhook, at: Date): Promise<Record<string, string>> {
    const timestamp = String(Math.floor(at.getTime() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'berth-notifier',
      'x-berth-event': record.event,
      'x-berth-delivery': String(record.id),
      'x-berth-timestamp': timestamp,
    };
    if (webhook.secretRef) headers['x-berth-signature'] = signatureOf(await this.readSecret(webhook.secretRef), timestamp, record.payload);
    return headers;
  }

  /**
   * The webhook a notification was made for, as the App declares it now (its
   * secretRef may have changed): the same place in `spec.notify` if it still
   * has the URL, else any webhook of that URL.
   */
  private async webhookOf(record: NotificationRecord): Promise<NotifyWebhook | undefined> {
    const webhooks = (await this.store.getApp(record.appId))?.spec.notify ?? [];
    const same = webhooks[record.webhook];
    return same?.url === record.url ? same : webhooks.find((w) => w.url === record.url);
  }
}

function describe(err: unknown, timeoutMs: number): string {
  const error = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (error.cause?.code) return `${error.cause.code}: ${error.cause.message ?? ''}`.trim();
  return error.message ?? String(err);
}

function definedOnly<T extends Record<string, unknown>>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<T>;
}
