import { Gauge, Histogram, Registry } from 'prom-client';
import type { FileSyncState } from './report';

/** Something that can say how many of its files are in each state. */
export interface FileStateCounter {
  countFiles(): Record<FileSyncState, number>;
}

/** The folder source's metrics on one registry. */
export interface SourceMetrics {
  /** How long one sync pass (a batch of changed files, read, validated and written to the store) took. */
  applySeconds: Histogram;
  /** Counts this source's files in `berth_source_files` until the returned function is called. */
  track(source: FileStateCounter): () => void;
}

const perRegistry = new WeakMap<Registry, SourceMetrics>();

/**
 * `berth_source_files{state}` and `berth_source_apply_seconds` on `register`.
 * Memoised per registry, because prom-client refuses a second metric of the
 * same name and a process (a test run) may start several sources in turn.
 */
export function sourceMetrics(register: Registry): SourceMetrics {
  const existing = perRegistry.get(register);
  if (existing) return existing;
  const sources = new Set<FileStateCounter>();
  const registers = [register];
  new Gauge({
    name: 'berth_source_files',
    help: 'Manifest files in the apps folder, by sync state.',
    labelNames: ['state'],
    registers,
    collect() {
      const totals: Record<FileSyncState, number> = { Synced: 0, Error: 0 };
      for (const source of sources) {
        const counts = source.countFiles();
        totals.Synced += counts.Synced;
        totals.Error += counts.Error;
      }
      for (const [state, count] of Object.entries(totals)) this.set({ state }, count);
    },
  });
  const metrics: SourceMetrics = {
    applySeconds: new Histogram({
      name: 'berth_source_apply_seconds',
      help: 'Time to apply one batch of changed manifest files to the store.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    track(source) {
      sources.add(source);
      return () => sources.delete(source);
    },
  };
  perRegistry.set(register, metrics);
  return metrics;
}
