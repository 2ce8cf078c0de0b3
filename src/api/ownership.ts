import path from 'node:path';
import type { Context } from 'koa';
import { ConflictError, ValidationError } from '../errors';
import type { Precondition, StoredApp } from '../store/store';

/**
 * Refuses API writes to an App that a file in the apps folder declares: the
 * repository is the source of truth, and a write here would be undone by the
 * next sync anyway. The message names the file so the user knows where to go.
 */
export function assertApiOwned(app: StoredApp, appsDir?: string): void {
  const source = app.status.source;
  if (!source.startsWith('file:')) return;
  const relative = source.slice('file:'.length);
  const file = appsDir ? path.join(appsDir, relative) : relative;
  throw new ConflictError(`app "${app.metadata.name}" is managed by file ${file}; change the file instead`);
}

/**
 * The resourceVersion a write must match: from `If-Match` (an ETag as GET
 * answers it, `"7"`, or a bare `7`), else from the body's
 * `metadata.resourceVersion`. `If-Match: *` asks for no particular version.
 */
export function precondition(ctx: Context, fromBody?: string): Precondition {
  const header = ctx.get('if-match').trim();
  if (header === '' || header === '*') return { resourceVersion: fromBody };
  const match = /^(?:W\/)?"?([0-9]+)"?$/.exec(header);
  if (!match) throw ValidationError.forField('If-Match', 'must be a resourceVersion as the ETag header gives it, e.g. "7"');
  if (fromBody !== undefined && fromBody !== match[1]) {
    throw ValidationError.forField('metadata.resourceVersion', `is ${fromBody} but If-Match says ${match[1]}; send one of them`);
  }
  return { resourceVersion: match[1] };
}

/** The ETag of an object: its resourceVersion, so `If-Match` can carry it back. */
export const etag = (resourceVersion: string): string => `"${resourceVersion}"`;
