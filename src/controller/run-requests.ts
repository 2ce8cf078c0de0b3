/**
 * Run policy at the moment a run is asked for: what the run will execute (the
 * App's spec with the request's overrides), what it is called, and whether the
 * App's concurrencyPolicy lets it exist at all. The API and folder-declared
 * Runs both ask through `requestRun`, so a Run committed to the repository
 * obeys Forbid exactly as one posted to `/apps/{id}/run/` does. (Replace acts
 * later, at admission: src/controller/reconciler.ts.) The store only persists.
 */
import { randomBytes } from 'node:crypto';
import { ConflictError } from '../errors';
import { ConcurrencyPolicy, type AppSpec, type RunOverrides, type RunSpec } from '../model/types';
import type { Store, StoredApp, StoredRun } from '../store/store';

/** A request for a run of an App. */
export interface RunRequest {
  /** Absent: `<app>-<8 hex digits>`, like Kubernetes' generateName. */
  name?: string;
  labels?: Record<string, string>;
  overrides?: RunOverrides;
  /** A repeated key answers the run the first request made. */
  idempotencyKey?: string;
}

/**
 * Records a Pending run of `app`; the controller carries it out.
 * `created: false` means an earlier request with the same idempotency key
 * made the run returned.
 *
 * @throws ConflictError when the App's concurrencyPolicy is Forbid and one of
 *   its runs has not finished, or when a run of that name exists.
 */
export async function requestRun(store: Store, app: StoredApp, request: RunRequest = {}): Promise<{ run: StoredRun; created: boolean }> {
  const overrides = request.overrides ?? {};
  const spec: RunSpec = { app: app.metadata.name, ...overrides, template: runTemplate(app.spec, overrides) };
  const inserted = await store.insertRun(app, {
    name: request.name ?? `${app.metadata.name}-${randomBytes(4).toString('hex')}`,
    labels: request.labels,
    spec,
    idempotencyKey: request.idempotencyKey,
    exclusive: app.spec.concurrencyPolicy === ConcurrencyPolicy.Forbid,
  });
  if (inserted.outcome === 'active') {
    const { name, phase } = inserted.active;
    throw new ConflictError(`app "${app.metadata.name}" has concurrencyPolicy Forbid and run "${name}" is still ${phase}`);
  }
  return { run: inserted.run, created: inserted.outcome === 'created' };
}

/** The spec a run executes: the App's, with the request's command instead of its own, and its env merged over the App's. */
export function runTemplate(spec: AppSpec, overrides: RunOverrides): AppSpec {
  return { ...spec, command: overrides.command ?? spec.command, env: { ...spec.env, ...(overrides.env ?? {}) } };
}
