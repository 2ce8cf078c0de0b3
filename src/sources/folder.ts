import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import pino, { type Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ReadinessCheck } from '../server-part';
import { ConfigError } from '../errors';
import type { Admission } from '../model/containment';
import { registry as processRegistry } from '../metrics';
import type { Store, StoreEvent } from '../store/store';
import { FolderBounds } from './bounds';
import { ChangeBatcher } from './change-batcher';
import { gitCommit } from './git';
import { sourceMetrics, type SourceMetrics } from './metrics';
import { isIgnored, isManifestPath, listManifests, relativePath } from './paths';
import type { FileSyncState, FolderReport, SyncEvent } from './report';
import { readSnapshot, UNSETTLED, type FileSnapshot } from './snapshot';
import { syncFiles, type FileRecord } from './sync-pass';

export interface FolderSourceOptions {
  /** The apps folder; every `*.yaml` / `*.yml` below it is a manifest file. */
  dir: string;
  store: Store;
  logger?: Logger;
  /**
   * Quiet time after a file's last change before it is read, so that an
   * editor's or git's several writes apply once.
   * @default 50
   */
  debounceMs?: number;
  /**
   * How often the whole folder is read again, for changes no watcher reports
   * (a ConfigMap's symlink swap, a network filesystem). Unchanged files cost
   * a read and a hash. 0 turns it off.
   * @default 60000
   */
  resyncIntervalMs?: number;
  /**
   * Larger files are reported as errors and not applied.
   * @default 1048576
   */
  maxFileBytes?: number;
  /** What the server allows an App (registries, capabilities, networks); a refused App holds its file. Absent: nothing is refused. */
  admission?: Admission;
  /**
   * Where `berth_source_files` and `berth_source_apply_seconds` are registered.
   * @default the process-wide registry of src/metrics.ts
   */
  registry?: Registry;
}

const READ_CONCURRENCY = 64;

/**
 * Keeps the store's Apps (and declared Runs) in step with a folder of
 * manifests, as Argo CD or Flux keep a cluster in step with Git: a
 * start-up scan reconciles everything before `ready`, then a watcher
 * applies each change within a debounce. Changed files are applied in
 * batches by a single worker (see ./sync-pass.ts for the rules), so a
 * `git pull` of hundreds of files costs a few passes, not hundreds.
 *
 * Emits `sync` ({@link SyncEvent}) per file applied, held or deleted.
 */
export class FolderSource extends EventEmitter<{ sync: [SyncEvent] }> {
  readonly dir: string;
  /** Resolves once the start-up scan has reconciled folder and store; rejects if the source stops first. */
  readonly ready: Promise<void>;

  private readonly store: Store;
  private readonly logger: Logger;
  private readonly resyncIntervalMs: number;
  private readonly maxFileBytes: number;
  private readonly admission?: Admission;
  private readonly metrics: SourceMetrics;
  private readonly changes: ChangeBatcher;
  private readonly records = new Map<string, FileRecord>();
  /** The folder's real extent: nothing outside it is read or watched. */
  private readonly bounds: FolderBounds;
  /** Links below the folder reported as leading outside it, by relative path: watched for through their parent's raw events. */
  private readonly outsideLinks = new Set<string>();
  private watcher: FSWatcher | undefined;
  /** The folder's real path when the watcher was made; the watcher is made again when it moves. */
  private watchedRealDir: string | undefined;
  private rewatching: Promise<void> | undefined;
  private stopping = false;
  /** App name → files waiting for that App to change (conflicts, Runs whose App is missing). */
  private readonly waiters = new Map<string, Set<string>>();
  private started = false;
  private readyState = false;
  private markReady!: () => void;
  private failReady!: (err: Error) => void;
  private commit: string | undefined;
  private gitRefresh: Promise<void> | undefined;
  private lastSyncAt: string | undefined;

  constructor(options: FolderSourceOptions) {
    super();
    this.dir = path.resolve(options.dir);
    this.bounds = new FolderBounds(this.dir);
    this.store = options.store;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'folder-source' });
    this.changes = new ChangeBatcher({
      debounceMs: options.debounceMs ?? 50,
      process: (paths) => this.syncBatch(paths),
      onError: (err, paths, retryInMs) => this.logger.error({ err, files: paths.length, retryInMs }, 'applying the apps folder failed; retrying'),
    });
    this.resyncIntervalMs = options.resyncIntervalMs ?? 60_000;
    this.maxFileBytes = options.maxFileBytes ?? 1024 * 1024;
    this.admission = options.admission;
    this.metrics = sourceMetrics(options.registry ?? processRegistry);
    this.ready = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    // Nobody may be waiting on `ready` when the source stops early; that is not an unhandled error.
    this.ready.catch(() => undefined);
  }

  isReady(): boolean {
    return this.readyState;
  }

  /** The `/readyz` check: not ready until the start-up scan has reconciled folder and store. */
  readinessCheck(): ReadinessCheck {
    return {
      name: 'apps-folder',
      check: async () => (this.readyState ? { ready: true } : { ready: false, reason: `the first sync of ${this.dir} has not finished` }),
    };
  }

  /**
   * Watches and applies until `signal` aborts, then closes the watcher and
   * lets the batch in progress finish. Rejects with a ConfigError when the
   * folder does not exist: pruning every file-owned App because of a typo
   * in `--apps-dir` would be worse than not starting.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.started) throw new Error('a FolderSource starts once; make a new one to start again');
    this.started = true;
    if (signal.aborted) return this.failReady(new Error('folder source stopped before it was ready'));
    if (!fs.statSync(this.dir, { throwIfNoEntry: false })?.isDirectory()) {
      const err = new ConfigError(`apps folder ${this.dir} does not exist or is not a folder`);
      this.failReady(err);
      throw err;
    }
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const onChange = (event: StoreEvent): void => this.onStoreChange(event);
    const untrack = this.metrics.track(this);
    this.store.on('change', onChange);
    let resync: NodeJS.Timeout | undefined;
    try {
      await this.bounds.refresh();
      await Promise.race([this.startWatcher(), aborted]);
      if (!signal.aborted) {
        const started = Date.now();
        this.changes.enqueue(await this.everyKnownFile());
        await Promise.race([this.changes.whenIdle(), aborted]);
        if (!signal.aborted) {
          this.readyState = true;
          this.markReady();
          this.logger.info({ files: this.records.size, ms: Date.now() - started }, 'apps folder synced');
        }
      }
      if (this.resyncIntervalMs > 0) resync = setInterval(() => void this.resync(), this.resyncIntervalMs);
      await aborted;
    } finally {
      this.stopping = true;
      clearInterval(resync);
      this.store.off('change', onChange);
      untrack();
      await this.rewatching;
      await this.watcher?.close();
      await this.changes.stop();
      this.failReady(new Error('folder source stopped before it was ready'));
    }
  }

  /** Resolves when no change that has been seen is waiting to be applied. For tests and benchmarks. */
  whenIdle(): Promise<void> {
    return this.changes.whenIdle();
  }

  /** The sync status of every file, for `GET /sources/`. */
  report(): FolderReport {
    const files = [...this.records.values()]
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .map(({ declaredApps: _d, waitingOn: _w, ...file }) => ({ ...file, errors: [...file.errors], objects: [...file.objects] }));
    const counts = this.countFiles();
    return {
      kind: 'folder',
      dir: this.dir,
      ready: this.readyState,
      ...(this.commit ? { git: { commit: this.commit } } : {}),
      ...(this.lastSyncAt ? { lastSyncAt: this.lastSyncAt } : {}),
      summary: { files: files.length, synced: counts.Synced, error: counts.Error },
      files,
    };
  }

  /** How many files are in each state (the `berth_source_files` gauge). */
  countFiles(): Record<FileSyncState, number> {
    const counts: Record<FileSyncState, number> = { Synced: 0, Error: 0 };
    for (const record of this.records.values()) counts[record.state]++;
    return counts;
  }

  /** Makes the watcher (closing the one before, if any) and resolves once it has read the folder. */
  private async startWatcher(): Promise<void> {
    const previous = this.watcher;
    const watcher = this.watch();
    this.watcher = watcher;
    this.watchedRealDir = this.bounds.real;
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    await previous?.close();
  }

  /**
   * The folder's real path moved: it is reached through a link that was
   * swapped (git-sync's `--link`). The watcher still watches the old
   * folder, so it is made again, and everything is read again.
   */
  private rewatch(): void {
    if (this.rewatching || this.stopping) return;
    this.logger.info(
      { dir: this.dir, now: this.bounds.real, was: this.watchedRealDir },
      'the apps folder moved (its link was swapped); watching where it is now',
    );
    this.rewatching = this.startWatcher()
      .then(async () => this.changes.enqueue(await this.everyKnownFile()))
      .catch((err) => this.logger.warn({ err }, 'watching the moved apps folder failed; the next rescan retries'))
      .finally(() => {
        this.rewatching = undefined;
      });
  }

  private watch(): FSWatcher {
    const watcher = watch(this.dir, {
      ignoreInitial: true,
      // Our own debounce coalesces unlink+add; chokidar's would only add 100 ms to every delete.
      atomic: false,
      // chokidar follows links: one leading out of the folder must never be, or a link to / would watch the whole host.
      ignored: (absolute: string) => isIgnored(relativePath(this.dir, absolute)) || this.bounds.leadsOutside(absolute),
    });
    // The filter hides links leading out, so their parent folder's raw events are how one appearing, changing or going is seen.
    watcher.on('raw', (_event, filename, details) => {
      const watchedPath = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (typeof filename !== 'string' || !filename || typeof watchedPath !== 'string') return;
      const absolute = path.join(watchedPath, filename);
      const relative = relativePath(this.dir, absolute);
      if (relative === '..' || relative.startsWith('../') || isIgnored(relative)) return;
      if (this.outsideLinks.has(relative) || (isSymbolicLink(absolute) && this.bounds.leadsOutside(absolute))) {
        this.changes.touch(relative);
      }
    });
    watcher.on('all', (event, absolute) => {
      const relative = relativePath(this.dir, absolute);
      if (event === 'unlinkDir') {
        // Files of a removed folder are not always reported one by one.
        for (const known of this.records.keys()) if (known.startsWith(`${relative}/`)) this.changes.touch(known);
      } else if (event !== 'addDir' && isManifestPath(relative)) {
        this.changes.touch(relative);
      }
    });
    watcher.on('error', (err) => this.logger.warn({ err }, 'watching the apps folder failed'));
    return watcher;
  }

  /** Every file on disk, every file the source knows, and every file the store says owns an App. */
  private async everyKnownFile(): Promise<string[]> {
    await this.bounds.refresh();
    const paths = new Set(await listManifests(this.bounds));
    for (const known of this.records.keys()) paths.add(known);
    for (const source of await this.store.listFileSources()) paths.add(source.slice('file:'.length));
    return [...paths];
  }

  private async resync(): Promise<void> {
    try {
      this.changes.enqueue(await this.everyKnownFile());
    } catch (err) {
      this.logger.warn({ err }, 'rescanning the apps folder failed');
    }
  }

  private async syncBatch(changed: string[]): Promise<void> {
    const endTimer = this.metrics.applySeconds.startTimer();
    // Throws when the folder is gone (its link dangling mid-swap): the batch is retried, nothing is pruned meanwhile.
    const realDir = await this.bounds.refresh();
    if (realDir !== this.watchedRealDir) this.rewatch();
    // Files waiting for an App these files hold join the batch, so an App one file lets go of passes to the next without being pruned first.
    const paths = new Set(changed);
    for (const p of changed) for (const name of this.records.get(p)?.declaredApps ?? []) for (const w of this.waiters.get(name) ?? []) paths.add(w);
    const snapshots: FileSnapshot[] = [];
    await inParallel([...paths], READ_CONCURRENCY, async (relative) => {
      const snapshot = await readSnapshot(this.bounds, relative, this.maxFileBytes, this.admission);
      if (snapshot === UNSETTLED) return this.changes.touch(relative);
      const record = this.records.get(relative);
      if (snapshot.outside?.link === relative) {
        this.outsideLinks.add(relative);
        // A link swapped to lead out: what was applied through it is held, each file naming the link.
        for (const known of this.records.keys()) if (known.startsWith(`${relative}/`)) this.changes.touch(known);
      } else {
        this.outsideLinks.delete(relative);
      }
      // A path below a link that leads out is reported only if it was ours before the link moved (its Apps are then held);
      // otherwise the link itself is reported, and nothing of what is beyond it.
      if (snapshot.outside && snapshot.outside.link !== relative && !record && !(await this.mayOwnApps(relative))) {
        return this.changes.touch(snapshot.outside.link);
      }
      // Watchers report more than changes (a touch, a chmod, a rename to the same content): skip what is applied already.
      if (snapshot.present && record?.state === 'Synced' && record.contentHash === snapshot.hash) return;
      if (!snapshot.present && !record && !(await this.mayOwnApps(relative))) return;
      snapshots.push(snapshot);
    });
    if (snapshots.length === 0) return;
    const { outcomes, unknownOwners } = await syncFiles(this.store, this.records, snapshots);
    const at = new Date().toISOString();
    for (const outcome of outcomes) {
      const previous = this.records.get(outcome.path);
      this.setWaiters(outcome.path, previous?.waitingOn, outcome.record?.waitingOn);
      if (outcome.record) this.records.set(outcome.path, outcome.record);
      else this.records.delete(outcome.path);
      if (!outcome.record && !previous) continue;
      const { declaredApps: _d, waitingOn: _w, ...file } = outcome.record ?? { path: outcome.path, state: 'Synced' as const, errors: [], objects: [] };
      this.emit('sync', { ...file, change: outcome.change, at });
      const log = { file: outcome.path, change: outcome.change, state: file.state, errors: file.errors.length ? file.errors : undefined };
      if (file.state === 'Error') this.logger.warn(log, 'manifest file not fully applied');
      else this.logger.debug(log, 'manifest file synced');
    }
    if (unknownOwners.length) this.changes.enqueue(unknownOwners);
    this.lastSyncAt = at;
    endTimer();
    this.refreshGit();
  }

  /** Whether a file the source never saw could still own Apps: only the store knows (a file deleted while berth was down). */
  private async mayOwnApps(relative: string): Promise<boolean> {
    const { total } = await this.store.listApps({ sources: [`file:${relative}`], limit: 1 });
    return total > 0;
  }

  private setWaiters(file: string, before: Set<string> | undefined, after: Set<string> | undefined): void {
    for (const name of before ?? []) {
      const files = this.waiters.get(name);
      files?.delete(file);
      if (files?.size === 0) this.waiters.delete(name);
    }
    for (const name of after ?? []) {
      const files = this.waiters.get(name) ?? new Set<string>();
      files.add(file);
      this.waiters.set(name, files);
    }
  }

  /**
   * A change to an App some file waits on (its conflicting owner released it,
   * the App a Run names was created) may let that file apply now: retry it.
   */
  private onStoreChange(event: StoreEvent): void {
    if (event.kind !== 'App') return;
    const files = this.waiters.get(event.object.metadata.name);
    if (files?.size) this.changes.enqueue(files);
  }

  private refreshGit(): void {
    if (this.gitRefresh !== undefined) return;
    this.gitRefresh = gitCommit(this.dir)
      .then((commit) => {
        this.commit = commit;
      })
      .finally(() => {
        this.gitRefresh = undefined;
      });
  }
}

function isSymbolicLink(absolute: string): boolean {
  try {
    return fs.lstatSync(absolute).isSymbolicLink();
  } catch {
    return false;
  }
}

async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
