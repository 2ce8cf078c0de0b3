import type { StoredApp, StoredRun } from '../store/store';
import type { App, Run } from '../model/types';
import type { Projection } from './fields';

/** An App as the API answers it: DjDockerManager's flat fields beside the object. */
export type AppAnswer = App & {
  id: number;
  name: string;
  image: string;
  envs: Record<string, string>;
  command: string[];
};

/** A Run as the API answers it: its id and App name beside the object; the state is `status.phase`. */
export type RunAnswer = Run & { id: number; app: string };

/**
 * The seed's clients read `id, name, image, envs, command` at the top level;
 * kubectl-minded ones read `metadata` and `spec`. Both get what they expect.
 */
export function presentApp(app: StoredApp): AppAnswer {
  return {
    id: app.id,
    name: app.metadata.name,
    image: app.spec.image,
    envs: app.spec.env,
    command: app.spec.command,
    apiVersion: app.apiVersion,
    kind: app.kind,
    metadata: app.metadata,
    spec: app.spec,
    status: app.status,
  };
}

/**
 * The JSON of frozen Apps (the ones the store keeps: src/store/app-cache.ts,
 * known-apps.ts), by object and by the fields asked for (`''` for all): such
 * an App never changes, so neither does its answer. A few field sets each,
 * the last asked for.
 */
const appJson = new WeakMap<StoredApp, Map<string, Buffer>>();
const FIELD_SETS_KEPT = 4;
/**
 * The bodies last made for pages, by first App, length and fields asked for:
 * the same Apps in the same order make the same body. Bounded in bytes, the
 * least recently answered going first, since a client paging by ones would
 * otherwise keep a body for every App.
 */
const pageBodies = new Map<string, { apps: StoredApp[]; body: Buffer }>();
const PAGE_BODY_BYTES = 16 * 1024 * 1024;
let pageBodyBytes = 0;

/**
 * A list of Apps as the JSON of `presentApp`'s answers (`project`ed when
 * fields or a view were asked for), encoded. An App the store keeps
 * (src/store/app-cache.ts) is the same frozen object until it changes, so its
 * JSON is made once, and a page of unchanged Apps is the same body as last
 * time: serialising, and encoding a page of 100 KB or more, were most of a
 * list's cost.
 */
export function presentAppsJson(apps: StoredApp[], project?: Projection): Buffer {
  const fields = project?.key ?? '';
  const page = apps.length ? `${apps[0].id}\u0000${apps.length}\u0000${fields}` : '';
  const kept = pageBodies.get(page);
  if (kept?.apps.every((app, at) => app === apps[at])) {
    // Answered again: to the end of the line, away from eviction.
    pageBodies.delete(page);
    pageBodies.set(page, kept);
    return kept.body;
  }
  const parts: Buffer[] = [OPEN];
  for (const [at, app] of apps.entries()) {
    if (at > 0) parts.push(COMMA);
    parts.push(presentAppJson(app, project));
  }
  parts.push(CLOSE);
  const body = Buffer.concat(parts);
  if (page && apps.every((app) => Object.isFrozen(app))) keepPage(page, { apps: [...apps], body });
  return body;
}

/** One App as the JSON of `presentApp`'s answer (`project`ed when asked), made once for a frozen App. */
export function presentAppJson(app: StoredApp, project?: Projection): Buffer {
  const fields = project?.key ?? '';
  let json = appJson.get(app)?.get(fields);
  if (json === undefined) {
    json = Buffer.from(JSON.stringify(project ? project(presentApp(app)) : presentApp(app)));
    if (Object.isFrozen(app)) keep(app, fields, json);
  }
  return json;
}

function keepPage(page: string, entry: { apps: StoredApp[]; body: Buffer }): void {
  const replaced = pageBodies.get(page);
  if (replaced) pageBodyBytes -= replaced.body.length;
  pageBodies.delete(page);
  pageBodies.set(page, entry);
  pageBodyBytes += entry.body.length;
  for (const [oldest, { body }] of pageBodies) {
    if (pageBodyBytes <= PAGE_BODY_BYTES) break;
    pageBodies.delete(oldest);
    pageBodyBytes -= body.length;
  }
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

function keep(app: StoredApp, fields: string, value: Buffer): void {
  let byFields = appJson.get(app);
  if (!byFields) appJson.set(app, (byFields = new Map()));
  byFields.delete(fields);
  byFields.set(fields, value);
  if (byFields.size > FIELD_SETS_KEPT) byFields.delete(byFields.keys().next().value!);
}

export function presentRun(run: StoredRun): RunAnswer {
  return {
    id: run.id,
    app: run.spec.app,
    apiVersion: run.apiVersion,
    kind: run.kind,
    metadata: run.metadata,
    spec: run.spec,
    status: run.status,
  };
}

/** Where an App is read: by name, its stable key. */
export const appPath = (app: StoredApp): string => `/apps/${app.metadata.name}/`;

export const runPath = (run: StoredRun): string => `/apps/${run.spec.app}/run/${run.id}/`;
