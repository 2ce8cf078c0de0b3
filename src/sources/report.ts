/**
 * What the folder source says about its files: the shapes `GET /sources/`
 * answers with and the `sync` events it emits.
 */

export type FileSyncState = 'Synced' | 'Error';

/** One problem found in a file, pointing at the document and the field. */
export interface DocumentError {
  /** The document's 0-based position among the file's non-empty documents; absent for YAML syntax errors. */
  document?: number;
  kind?: string;
  name?: string;
  /** A dotted path into the document (`spec.image`), or `(yaml)` / `(file)` for the file as a whole. */
  field: string;
  reason: string;
  /** 1-based, when known. */
  line?: number;
  column?: number;
}

export interface ObjectRef {
  kind: 'App' | 'Run';
  name: string;
}

/** The sync status of one manifest file. */
export interface FileReport {
  /** Relative to the apps folder, with `/` separators: the `file:<path>` an App's source names. */
  path: string;
  state: FileSyncState;
  errors: DocumentError[];
  /** Apps the file owns, and the Runs it declared that exist. */
  objects: ObjectRef[];
  /** When the file's content last applied (ISO 8601); absent if it never has. */
  lastAppliedAt?: string;
  /** sha256 (hex) of the content last applied. */
  contentHash?: string;
}

/** The folder source as a whole, for `GET /sources/`. */
export interface FolderReport {
  kind: 'folder';
  dir: string;
  /** Whether the start-up scan has reconciled the folder with the store. */
  ready: boolean;
  /** Present when the folder is inside a git work tree. */
  git?: { commit: string };
  /** When a sync pass last finished (ISO 8601). */
  lastSyncAt?: string;
  summary: { files: number; synced: number; error: number };
  files: FileReport[];
}

/** Emitted as `sync` each time a file is applied, held, or forgotten (deleted and pruned). */
export interface SyncEvent extends FileReport {
  /** `Deleted` when the file is gone and what it owned was pruned. */
  change: 'Applied' | 'Held' | 'Deleted';
  at: string;
}
