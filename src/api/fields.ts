/**
 * `?fields=` and `?view=summary` on the list endpoints: a partial answer for
 * clients that need names and phases only, as Kubernetes' PartialObjectMetadata
 * and table views give. Without either, a list answers the whole object, as
 * the seed's clients expect.
 */
import type { Context } from 'koa';
import { BadQueryError } from '../errors';
import { single } from './query';

/** The kinds a list answers, each with the paths a client may ask for. */
export type ListedKind = 'App' | 'Run';

const METADATA = ['name', 'labels', 'uid', 'generation', 'resourceVersion', 'creationTimestamp'];

/**
 * The fields of each answer, two levels deep: `metadata.labels.team` is fine
 * (labels is a map), `status.phse` is refused rather than silently answered empty.
 */
const KNOWN: Record<ListedKind, Record<string, string[] | null>> = {
  App: {
    id: null,
    name: null,
    image: null,
    envs: null,
    command: null,
    apiVersion: null,
    kind: null,
    metadata: METADATA,
    spec: [
      'image',
      'command',
      'env',
      'runtime',
      'timeoutSeconds',
      'retries',
      'concurrencyPolicy',
      'imagePullPolicy',
      'resources',
      'historyLimit',
      'kubernetes',
      'capabilities',
      'network',
      'user',
      'parameters',
      'schedule',
    ],
    status: ['source', 'syncState', 'syncMessage', 'schedule'],
  },
  Run: {
    id: null,
    app: null,
    apiVersion: null,
    kind: null,
    metadata: METADATA,
    spec: ['app', 'template', 'env', 'command', 'parameters'],
    status: [
      'phase',
      'reason',
      'message',
      'exitCode',
      'attempts',
      'startedAt',
      'finishedAt',
      'containerName',
      'runtime',
      'nextAttemptAt',
      'pendingReason',
      'pendingMessage',
      'queuePosition',
      'cancelRequested',
      'history',
    ],
  },
};

/** `?view=summary`: who it is, and where it stands. */
const SUMMARY: Record<ListedKind, string[]> = {
  App: ['id', 'name', 'metadata.name', 'metadata.labels', 'metadata.resourceVersion', 'spec.image', 'status.source'],
  Run: ['id', 'app', 'metadata.name', 'metadata.resourceVersion', 'status.phase', 'status.exitCode', 'status.reason', 'status.startedAt', 'status.finishedAt'],
};

const VIEWS = ['full', 'summary'];

/** A function that keeps only the asked-for fields of an answer; `key` names the fields it keeps (the same for the same ones). */
export type Projection = ((item: object) => Record<string, unknown>) & { key: string };

/**
 * Reads `?fields=` and `?view=`; `undefined` means the whole object. Both at
 * once, an unknown view, or unknown fields are a 400 naming what is wrong.
 */
export function listProjection(ctx: Context, kind: ListedKind): Projection | undefined {
  const fields = single(ctx, 'fields');
  const view = single(ctx, 'view');
  if (view !== undefined && !VIEWS.includes(view)) {
    throw BadQueryError.forField('view', `"${view}" is not a view; use ${VIEWS.join(' or ')}`);
  }
  if (fields !== undefined && view === 'summary') {
    throw BadQueryError.forField('fields', 'cannot be combined with view=summary; give one or the other');
  }
  if (view === 'summary') return projection(SUMMARY[kind]);
  if (fields === undefined) return undefined;
  return projection(parseFields(fields, kind));
}

/** `metadata.name,status.phase` → the paths, each checked against what a `kind` answer holds. */
export function parseFields(raw: string, kind: ListedKind): string[] {
  const paths = raw.split(',').map((p) => p.trim());
  const unknown = paths.filter((p) => !isKnown(p, kind));
  if (unknown.length) {
    const known = Object.keys(KNOWN[kind]).join(', ');
    throw BadQueryError.forField(
      'fields',
      `${unknown.map((p) => `"${p}"`).join(', ')} ${unknown.length === 1 ? 'is not a field' : 'are not fields'} of ${kind === 'App' ? 'an App' : 'a Run'}; ` +
        `give dotted paths below ${known}`,
    );
  }
  return paths;
}

function isKnown(path: string, kind: ListedKind): boolean {
  const segments = path.split('.');
  if (segments.some((s) => s === '')) return false;
  const [top, second] = segments;
  if (!Object.hasOwn(KNOWN[kind], top)) return false;
  const below = KNOWN[kind][top];
  if (second === undefined) return true;
  return below !== null && below.includes(second);
}

/** Copies each path that is present into a new object of the same shape; absent ones are left out. */
function projection(paths: string[]): Projection {
  // `metadata` and `metadata.name` together: the whole of metadata, copied once and never written into.
  const kept = paths.filter((p) => !paths.some((other) => p.startsWith(`${other}.`)));
  const unique = [...new Set(kept)];
  const split = unique.map((p) => p.split('.'));
  const project = (item: object) => {
    const out: Record<string, unknown> = {};
    for (const segments of split) {
      let value: unknown = item;
      for (const s of segments) {
        value = value !== null && typeof value === 'object' && Object.hasOwn(value, s) ? (value as Record<string, unknown>)[s] : undefined;
        if (value === undefined) break;
      }
      if (value === undefined) continue;
      let target = out;
      for (const s of segments.slice(0, -1)) target = (target[s] ??= {}) as Record<string, unknown>;
      target[segments[segments.length - 1]] = value;
    }
    return out;
  };
  return Object.assign(project, { key: unique.join(',') });
}
