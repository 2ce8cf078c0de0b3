/**
 * The `berth` client as a user runs it: `node dist/src/cli/main.js …` as a
 * child process, with its contexts file in a temporary folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { tempDir } from './fixtures';

export const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed; without it stdin is empty. */
  input?: string;
  cwd?: string;
}

/** The environment every test's client starts from: no colour, no contexts of the user's, no server or token inherited. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', BERTH_CONFIG: path.join(tempDir('berth-cli-'), 'config.yaml') };
  for (const key of ['BERTH_SERVER', 'BERTH_TOKEN', 'BERTH_CONTEXT', 'BERTH_TOKEN_FILE']) delete env[key];
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export interface RunningCli {
  child: ChildProcess;
  /** What it printed so far. */
  stdout: () => string;
  stderr: () => string;
  result: Promise<CliResult>;
}

/** Starts `berth …` and leaves it running: for watches and follows the test reads while they go on. */
export function startCli(args: string[], options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { env: cliEnv(options.env), cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  child.stdin!.end(options.input ?? '');
  const result = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, stdout: () => stdout, stderr: () => stderr, result };
}

/** Runs `berth …` to its end. */
export function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/** What a finished client printed, for assertion messages. */
export const shown = (r: CliResult): string => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
