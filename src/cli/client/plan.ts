import type { AppAnswer, RunAnswer } from '../../api/present';
import { NotFoundAnswer, type ApiClient } from './api-client';
import { CliError, ExitCode } from './exit';
import type { Manifest } from './manifests';

export type Action = 'create' | 'configure' | 'unchanged' | 'prune';

/** What applying one object would do, found out from the server without changing anything. */
export interface Step {
  kind: 'App' | 'Run';
  name: string;
  action: Action;
  /** Where the object was declared (absent for a prune). */
  origin?: string;
  manifest?: Manifest;
  /** The labels and spec the server holds, and those it would hold: what `diff` compares. */
  live?: Comparable;
  applied?: Comparable;
}

/** The part of an App that `apply` sets: its labels and its spec (a Run: its App and overrides). */
export interface Comparable {
  metadata: { labels: Record<string, string> };
  spec: unknown;
}

export interface Plan {
  steps: Step[];
  /** One line each for the documents the server refused (`origin: app/x: reason`); with any, nothing is applied. */
  problems: string[];
}

export interface PlanOptions {
  /** Also list the API-made Apps no document declares, for deletion. */
  prune?: boolean;
  /** With prune: only Apps whose labels match this equality selector. */
  selector?: string;
}

/** How many documents are checked with the server at once. */
const PARALLEL = 8;

/**
 * Works out what applying `manifests` would do, asking the server's
 * `?dryRun=1` for each App: it validates the document as a write would
 * (schema, containment, ownership) and answers the spec it would store,
 * defaults filled in, so "unchanged" means what the server holds, not what
 * the file spells. Runs are created once per name, as the apps folder does.
 * Transport and authorisation failures abort the plan; a document the
 * server refuses is a problem, reported with the rest.
 */
export async function planApply(client: ApiClient, manifests: Manifest[], options: PlanOptions = {}): Promise<Plan> {
  const planned = await mapLimited(manifests, PARALLEL, async (manifest): Promise<Step | string> => {
    try {
      return manifest.kind === 'App' ? await planApp(client, manifest) : await planRun(client, manifest, manifests);
    } catch (err) {
      if (!(err instanceof CliError) || err.exitCode === ExitCode.Unreachable || err.exitCode === ExitCode.Unauthorized) throw err;
      return `${manifest.origin}: ${manifest.kind.toLowerCase()}/${manifest.name}: ${err.message}`;
    }
  });
  const steps = planned.filter((s): s is Step => typeof s !== 'string');
  if (options.prune) steps.push(...(await planPrune(client, manifests, options.selector)));
  return { steps, problems: planned.filter((s): s is string => typeof s === 'string') };
}

async function planApp(client: ApiClient, manifest: Manifest): Promise<Step> {
  const base = { kind: 'App' as const, name: manifest.name, origin: manifest.origin, manifest };
  const live = await client.find<AppAnswer>(`/apps/${encodeURIComponent(manifest.name)}/`);
  if (!live) {
    const { body } = await client.request<AppAnswer>('POST', '/apps/', { query: { dryRun: 1 }, body: manifest.body });
    return { ...base, action: 'create', applied: comparable(body) };
  }
  const { body } = await client.request<AppAnswer>('PUT', `/apps/${encodeURIComponent(manifest.name)}/`, { query: { dryRun: 1 }, body: manifest.body });
  const [before, after] = [comparable(live), comparable(body)];
  return { ...base, action: sameJson(before, after) ? 'unchanged' : 'configure', live: before, applied: after };
}

async function planRun(client: ApiClient, manifest: Manifest, all: Manifest[]): Promise<Step> {
  const spec = (manifest.body.spec ?? {}) as { app?: unknown; env?: unknown; command?: unknown };
  if (typeof spec.app !== 'string') throw new CliError('spec.app is required: the name of the App to run');
  const applied = { metadata: { labels: labelsOf(manifest.body) }, spec: { app: spec.app, env: spec.env, command: spec.command } };
  const base = { kind: 'Run' as const, name: manifest.name, origin: manifest.origin, manifest, applied };
  const live = await client.find<RunAnswer>(`/runs/${encodeURIComponent(manifest.name)}/`);
  if (live) {
    // A run happens once per name; like the apps folder, applying it again changes nothing.
    if (live.app !== spec.app) throw new CliError(`run "${manifest.name}" exists already, of app "${live.app}"`);
    return { ...base, action: 'unchanged', live: applied };
  }
  const declared = all.some((m) => m.kind === 'App' && m.name === spec.app);
  if (!declared && !(await client.find(`/apps/${encodeURIComponent(spec.app)}/`))) throw new CliError(`app "${spec.app}" not found`);
  return { ...base, action: 'create' };
}

/** API-made Apps no document names. Apps a file owns are the apps folder's to prune, and the API refuses to delete them. */
async function planPrune(client: ApiClient, manifests: Manifest[], selector?: string): Promise<Step[]> {
  const declared = new Set(manifests.filter((m) => m.kind === 'App').map((m) => m.name));
  const apps = await client.list<AppAnswer>('/apps/', { labelSelector: selector });
  return apps
    .filter((app) => app.status.source === 'api' && !declared.has(app.metadata.name))
    .map((app) => ({ kind: 'App', name: app.metadata.name, action: 'prune', live: comparable(app) }));
}

/**
 * Carries a plan out: Apps before the Runs that need them, prunes last.
 * `report` is told each object's outcome as it happens.
 */
export async function executePlan(client: ApiClient, plan: Plan, report: (step: Step) => void): Promise<void> {
  const order: Action[] = ['create', 'configure', 'unchanged', 'prune'];
  const byOrder = (s: Step) => (s.action === 'prune' ? 2 : s.kind === 'App' ? 0 : 1);
  const steps = [...plan.steps].sort((a, b) => byOrder(a) - byOrder(b) || order.indexOf(a.action) - order.indexOf(b.action));
  for (const step of steps) {
    const path = `/apps/${encodeURIComponent(step.name)}/`;
    try {
      if (step.action === 'create' && step.kind === 'App') await client.request('POST', '/apps/', { body: step.manifest!.body });
      if (step.action === 'configure') await client.request('PUT', path, { body: step.manifest!.body });
      if (step.action === 'prune') await client.request('DELETE', path);
      if (step.action === 'create' && step.kind === 'Run') await requestRun(client, step.manifest!);
    } catch (err) {
      if (err instanceof NotFoundAnswer && step.action === 'prune') {
        // Deleted by someone else since the plan: what was asked for is so.
      } else if (err instanceof CliError) {
        throw new CliError(`${step.origin ?? 'prune'}: ${step.kind.toLowerCase()}/${step.name}: ${err.message}`, err.exitCode);
      } else {
        throw err;
      }
    }
    report(step);
  }
}

async function requestRun(client: ApiClient, manifest: Manifest): Promise<void> {
  const spec = manifest.body.spec as { app: string; env?: Record<string, string>; command?: string | string[] };
  const body = { name: manifest.name, ...(spec.env ? { env: spec.env } : {}), ...(spec.command !== undefined ? { command: spec.command } : {}) };
  await client.request('POST', `/apps/${encodeURIComponent(spec.app)}/run/`, { body });
}

function comparable(app: AppAnswer): Comparable {
  return { metadata: { labels: app.metadata.labels ?? {} }, spec: app.spec };
}

function labelsOf(body: Record<string, unknown>): Record<string, string> {
  return ((body.metadata as { labels?: Record<string, string> }).labels ?? {}) as Record<string, string>;
}

/** Equal as JSON, whatever the order of keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
