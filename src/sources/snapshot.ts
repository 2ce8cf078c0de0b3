import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Admission } from '../model/containment';
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
}

/** The file changed while it was being read: a writer is still at work, so read it again later. */
export const UNSETTLED = Symbol('unsettled');

const EMPTY: ManifestFile = { apps: [], runs: [], errors: [] };

/**
 * Reads one manifest file. The file is stat'ed before and after the read;
 * if its size or modification time moved, a writer is mid-write and the
 * read is reported as UNSETTLED instead of applying half a file.
 */
export async function readSnapshot(dir: string, relative: string, maxBytes: number, admission?: Admission): Promise<FileSnapshot | typeof UNSETTLED> {
  const absolute = path.join(dir, ...relative.split('/'));
  const absent: FileSnapshot = { path: relative, present: false, manifest: EMPTY };
  try {
    const before = await fs.stat(absolute);
    if (!before.isFile()) return absent;
    if (before.size > maxBytes) {
      return {
        path: relative,
        present: true,
        hash: `size:${before.size}:${before.mtimeMs}`,
        manifest: { ...EMPTY, errors: [{ field: '(file)', reason: `is ${before.size} bytes; manifest files may be at most ${maxBytes}` }] },
      };
    }
    const bytes = await fs.readFile(absolute);
    const after = await fs.stat(absolute);
    if (after.size !== bytes.length || after.mtimeMs !== before.mtimeMs || after.ino !== before.ino) return UNSETTLED;
    const hash = createHash('sha256').update(bytes).digest('hex');
    return { path: relative, present: true, hash, manifest: readManifestFile(bytes.toString('utf8'), admission) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return absent;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EISDIR') {
      return { path: relative, present: true, manifest: { ...EMPTY, errors: [{ field: '(file)', reason: `cannot be read: ${code}` }] } };
    }
    throw err;
  }
}
