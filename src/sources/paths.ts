import fs from 'node:fs/promises';
import path from 'node:path';

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
 * Every manifest file below `dir`, relative and sorted. Symbolic links are
 * followed (git-sync publishes a checkout through one), each real folder once.
 */
export async function listManifests(dir: string): Promise<string[]> {
  const found: string[] = [];
  const visited = new Set<string>();
  async function walk(folder: string): Promise<void> {
    const real = await fs.realpath(folder).catch(() => undefined);
    if (!real || visited.has(real)) return;
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
        let isDir = entry.isDirectory();
        let isFile = entry.isFile();
        if (entry.isSymbolicLink()) {
          const target = await fs.stat(absolute).catch(() => undefined);
          isDir = target?.isDirectory() ?? false;
          isFile = target?.isFile() ?? false;
        }
        if (isDir) await walk(absolute);
        else if (isFile && isManifestPath(relative)) found.push(relative);
      }),
    );
  }
  await walk(dir);
  return found.sort();
}
