import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import type { Admission } from '../model/containment';
import type { FolderBounds, OutsideLink } from './bounds';
import { ManifestFile, readManifestFile } from './manifest-file';

/** One manifest file as read at one moment: its content and what it declares, or its absence. */
export interface FileSnapshot {
  /** Relative to the apps folder, `/`-separated. */
  path: string;
  /** False when the file is gone (deleted, renamed away, its folder removed). */
  present: boolean;
  /** sha256 (hex) of the bytes read. */
  hash?: string;
  manifest: ManifestFile;
  /** Set when the path resolves outside the apps folder: the link that leads there. Nothing was read. */
  outside?: OutsideLink;
}

/** The file changed while it was being read: a writer is still at work, so read it again later. */
export const UNSETTLED = Symbol('unsettled');

const EMPTY: ManifestFile = { apps: [], runs: [], errors: [] };

/**
 * Reads one manifest file. The file is stat'ed before and after the read;
 * if its size or modification time moved, a writer is mid-write and the
 * read is reported as UNSETTLED instead of applying half a file. A path
 * that resolves outside the apps folder is not read at all: it comes back
 * with one error naming the link that leads out (see ./bounds.ts).
 */
export async function readSnapshot(bounds: FolderBounds, relative: string, maxBytes: number, admission?: Admission): Promise<FileSnapshot | typeof UNSETTLED> {
  const absent: FileSnapshot = { path: relative, present: false, manifest: EMPTY };
  const unreadable = (code: string): FileSnapshot => ({
    path: relative,
    present: true,
    manifest: { ...EMPTY, errors: [{ field: '(file)', reason: `cannot be read: ${code}` }] },
  });
  const where = await bounds.resolve(relative);
  if (where.kind === 'absent') return absent;
  if (where.kind === 'moving') return UNSETTLED;
  if (where.kind === 'unreadable') return unreadable(where.code);
  if (where.kind === 'outside') return outsideSnapshot(relative, where.through, bounds.real);
  try {
    const before = await fs.stat(where.real);
    if (!before.isFile()) return absent;
    if (before.size > maxBytes) {
      return {
        path: relative,
        present: true,
        hash: `size:${before.size}:${before.mtimeMs}`,
        manifest: { ...EMPTY, errors: [{ field: '(file)', reason: `is ${before.size} bytes; manifest files may be at most ${maxBytes}` }] },
      };
    }
    // The real path was checked to be inside; refuse a link put in its place since.
    const bytes = await fs.readFile(where.real, { flag: fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW });
    const after = await fs.stat(where.real);
    if (after.size !== bytes.length || after.mtimeMs !== before.mtimeMs || after.ino !== before.ino) return UNSETTLED;
    const hash = createHash('sha256').update(bytes).digest('hex');
    return { path: relative, present: true, hash, manifest: readManifestFile(bytes.toString('utf8'), admission) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return absent;
    if (code === 'ELOOP') return UNSETTLED;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR') return unreadable(code);
    throw err;
  }
}

/** A path that leads outside the folder: one error naming the link and where it points, and nothing of what is there. */
function outsideSnapshot(relative: string, through: OutsideLink, realDir: string): FileSnapshot {
  const where =
    through.link === relative ? `is a symbolic link to ${through.target}` : `is reached through the symbolic link ${through.link} → ${through.target}`;
  const reason = `${where}, which leads outside the apps folder (${realDir}); links may only point inside it, so it is not followed`;
  return {
    path: relative,
    present: true,
    hash: `outside:${through.link}:${through.target}`,
    manifest: { ...EMPTY, errors: [{ field: '(file)', reason }] },
    outside: through,
  };
}
