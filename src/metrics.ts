/**
 * berth's Prometheus metrics: one registry per process, served by the API
 * at `GET /metrics`. Tests that want isolated numbers make their own with
 * `createRegistry()` and `createMetrics()`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** A source of how many runs are in each phase right now, read on every scrape. */
export type RunCounter = () => Promise<Partial<Record<string, number>>>;

export interface BerthMetrics {
  /** Runs entering a phase, by that phase and the reason given. */
  runTransitions: Counter<'phase' | 'reason'>;
  /** From a run's first start (or its creation, if it never started) to its end, by final phase. */
  runDuration: Histogram<'phase'>;
  /** Keys waiting in the controller's work queue. */
  workqueueDepth: Gauge;
  /** How long a key waited in the work queue before a worker took it. */
  workqueueLatency: Histogram;
  /** How long one reconcile took. */
  reconcileDuration: Histogram;
  /** Reconciles that threw (and were retried with backoff). */
  reconcileErrors: Counter;
  /** Calls to a container runtime that failed, by runtime. */
  runtimeErrors: Counter<'runtime'>;
  /** 1 on the replica that leads (reconciles and syncs the folder), 0 on the others; 1 without leader election. */
  leader: Gauge;
  /** Copies of a run's output that stopped short at their deadline, by runtime. */
  logCopiesIncomplete: Counter<'runtime'>;
  /** Log lines dropped because stdout was not read fast enough (a stalled collector) or was closed. */
  logLinesDropped: Counter;
  /** How late each scheduled run was made, against its due time plus the App's jitter. */
  scheduleLateness: Histogram;
  /** Notifications that reached an end, by event and state: Delivered, Failed (out of attempts) or Dropped (the outbox was full). */
  notifications: Counter<'event' | 'state'>;
  /** Webhook requests made, by result: delivered or failed. */
  notificationAttempts: Counter<'result'>;
  /** Sets where the `berth_runs` gauge reads its numbers from (the controller points it at the store). */
  countRunsWith(counter: RunCounter | undefined): void;
}

/** A fresh registry with Node's default process metrics. */
export function createRegistry(): Registry {
  const fresh = new Registry();
  collectDefaultMetrics({ register: fresh });
  return fresh;
}

/** berth's metrics, registered on `register`. Call once per registry: names are unique within one. */
export function createMetrics(register: Registry): BerthMetrics {
  const registers = [register];
  let runCounter: RunCounter | undefined;
  new Gauge({
    name: 'berth_runs',
    help: 'Runs in the store, by phase.',
    labelNames: ['phase'],
    registers,
    async collect() {
      this.reset();
      if (!runCounter) return;
      const counts = await runCounter();
      for (const [phase, count] of Object.entries(counts)) this.set({ phase }, count ?? 0);
    },
  });
  return {
    runTransitions: new Counter({
      name: 'berth_run_transitions_total',
      help: 'Runs entering a phase, by phase and reason.',
      labelNames: ['phase', 'reason'],
      registers,
    }),
    runDuration: new Histogram({
      name: 'berth_run_duration_seconds',
      help: 'Time from a run starting to it finishing, by final phase.',
      labelNames: ['phase'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600],
      registers,
    }),
    workqueueDepth: new Gauge({ name: 'berth_workqueue_depth', help: 'Keys waiting in the controller work queue.', registers }),
    workqueueLatency: new Histogram({
      name: 'berth_workqueue_latency_seconds',
      help: 'How long a key waited in the work queue before being processed.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'berth_reconcile_duration_seconds',
      help: 'How long one reconcile of a key took.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
      registers,
    }),
    reconcileErrors: new Counter({ name: 'berth_reconcile_errors_total', help: 'Reconciles that failed and were retried.', registers }),
    runtimeErrors: new Counter({
      name: 'berth_runtime_errors_total',
      help: 'Failed calls to a container runtime, by runtime.',
      labelNames: ['runtime'],
      registers,
    }),
    leader: new Gauge({ name: 'berth_leader', help: 'Whether this replica leads: 1 on the leader, 0 on followers.', registers }),
    logCopiesIncomplete: new Counter({
      name: 'berth_run_log_copies_incomplete_total',
      help: "Copies of a run's output into the store that stopped short at their deadline, by runtime.",
      labelNames: ['runtime'],
      registers,
    }),
    logLinesDropped: new Counter({
      name: 'berth_log_lines_dropped_total',
      help: 'Log lines dropped because stdout was not read fast enough or was closed.',
      registers,
    }),
    scheduleLateness: new Histogram({
      name: 'berth_schedule_lateness_seconds',
      help: "How late each scheduled run was made, against its due time plus the App's jitter.",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      registers,
    }),
    notifications: new Counter({
      name: 'berth_notifications_total',
      help: 'Notifications that reached an end, by event and state (Delivered, Failed, Dropped).',
      labelNames: ['event', 'state'],
      registers,
    }),
    notificationAttempts: new Counter({
      name: 'berth_notification_attempts_total',
      help: 'Webhook requests made, by result (delivered, failed).',
      labelNames: ['result'],
      registers,
    }),
    countRunsWith(counter) {
      runCounter = counter;
    },
  };
}

/** The process-wide registry that `GET /metrics` serves. */
export const registry = createRegistry();

/** berth's metrics on the process-wide registry. */
export const metrics = createMetrics(registry);
