import { apiPath, ApiError, getAll, getPage } from './api';
import { watchEvents } from './events';
import { Observable } from './observable';
import type { AppAnswer, RunAnswer, WatchEvent } from './types';

export type Connection = 'connecting' | 'live' | 'reconnecting';

/** Runs read at once to find each App's last run; Apps whose last run is older are asked one by one. */
const RECENT_RUNS = 1000;
/** Requests in flight while filling in the last runs of Apps not among the recent runs. */
const FILL_CONCURRENCY = 4;

/**
 * The Apps and each App's last run, kept current from `/events/`. On every
 * (re)connection the lists are read again once the stream is open, so a
 * change made while disconnected is never missed; a change that arrives
 * while they are being read wins over the list's older copy.
 */
class LiveState extends Observable {
  apps = new Map<string, AppAnswer>();
  lastRun = new Map<string, RunAnswer>();
  loaded = false;
  error: string | null = null;
  connection: Connection = 'connecting';
  /** Bumped each time the event stream opens: views holding their own copies read them again. */
  opened = 0;

  private sorted: AppAnswer[] | null = null;
  private touched: Set<string> | null = null;
  private readonly eventListeners = new Set<(event: WatchEvent) => void>();

  /** Watches until the returned function is called (a new session, or the page going away). */
  start(): () => void {
    const stop = new AbortController();
    this.loaded = false;
    this.connection = 'connecting';
    void watchEvents(
      {
        onOpen: () => {
          this.connection = 'live';
          this.opened++;
          this.changed();
          void this.relist(stop.signal);
        },
        onEvent: (event) => this.apply(event),
        onDrop: (reason) => {
          this.connection = 'reconnecting';
          this.error = `live updates interrupted (${reason}); reconnecting`;
          this.changed();
        },
      },
      stop.signal,
    );
    return () => stop.abort();
  }

  /** Every change as it arrives, for views that keep more than this state does (a run's page, the sources). */
  onEvent(listener: (event: WatchEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  /** The Apps by name. */
  appList(): AppAnswer[] {
    this.sorted ??= [...this.apps.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return this.sorted;
  }

  private apply(event: WatchEvent): void {
    if (event.type !== 'SYNC') {
      const object = event.object;
      if (object.kind === 'App') this.applyApp(event.type, object);
      else this.applyRun(event.type, object);
    }
    for (const listener of [...this.eventListeners]) listener(event);
  }

  private applyApp(type: 'ADDED' | 'MODIFIED' | 'DELETED', app: AppAnswer): void {
    const name = app.metadata.name;
    const current = this.apps.get(name);
    this.touched?.add(name);
    if (type === 'DELETED') {
      if (current && current.metadata.uid !== app.metadata.uid) return;
      this.apps.delete(name);
      this.lastRun.delete(name);
    } else {
      if (current && !newer(app, current)) return;
      this.apps.set(name, app);
    }
    this.sorted = null;
    this.changed();
  }

  private applyRun(type: 'ADDED' | 'MODIFIED' | 'DELETED', run: RunAnswer): void {
    const current = this.lastRun.get(run.app);
    if (type === 'DELETED') {
      // History pruning deletes the oldest runs; the last one goes only with its App.
      if (current?.id === run.id) this.lastRun.delete(run.app);
    } else if (!current || run.id > current.id || (run.id === current.id && newer(run, current))) {
      this.lastRun.set(run.app, run);
    } else {
      return;
    }
    this.changed();
  }

  private async relist(signal: AbortSignal): Promise<void> {
    this.touched = new Set();
    try {
      const [apps, runs] = await Promise.all([getAll<AppAnswer>('apps/', signal), getPage<RunAnswer>('runs/', { limit: RECENT_RUNS }, signal)]);
      const next = new Map(apps.map((app) => [app.metadata.name, app]));
      for (const name of this.touched) {
        const current = this.apps.get(name);
        if (current) next.set(name, current);
        else next.delete(name);
      }
      const last = new Map<string, RunAnswer>();
      for (const run of [...runs.items, ...this.lastRun.values()]) {
        const seen = last.get(run.app);
        if (next.has(run.app) && (!seen || run.id > seen.id || (run.id === seen.id && newer(run, seen)))) last.set(run.app, run);
      }
      this.apps = next;
      this.lastRun = last;
      this.sorted = null;
      this.loaded = true;
      this.error = null;
      this.changed();
      // Runs are newest first: when there are more than were read, Apps not among them may still have run.
      if (runs.total > runs.items.length) await this.fillLastRuns(signal);
    } catch (err) {
      if (signal.aborted || (err instanceof ApiError && err.status === 401)) return;
      this.error = `cannot read the Apps: ${(err as Error).message}`;
      this.changed();
    } finally {
      this.touched = null;
    }
  }

  private async fillLastRuns(signal: AbortSignal): Promise<void> {
    const missing = [...this.apps.keys()].filter((name) => !this.lastRun.has(name));
    const worker = async (): Promise<void> => {
      for (let name = missing.shift(); name !== undefined && !signal.aborted; name = missing.shift()) {
        const { items } = await getPage<RunAnswer>(apiPath('apps', name, 'run'), { limit: 1 }, signal);
        if (items[0] && !this.lastRun.has(name)) {
          this.lastRun.set(name, items[0]);
          this.changed();
        }
      }
    };
    await Promise.all(Array.from({ length: FILL_CONCURRENCY }, worker));
  }
}

/** Whether `a` is a later state than `b` of the same object (a different uid: a new object, later by definition). */
function newer(a: AppAnswer | RunAnswer, b: AppAnswer | RunAnswer): boolean {
  return a.metadata.uid !== b.metadata.uid || Number(a.metadata.resourceVersion) >= Number(b.metadata.resourceVersion);
}

export const live = new LiveState();
