import { execFile } from 'node:child_process';

/**
 * The commit a folder's git work tree is at, or undefined when the folder is
 * not in one (or git is not installed). Asks git itself rather than reading
 * `.git/HEAD`, because worktrees, packed refs and git-sync's layouts all
 * resolve differently; the timeout keeps a wedged git from stalling a sync.
 */
export function gitCommit(dir: string, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', ['rev-parse', 'HEAD'], { cwd: dir, timeout: timeoutMs, windowsHide: true }, (err, stdout) => {
      const commit = String(stdout).trim();
      resolve(!err && /^[0-9a-f]{40,64}$/.test(commit) ? commit : undefined);
    });
  });
}
