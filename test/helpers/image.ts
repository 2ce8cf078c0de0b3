/**
 * berth's container image, built by .ci/image/build.sh on its local bases
 * (nothing can be pulled here). The build reuses berth:dev while its inputs
 * label matches, so only the first caller (or one after a change) pays.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../../..');
export const BUILD_SCRIPT = path.join(ROOT, '.ci/image/build.sh');
export const IMAGE = 'berth:dev';
/** A cold build: debootstrap, node from the npm registry, npm ci compiling sqlite3, tsc. About 6 minutes here. */
export const BUILD_TIMEOUT_MS = 25 * 60_000;

export interface Output {
  stdout: string;
  stderr: string;
}

/** Runs a command in the repository; a failure names it, its exit and the tail of its output. */
export function run(file: string, args: string[], { timeoutMs = 60_000, env }: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Output> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: env ?? process.env }, (error, stdout, stderr) => {
      if (!error) return resolve({ stdout, stderr });
      const tail = `${stdout}${stderr}`.split('\n').slice(-40).join('\n');
      reject(new Error(`${file} ${args.join(' ')} failed (${error.killed ? `killed after ${timeoutMs} ms` : `exit ${error.code}`}):\n${tail}`));
    });
  });
}

/** Builds IMAGE unless it is up to date; the build's own output on stderr. */
export function buildImage(): Promise<Output> {
  return run('bash', [BUILD_SCRIPT], { timeoutMs: BUILD_TIMEOUT_MS, env: { ...process.env, IMAGE, FORCE: '' } });
}
