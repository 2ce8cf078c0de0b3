/**
 * What the API answers, as the page reads it. The object shapes are berth's
 * own (src/model, src/sources); only type imports, so nothing of the server
 * is bundled.
 */
import type { App, Run, RunPhase } from '../../model/types';
import type { FileReport, FolderReport, SyncEvent } from '../../sources/report';

export type { FileReport, FolderReport, RunPhase, SyncEvent };

/** An App answer: the object with the seed's flat fields beside it (see src/api/present.ts). */
export type AppAnswer = App & { id: number; name: string; image: string };

/** A Run answer: the object with its id and App name (see src/api/present.ts). */
export type RunAnswer = Run & { id: number; app: string };

/** A change on `/events/`: an App or Run added, modified or deleted, or a file of the apps folder synced. */
export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: AppAnswer | RunAnswer } | { type: 'SYNC'; object: SyncEvent & { kind: 'Source' } };

export const TERMINAL_PHASES: readonly RunPhase[] = ['Succeeded', 'Failed', 'Cancelled'];
export const isFinished = (run: RunAnswer): boolean => TERMINAL_PHASES.includes(run.status.phase);

/** `file:apps/x.yaml` → `apps/x.yaml`; undefined for Apps made through the API. */
export function sourceFile(app: AppAnswer): string | undefined {
  return app.status.source.startsWith('file:') ? app.status.source.slice('file:'.length) : undefined;
}
