import { requestRun } from '../controller/run-requests';
import { ConflictError, ValidationError } from '../errors';
import type { AppSource } from '../model/types';
import type { Store, StoredApp } from '../store/store';
import type { AppDeclaration, RunDeclaration } from './manifest-file';
import type { DocumentError, FileReport, ObjectRef } from './report';
import type { FileSnapshot } from './snapshot';

/** What the source remembers about a file between passes. */
export interface FileRecord extends FileReport {
  /** Apps the file stands behind: what its applied content declares, or for a held file, what it still owns. */
  declaredApps: Set<string>;
  /** App names whose change could resolve this file's errors (a conflict's other owner, a Run's missing App). */
  waitingOn: Set<string>;
}

/** The result of one pass for one file; `record` absent means the file is gone and forgotten. */
export interface FileOutcome {
  path: string;
  change: 'Applied' | 'Held' | 'Deleted';
  record?: FileRecord;
}

export interface PassResult {
  outcomes: FileOutcome[];
  /** Files that own Apps this pass asked about but that the source has not evaluated yet. */
  unknownOwners: string[];
}

/** How many store writes a pass keeps in flight; SQLite serialises them anyway, this only hides round trips. */
const WRITE_CONCURRENCY = 16;
/** Bound on the names or sources in one `IN (…)` query. */
const QUERY_CHUNK = 500;

const fileSource = (path: string): AppSource => `file:${path}`;
const sourcePath = (source: AppSource): string | undefined => (source.startsWith('file:') ? source.slice(5) : undefined);

/**
 * Applies a batch of file snapshots to the store, all-or-nothing per file:
 *
 * 1. A file with a parse or validation error is held: its Apps keep their
 *    last good spec (marked `syncState: Error`), nothing is pruned.
 * 2. Each App a valid file declares must be free, its own, or released by
 *    its previous owner (a file that no longer declares it, even in this
 *    very batch: that is how a document moves between files). Otherwise it
 *    is a conflict and the file is held too. Files are judged in path order,
 *    so the first declarer in a batch wins.
 * 3. Accepted files create and update their Apps, then prune the Apps they
 *    owned and no longer declare (unless another file just took them over).
 * 4. Then Runs: created once per name; a Run that exists is left alone, and
 *    one whose spec differs is reported as immutable. Run problems are
 *    reported on the file but do not hold its Apps (see docs/gitops.md).
 */
export async function syncFiles(store: Store, records: ReadonlyMap<string, FileRecord>, snapshots: FileSnapshot[]): Promise<PassResult> {
  const files = [...snapshots].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const inPass = new Map(files.map((f) => [f.path, f]));

  // What the store holds: the Apps these files own, and the Apps with the names they declare.
  const owned = new Map<string, StoredApp[]>(files.map((f) => [f.path, []]));
  const byName = new Map<string, StoredApp>();
  for (const app of await listInChunks(
    store,
    'sources',
    files.map((f) => fileSource(f.path)),
  )) {
    owned.get(sourcePath(app.status.source) as string)?.push(app);
    byName.set(app.metadata.name, app);
  }
  const declared = [...new Set(files.flatMap((f) => f.manifest.apps.map((a) => a.name)))].filter((n) => !byName.has(n));
  for (const app of await listInChunks(store, 'names', declared)) byName.set(app.metadata.name, app);

  // Decide which files apply and which are held.
  const held = new Map<string, DocumentError[]>();
  const waiting = new Map<string, Set<string>>(files.map((f) => [f.path, new Set<string>()]));
  const claimedBy = new Map<string, string>();
  const unknownOwners = new Set<string>();
  const stillDeclares = (owner: string, name: string): boolean => {
    const snapshot = inPass.get(owner);
    if (snapshot) return snapshot.manifest.errors.length > 0 || snapshot.manifest.apps.some((a) => a.name === name);
    const record = records.get(owner);
    if (record) return record.declaredApps.has(name);
    // Not evaluated yet: assume it still does until it is, and have it evaluated.
    unknownOwners.add(owner);
    return true;
  };
  for (const file of files) {
    if (file.manifest.errors.length) {
      held.set(file.path, file.manifest.errors);
      continue;
    }
    const conflicts: DocumentError[] = [];
    for (const app of file.manifest.apps) {
      const owner = conflictingOwner(file.path, app.name, claimedBy, byName, stillDeclares);
      if (!owner) continue;
      conflicts.push(conflictError(app, owner));
      waiting.get(file.path)?.add(app.name);
    }
    if (conflicts.length) held.set(file.path, conflicts);
    else for (const app of file.manifest.apps) claimedBy.set(app.name, file.path);
  }
  const accepted = files.filter((f) => !held.has(f.path));

  // Apps: create, update, take over; then prune what was released and not taken.
  const appWrites = accepted.flatMap((f) => f.manifest.apps.map((app) => ({ path: f.path, app })));
  // New Apps go in one transaction: a start-up over thousands of files would otherwise pay a commit per file.
  const creates = new Set(appWrites.filter(({ app }) => !byName.has(app.name)));
  const created = await store.createApps(
    [...creates].map(({ path, app }) => ({ name: app.name, labels: app.labels, spec: app.spec, source: fileSource(path), status: { syncState: 'Synced' } })),
  );
  for (const app of created) byName.set(app.metadata.name, app);
  await eachLimited(
    appWrites.filter((write) => !creates.has(write)),
    async ({ path, app }) => {
      const stored = await updateApp(store, path, app, byName.get(app.name) as StoredApp);
      if (stored) byName.set(app.name, stored);
    },
  );
  const prunes = accepted.flatMap((f) => (owned.get(f.path) ?? []).filter((app) => !claimedBy.has(app.metadata.name)));
  await eachLimited(prunes, async (app) => {
    await store.deleteApp(app.id, { resourceVersion: app.metadata.resourceVersion });
    byName.delete(app.metadata.name);
  });
  const holds = files.filter((f) => held.has(f.path)).flatMap((f) => (owned.get(f.path) ?? []).map((app) => ({ app, errors: held.get(f.path) ?? [] })));
  await eachLimited(holds, ({ app, errors }) => markHeld(store, app, errors));

  // Runs, once every App of the batch exists.
  const runErrors = new Map<string, DocumentError[]>();
  const runsSeen = new Map<string, ObjectRef[]>();
  for (const file of accepted) {
    const problems: DocumentError[] = [];
    const refs: ObjectRef[] = [];
    for (const run of file.manifest.runs) {
      const problem = await applyRun(store, run, byName);
      if (problem) {
        problems.push(problem);
        if (problem.field === 'spec.app') waiting.get(file.path)?.add(run.app);
      }
      if (problem?.field !== 'spec.app') refs.push({ kind: 'Run', name: run.name });
    }
    runErrors.set(file.path, problems);
    runsSeen.set(file.path, refs);
  }

  const now = new Date().toISOString();
  const outcomes: FileOutcome[] = files.map((file) => {
    const previous = records.get(file.path);
    const waitingOn = waiting.get(file.path) ?? new Set<string>();
    const heldErrors = held.get(file.path);
    if (heldErrors) {
      const keeps = (owned.get(file.path) ?? []).map((a) => a.metadata.name).sort();
      const runs = previous?.objects.filter((o) => o.kind === 'Run') ?? [];
      return {
        path: file.path,
        change: 'Held',
        record: {
          path: file.path,
          state: 'Error',
          errors: heldErrors,
          objects: [...keeps.map((name) => ({ kind: 'App' as const, name })), ...runs],
          lastAppliedAt: previous?.lastAppliedAt,
          contentHash: previous?.contentHash,
          declaredApps: new Set(keeps),
          waitingOn,
        },
      };
    }
    if (!file.present) return { path: file.path, change: 'Deleted' };
    const errors = runErrors.get(file.path) ?? [];
    const apps = file.manifest.apps.map((a) => a.name);
    return {
      path: file.path,
      change: 'Applied',
      record: {
        path: file.path,
        state: errors.length ? 'Error' : 'Synced',
        errors,
        objects: [...apps.map((name) => ({ kind: 'App' as const, name })), ...(runsSeen.get(file.path) ?? [])],
        lastAppliedAt: now,
        contentHash: file.hash,
        declaredApps: new Set(apps),
        waitingOn,
      },
    };
  });
  return { outcomes, unknownOwners: [...unknownOwners].filter((p) => !inPass.has(p)) };
}

/** Who stands in the way of `path` declaring `name`, if anyone: an API-made App, or another file that still declares it. */
function conflictingOwner(
  path: string,
  name: string,
  claimedBy: Map<string, string>,
  byName: Map<string, StoredApp>,
  stillDeclares: (owner: string, name: string) => boolean,
): AppSource | undefined {
  const claimant = claimedBy.get(name);
  if (claimant !== undefined && claimant !== path) return fileSource(claimant);
  const current = byName.get(name);
  if (!current || current.status.source === fileSource(path)) return undefined;
  const owner = sourcePath(current.status.source);
  if (owner === undefined) return current.status.source;
  return stillDeclares(owner, name) ? current.status.source : undefined;
}

function conflictError(app: AppDeclaration, owner: AppSource): DocumentError {
  const reason =
    owner === 'api'
      ? `App "${app.name}" already exists and was created through the API (source: api); delete it there or rename this one`
      : `App "${app.name}" is already declared by ${owner}; remove it from one of the two files`;
  return { document: app.document, kind: 'App', name: app.name, field: 'metadata.name', reason, line: app.line, column: app.column };
}

/** Brings one existing App in line with its declaration; returns what was written, or nothing when it already matches. */
async function updateApp(store: Store, path: string, app: AppDeclaration, current: StoredApp): Promise<StoredApp | undefined> {
  const source = fileSource(path);
  const { syncMessage: _dropped, ...status } = current.status;
  const inSync =
    current.status.source === source &&
    current.status.syncState === 'Synced' &&
    current.status.syncMessage === undefined &&
    canonical(current.spec) === canonical(app.spec) &&
    canonical(current.metadata.labels) === canonical(app.labels);
  if (inSync) return undefined;
  return store.updateApp(
    current.id,
    { spec: app.spec, labels: app.labels, source, status: { ...status, syncState: 'Synced' } },
    { resourceVersion: current.metadata.resourceVersion },
  );
}

/** Marks an App of a held file: it keeps its last good spec, and says why. */
async function markHeld(store: Store, app: StoredApp, errors: DocumentError[]): Promise<void> {
  const first = errors[0];
  const at = first?.line !== undefined ? ` at line ${first.line}, column ${first.column}` : '';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  const syncMessage = `${app.status.source} is not applied: ${first?.field}: ${first?.reason}${at}${more}; this App keeps its last applied spec`;
  if (app.status.syncState === 'Error' && app.status.syncMessage === syncMessage) return;
  await store.updateApp(app.id, { status: { ...app.status, syncState: 'Error', syncMessage } }, { resourceVersion: app.metadata.resourceVersion });
}

/**
 * Asks for a declared run, once: a run of that name that exists already is
 * left alone (restarts, rescans and edits elsewhere in the file change
 * nothing), and a differing spec is reported as immutable, as Kubernetes
 * does for a Job's template.
 */
async function applyRun(store: Store, run: RunDeclaration, apps: Map<string, StoredApp>): Promise<DocumentError | undefined> {
  const where = { document: run.document, kind: 'Run', name: run.name, line: run.line, column: run.column };
  let existing = await store.getRun(run.name);
  if (!existing) {
    const app = apps.get(run.app) ?? (await store.getApp(run.app));
    if (!app) return { ...where, field: 'spec.app', reason: `App "${run.app}" does not exist; the run is created once it does` };
    try {
      await requestRun(store, app, { name: run.name, labels: run.labels, overrides: run.overrides, fieldPrefix: 'spec.' });
      return undefined;
    } catch (err) {
      // Its parameters do not fit the App: reported like any invalid field, and asked again on the next pass.
      if (err instanceof ValidationError) return { ...where, field: err.details[0]?.field ?? 'spec', reason: err.message };
      if (!(err instanceof ConflictError)) throw err;
      // Someone else (the API) asked for a run of this name between our read and our write; or Forbid refused it.
      existing = await store.getRun(run.name);
      if (!existing) return { ...where, field: 'metadata.name', reason: `the run is not created: ${err.message}` };
    }
  }
  // The run records its defaults too: only the values the document gives are compared.
  const given = run.overrides.parameters ?? {};
  const recordedGiven = Object.fromEntries(Object.keys(given).map((name) => [name, existing.spec.parameters?.[name]]));
  const declared = canonical({ app: run.app, env: run.overrides.env, command: run.overrides.command, parameters: given });
  const recorded = canonical({ app: existing.spec.app, env: existing.spec.env, command: existing.spec.command, parameters: recordedGiven });
  if (declared === recorded) return undefined;
  return {
    ...where,
    field: 'spec',
    reason: `Run "${run.name}" already exists and its spec is immutable (like a Kubernetes Job); give the document a new metadata.name to ask for another run`,
  };
}

async function listInChunks(store: Store, by: 'names' | 'sources', values: string[]): Promise<StoredApp[]> {
  const found: StoredApp[] = [];
  for (let i = 0; i < values.length; i += QUERY_CHUNK) {
    const chunk = values.slice(i, i + QUERY_CHUNK);
    const page = by === 'names' ? await store.listApps({ names: chunk }) : await store.listApps({ sources: chunk as AppSource[] });
    found.push(...page.items);
  }
  return found;
}

async function eachLimited<T>(items: T[], work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, items.length) }, worker));
}

/** JSON with sorted keys and no undefined values, to compare specs as the store keeps them. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );
}
