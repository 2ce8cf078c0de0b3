import fs from 'node:fs/promises';
import path from 'node:path';
import { isWithin, type FolderBounds } from './bounds';

const MANIFEST = /\.ya?ml$/i;
// Editor leftovers that are never manifests: vim swap files and its write-check file, backups, emacs locks.
const EDITOR_TEMP = /(\.sw[a-p]x?|~|\.tmp|\.bak)$|^4913$|^\.#/;

/** A path relative to the apps folder with `/` separators, as App sources name it. */
export function relativePath(dir: string, absolute: string): string {
  return path.relative(dir, absolute).split(path.sep).join('/');
}

/**
 * Whether a path below the apps folder is never looked at: anything inside a
 * dot-folder (`.git`, a ConfigMap's `..data`) or named like a dotfile or an
 * editor temp file. Folders are not judged by extension, so this is also the
 * watcher's filter (which may not know whether a path is a folder).
 */
export function isIgnored(relative: string): boolean {
  if (relative === '' || relative === '.') return false;
  return relative.split('/').some((segment) => segment.startsWith('.') || EDITOR_TEMP.test(segment));
}

/** Whether a file (not a folder) below the apps folder is a manifest the source applies. */
export function isManifestPath(relative: string): boolean {
  return MANIFEST.test(relative) && !isIgnored(relative);
}

/**
 * Every manifest file below the folder, relative and sorted, and every
 * symbolic link below it that leads outside (so that each is reported; see
 * ./bounds.ts). Links whose target is inside are followed, each real folder
 * once; a link leading out is listed but never followed, so a link to `/`
 * costs one `realpath`.
 */
export async function listManifests(bounds: FolderBounds): Promise<string[]> {
  const dir = bounds.dir;
  const found: string[] = [];
  const visited = new Set<string>();
  async function walk(folder: string, real: string): Promise<void> {
    if (visited.has(real)) return;
    visited.add(real);
    const entries = await fs.readdir(folder, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
      // A folder removed while we walk is simply not there any more.
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return [];
      throw err;
    });
    await Promise.all(
      entries.map(async (entry) => {
        const absolute = path.join(folder, entry.name);
        const relative = relativePath(dir, absolute);
        if (isIgnored(relative)) return;
        if (entry.isDirectory()) return walk(absolute, path.join(real, entry.name));
        if (entry.isFile()) {
          if (isManifestPath(relative)) found.push(relative);
          return;
        }
        if (!entry.isSymbolicLink()) return;
        const target = await fs.realpath(absolute).catch(() => undefined);
        // Dangling: nothing to read. Leading out: reported, never looked into.
        if (target === undefined) return;
        if (!isWithin(bounds.real, target)) return void found.push(relative);
        const stats = await fs.stat(target).catch(() => undefined);
        if (stats?.isDirectory()) await walk(absolute, target);
        else if (stats?.isFile() && isManifestPath(relative)) found.push(relative);
      }),
    );
  }
  await walk(dir, bounds.real);
  return found.sort();
}
