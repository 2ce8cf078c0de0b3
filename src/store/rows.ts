/**
 * Rows to objects and back: how a row of the apps or runs table becomes the
 * App or Run the rest of berth reads.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError } from '../errors';
import { API_VERSION, type AppSpec, type AppStatus, type ObjectMeta } from '../model/types';
import type { AppRow, RunRow } from './models';
import type { NewApp, Precondition, StoredApp, StoredRun } from './types';

/** The columns of an App row under the names the model gives them, for plain queries. */
export const APP_COLUMNS =
  'id, name, uid, generation, resource_version AS "resourceVersion", labels, spec, status, schedule_status AS "scheduleStatus", created_at AS "createdAt"';
export const APP_SELECT = `SELECT ${APP_COLUMNS} FROM apps`;

/**
 * APP_SELECT's columns as one JSON object per row, its JSON columns nested
 * (SQLite): `json_group_array` of it reads many Apps as one text, one
 * JSON.parse in place of a row object built through N-API and three parses each.
 */
export const APP_JSON_OBJECT =
  "json_object('id', id, 'name', name, 'uid', uid, 'generation', generation, 'resourceVersion', resource_version, 'labels', json(labels), " +
  "'spec', json(spec), 'status', json(status), 'scheduleStatus', json(schedule_status), 'createdAt', created_at)";

/** The columns of a Run row under the names the model gives them, for plain queries. */
export const RUN_SELECT =
  'SELECT id, name, uid, app_id AS "appId", app_name AS "appName", generation, resource_version AS "resourceVersion", phase, ' +
  'idempotency_key AS "idempotencyKey", labels, spec, status, created_at AS "createdAt" FROM runs';

/** The row of a new App: generation and resourceVersion 1, its source recorded in status. */
export function newAppRow(input: NewApp) {
  return {
    name: input.name,
    uid: randomUUID(),
    generation: 1,
    resourceVersion: 1,
    source: input.source,
    labels: input.labels ?? {},
    spec: input.spec,
    status: { ...(input.status ?? {}), source: input.source },
  };
}

export function refWhere(ref: string | number): { id: number } | { name: string } {
  if (typeof ref === 'number') return { id: ref };
  return /^[0-9]+$/.test(ref) ? { id: Number(ref) } : { name: ref };
}

export function checkPrecondition(kind: string, name: string, current: string, pre: Precondition): void {
  if (pre.resourceVersion !== undefined && pre.resourceVersion !== current) {
    throw new ConflictError(`${kind} "${name}" was modified: resourceVersion ${pre.resourceVersion} is stale (current is ${current}); read it again and retry`);
  }
}

export function staleWrite(kind: string, name: string): ConflictError {
  return new ConflictError(`${kind} "${name}" was modified concurrently; read it again and retry`);
}

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return value;
}

export function parseJson<T>(value: T | string): T {
  // sqlite3 hands JSON columns back as text in some query paths.
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}

/** The metadata both kinds of row hold the same way. */
function metadataOf(row: AppRow | RunRow): ObjectMeta {
  return {
    name: row.name,
    labels: parseJson(row.labels),
    uid: row.uid,
    generation: row.generation,
    resourceVersion: String(row.resourceVersion),
    creationTimestamp: new Date(row.createdAt).toISOString(),
  };
}

export function toApp(row: AppRow): StoredApp {
  const status: AppStatus = parseJson(row.status);
  // A schedule removed from the spec leaves its last status behind: shown only while there is a schedule.
  const spec: AppSpec = parseJson(row.spec);
  if (spec.schedule && row.scheduleStatus) status.schedule = parseJson(row.scheduleStatus);
  return { id: row.id, apiVersion: API_VERSION, kind: 'App', metadata: metadataOf(row), spec, status };
}

export function toRun(row: RunRow): StoredRun {
  return {
    id: row.id,
    appId: row.appId,
    apiVersion: API_VERSION,
    kind: 'Run',
    metadata: metadataOf(row),
    spec: parseJson(row.spec),
    status: parseJson(row.status),
  };
}
