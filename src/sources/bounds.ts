import fs from 'node:fs';
import path from 'node:path';

/** A symbolic link below the apps folder whose target is outside it. */
export interface OutsideLink {
  /** The link, relative to the apps folder, `/`-separated. */
  link: string;
  /** What the link says (its `readlink`), as written. */
  target: string;
}

/** Where a path below the apps folder leads once every symbolic link on the way is resolved. */
export type Resolution =
  | { kind: 'inside'; real: string }
  | { kind: 'outside'; through: OutsideLink }
  | { kind: 'absent' }
  /** A link on the way changed between two reads: look again later. */
  | { kind: 'moving' }
  | { kind: 'unreadable'; code: string };

/**
 * The apps folder's real extent: nothing the folder source reads or watches
 * may resolve outside the folder's real path. Links are what git-sync and
 * ConfigMap mounts publish through, so a link whose target is inside stays
 * allowed (`apps/current → apps/.worktrees/abc123`), and so does the folder
 * itself being a link; one leading anywhere else (`apps/x → /`) is never
 * followed, or it would apply and echo files nobody committed.
 *
 * The real path is read again on `refresh`, because when the folder itself
 * is reached through a link, swapping that link moves it.
 */
export class FolderBounds {
  private realDir: string;

  constructor(readonly dir: string) {
    this.realDir = path.resolve(dir);
  }

  /** The folder's real path as last resolved. */
  get real(): string {
    return this.realDir;
  }

  /**
   * Resolves the folder's real path now and returns it.
   * @throws when the folder is not there (a dangling link mid-swap, a removed checkout)
   */
  async refresh(): Promise<string> {
    this.realDir = await fs.promises.realpath(this.dir);
    return this.realDir;
  }

  /**
   * Whether an existing path below the folder resolves outside it; for the
   * watcher's filter, which is synchronous. A path that does not exist
   * (reported as removed) does not lead anywhere.
   */
  leadsOutside(absolute: string): boolean {
    let real: string;
    try {
      real = fs.realpathSync.native(absolute);
    } catch {
      return false;
    }
    if (isWithin(this.realDir, real)) return false;
    // The folder itself may have moved (its own link swapped): judge against where it is now.
    try {
      this.realDir = fs.realpathSync.native(this.dir);
    } catch {
      return true;
    }
    return !isWithin(this.realDir, real);
  }

  /** Where a path below the folder (relative, `/`-separated) leads, judged against the real path of the last `refresh`. */
  async resolve(relative: string): Promise<Resolution> {
    const absolute = path.join(this.dir, ...relative.split('/'));
    try {
      const real = await fs.promises.realpath(absolute);
      if (isWithin(this.realDir, real)) return { kind: 'inside', real };
      const through = await this.outsideLinkOn(relative);
      // No link on the way leads out any more: one was swapped between the two reads.
      return through ? { kind: 'outside', through } : { kind: 'moving' };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return { kind: 'unreadable', code };
      // Missing here may still be reached through a link that leads out: say so rather than "deleted".
      const through = await this.outsideLinkOn(relative);
      return through ? { kind: 'outside', through } : { kind: 'absent' };
    }
  }

  /** The first symbolic link on `relative`'s way down from the folder whose target is outside the folder, if any. */
  private async outsideLinkOn(relative: string): Promise<OutsideLink | undefined> {
    const segments = relative.split('/');
    for (let i = 1; i <= segments.length; i++) {
      const link = segments.slice(0, i).join('/');
      const absolute = path.join(this.dir, ...segments.slice(0, i));
      const stats = await fs.promises.lstat(absolute).catch(() => undefined);
      if (!stats) return undefined;
      if (!stats.isSymbolicLink()) continue;
      const real = await fs.promises.realpath(absolute).catch(() => undefined);
      // A dangling link leads nowhere: what is below it is simply absent.
      if (real === undefined) return undefined;
      if (isWithin(this.realDir, real)) continue;
      return { link, target: await fs.promises.readlink(absolute).catch(() => real) };
    }
    return undefined;
  }
}

/** Whether `real` is `root` or below it; both are real paths. */
export function isWithin(root: string, real: string): boolean {
  const relative = path.relative(root, real);
  return relative === '' || (relative.split(path.sep)[0] !== '..' && !path.isAbsolute(relative));
}
