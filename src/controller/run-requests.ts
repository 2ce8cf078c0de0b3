/**
 * Run policy at the moment a run is asked for: what the run will execute (the
 * App's spec with the request's overrides), what it is called, and whether the
 * App's concurrencyPolicy lets it exist at all. The API and folder-declared
 * Runs both ask through `requestRun`, so a Run committed to the repository
 * obeys Forbid, and has its parameters checked, exactly as one posted to
 * `/apps/{id}/run/` does. (Replace acts
 * later, at admission: src/controller/reconciler.ts.) The store only persists.
 */
import { randomBytes } from 'node:crypto';
import { ConflictError, TooManyRequestsError, ValidationError } from '../errors';
import { resolveParameters } from '../model/parameters';
import { ConcurrencyPolicy, type AppSpec, type RunOverrides, type RunSpec } from '../model/types';
import type { NewRun, RunInsertion, Store, StoredApp, StoredRun } from '../store/store';

/** A request for a run of an App. */
export interface RunRequest {
  /** Absent: `<app>-<8 hex digits>`, like Kubernetes' generateName. */
  name?: string;
  labels?: Record<string, string>;
  overrides?: RunOverrides;
  /** A repeated key answers the run the first request made. */
  idempotencyKey?: string;
  /** Refuse the run when this many are Pending already (API requests; a Run a file declares is not refused). */
  pendingLimits?: PendingLimits;
  /** Where the overrides are in the caller's input, for the fields errors name: `spec.` in a `kind: Run` document. @default '' */
  fieldPrefix?: string;
}

/**
 * Bounds on runs waiting. Admission reads every waiting run each time one may
 * start, so the work grows with the square of the number waiting: the bound
 * keeps it small, and keeps one App from taking every place in the line.
 */
export interface PendingLimits {
  /** Pending runs in all. @default 500 */
  total: number;
  /** Pending runs of one App. @default 100 */
  perApp: number;
}

/** What `Retry-After` suggests to a request refused for a full line: runs leave it as slots free up. */
const PENDING_RETRY_AFTER_SECONDS = 10;

/**
 * Records a Pending run of `app`; the controller carries it out.
 * `created: false` means an earlier request with the same idempotency key
 * made the run returned.
 *
 * @throws ValidationError naming each parameter value that is unknown,
 *   missing, or breaks its rule, and each `env` override that collides with
 *   a parameter; nothing is recorded then.
 * @throws ConflictError when the App's concurrencyPolicy is Forbid and one of
 *   its runs has not finished, or when a run of that name exists.
 * @throws TooManyRequestsError when `pendingLimits` are reached.
 */
export async function requestRun(store: Store, app: StoredApp, request: RunRequest = {}): Promise<{ run: StoredRun; created: boolean }> {
  const input = newRun(app, request);
  if (request.pendingLimits) await checkPendingLimits(store, app, request.pendingLimits);
  return outcomeOf(app, await store.insertRun(app, input));
}

/**
 * `requestRun` for many runs at once, inserted together (the scheduler's
 * runs of a due time; Store.insertRuns says how).
 * Each entry of the answer is what `requestRun` would have answered for that
 * request alone, or the error it would have thrown. `pendingLimits` are not
 * checked here: a due time's runs are not refused for a full line.
 */
export async function requestRuns(
  store: Store,
  requests: { app: StoredApp; request: RunRequest }[],
): Promise<({ run: StoredRun; created: boolean } | Error)[]> {
  const answers: ({ run: StoredRun; created: boolean } | Error)[] = new Array(requests.length);
  const items: { app: StoredApp; input: NewRun; at: number }[] = [];
  requests.forEach(({ app, request }, at) => {
    try {
      items.push({ app, input: newRun(app, request), at });
    } catch (err) {
      answers[at] = err as Error;
    }
  });
  const inserted = await store.insertRuns(items);
  items.forEach(({ app, at }, i) => {
    const one = inserted[i];
    try {
      answers[at] = one instanceof Error ? one : outcomeOf(app, one);
    } catch (err) {
      answers[at] = err as Error;
    }
  });
  return answers;
}

/** What the store is asked to insert for `request`. @throws ValidationError as `requestRun` says. */
function newRun(app: StoredApp, request: RunRequest): NewRun {
  const overrides = withParameters(app, request.overrides ?? {}, request.fieldPrefix ?? '');
  const spec: RunSpec = { app: app.metadata.name, ...overrides, template: runTemplate(app.spec, overrides) };
  return {
    name: request.name ?? `${app.metadata.name}-${randomBytes(4).toString('hex')}`,
    labels: request.labels,
    spec,
    idempotencyKey: request.idempotencyKey,
    exclusive: app.spec.concurrencyPolicy === ConcurrencyPolicy.Forbid,
  };
}

/** The store's insertion as `requestRun` answers it. @throws ConflictError for a run refused by Forbid. */
function outcomeOf(app: StoredApp, inserted: RunInsertion): { run: StoredRun; created: boolean } {
  if (inserted.outcome === 'active') {
    const { name, phase } = inserted.active;
    throw new ConflictError(`app "${app.metadata.name}" has concurrencyPolicy Forbid and run "${name}" is still ${phase}`);
  }
  return { run: inserted.run, created: inserted.outcome === 'created' };
}

/**
 * Refuses a run while the line of Pending runs is full, for the App or in all.
 * Checked before the insert and not under a lock: requests racing each other
 * may overshoot a bound by as many as are in flight, which keeps it a bound.
 * (An idempotent replay that would find its run is refused too while the line
 * is full; the client's retry gets its run once there is room.)
 */
async function checkPendingLimits(store: Store, app: StoredApp, limits: PendingLimits): Promise<void> {
  const ofApp = await store.countPendingRuns(app.id);
  if (ofApp >= limits.perApp) {
    throw new TooManyRequestsError(
      `app "${app.metadata.name}" has ${ofApp} runs Pending, the most one App may have waiting (--max-pending-per-app ${limits.perApp}); ask again once some have started`,
      PENDING_RETRY_AFTER_SECONDS,
    );
  }
  const total = await store.countPendingRuns();
  if (total >= limits.total) {
    throw new TooManyRequestsError(
      `${total} runs are Pending, the most this server lets wait (--max-pending ${limits.total}); ask again once some have started`,
      PENDING_RETRY_AFTER_SECONDS,
    );
  }
}

/**
 * The overrides with every parameter value the run gets (those given and the
 * defaults of the rest). A request's own `env` may not set a parameter's
 * variable: that would bypass the parameter's rule, and which of the two won
 * would be a guess. Parameters are set over the App's env: a declared input
 * is more specific than the App's constant.
 */
function withParameters(app: StoredApp, overrides: RunOverrides, prefix: string): RunOverrides {
  const parameters = resolveParameters(app.metadata.name, app.spec.parameters, overrides.parameters, `${prefix}parameters`);
  const declared = new Set((app.spec.parameters ?? []).map((p) => p.name));
  const collisions = Object.keys(overrides.env ?? {}).filter((name) => declared.has(name));
  if (collisions.length) {
    throw ValidationError.fromProblems(
      collisions.map((name) => ({ field: `${prefix}env.${name}`, reason: `is a parameter of app "${app.metadata.name}": give it as parameters.${name}` })),
      'run request',
    );
  }
  const { parameters: _given, ...rest } = overrides;
  return Object.keys(parameters).length ? { ...rest, parameters } : rest;
}

/**
 * The spec a run executes: the App's, with the request's command instead of
 * its own, and its env: the App's, then the parameters, then the request's env.
 */
export function runTemplate(spec: AppSpec, overrides: RunOverrides): AppSpec {
  return { ...spec, command: overrides.command ?? spec.command, env: { ...spec.env, ...(overrides.parameters ?? {}), ...(overrides.env ?? {}) } };
}
