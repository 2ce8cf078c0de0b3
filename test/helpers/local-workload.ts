/**
 * One workload of the in-memory executor: a real local child process in a
 * process group of its own, standing in for a container. Its output is kept
 * for `logs` until it is removed; ending its main process ends the whole
 * group, as ending a container's first process ends the container.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { WaitingReason, WorkloadAction, type LaunchRequest, type LogOptions, type Observation } from '../../src/executors/executor';
import { groupMemoryBytes } from './process-memory';

const NEWLINE = 0x0a;

export interface LocalWorkloadOptions {
  request: LaunchRequest;
  /** The command to run: the template's, or the image's default. */
  command: string[];
  /** Bytes the group may hold before it is killed as out of memory; none when undefined. */
  memoryLimit?: number;
  /** How often the group's memory is measured against `memoryLimit`. */
  memorySampleMs: number;
  /** Told what happened, for the executor's watchers. */
  onAction: (action: WorkloadAction) => void;
}

/** The last `count` lines of `output`; a final newline ends the last line rather than starting another. */
function lastLines(output: Buffer, count: number): Buffer {
  if (count <= 0) return Buffer.alloc(0);
  const end = output.length > 0 && output[output.length - 1] === NEWLINE ? output.length - 1 : output.length;
  let start = end;
  let lines = 0;
  while (start > 0) {
    if (output[start - 1] === NEWLINE && ++lines === count) break;
    start--;
  }
  return output.subarray(start);
}

/** Shells' exit statuses for a command that cannot be run: 127 not found, 126 found but not runnable. */
const spawnExitCode = (error: NodeJS.ErrnoException): number => (error.code === 'ENOENT' ? 127 : 126);

export class LocalWorkload {
  readonly request: LaunchRequest;
  /** Resolves once the process has ended and its output is complete (or it never started). */
  readonly ended: Promise<void>;
  private readonly child: ChildProcess;
  private readonly dir: string;
  private readonly output: Buffer[] = [];
  private readonly followers = new Set<PassThrough>();
  private readonly onAction: (action: WorkloadAction) => void;
  private phase: 'waiting' | 'running' | 'exited' = 'waiting';
  private startedAt?: string;
  private finishedAt?: string;
  private exitCode?: number;
  private oomKilled = false;
  private message?: string;
  private lostMessage?: string;
  private sampler?: NodeJS.Timeout;
  /** Set once the main process is reaped: from then on its pid may belong to someone else, and is never signalled. */
  private reaped = false;
  private readonly settled: Promise<void>;

  constructor(options: LocalWorkloadOptions) {
    this.request = options.request;
    this.onAction = options.onAction;
    const { template } = options.request;
    // A folder of its own as working directory, as a container has its own filesystem.
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'berth-memory-'));
    // Only PATH from this process: a workload sees its App's environment, not the test runner's.
    const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', ...template.env };
    // Detached: a process group of its own, so a stop or a kill reaches everything the workload started.
    this.child = spawn(options.command[0], options.command.slice(1), { cwd: this.dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let spawnError: NodeJS.ErrnoException | undefined;
    this.settled = new Promise((resolve) => {
      this.child.once('spawn', resolve);
      this.child.once('close', resolve);
    });
    this.child.once('spawn', () => {
      this.phase = 'running';
      this.startedAt = new Date().toISOString();
      this.onAction(WorkloadAction.Started);
      if (options.memoryLimit !== undefined) this.watchMemory(options.memoryLimit, options.memorySampleMs);
    });
    this.child.once('error', (error: NodeJS.ErrnoException) => {
      // After a spawn, 'error' only reports a failed signal, which the process ending makes moot.
      if (this.phase === 'waiting') spawnError = error;
    });
    this.child.stdout?.on('data', (chunk: Buffer) => this.append(chunk));
    this.child.stderr?.on('data', (chunk: Buffer) => this.append(chunk));
    this.child.once('exit', (code, signal) => {
      this.finishedAt = new Date().toISOString();
      // Like a shell or a container runtime: a death by signal is 128 plus its number.
      this.exitCode = code ?? 128 + (signal ? os.constants.signals[signal] : 0);
      // What the main process left behind ends with it, as in a container whose first process ended.
      this.killGroup();
      this.reaped = true;
      clearInterval(this.sampler);
    });
    this.ended = new Promise((resolve) => {
      this.child.once('close', () => {
        if (spawnError) {
          this.finishedAt = new Date().toISOString();
          this.exitCode = spawnExitCode(spawnError);
          this.message = spawnError.message;
          this.reaped = true;
        }
        this.phase = 'exited';
        for (const follower of this.followers) follower.end();
        this.followers.clear();
        this.onAction(WorkloadAction.Exited);
        resolve();
      });
    });
  }

  get labels(): { runUid: string; appName: string; attempt: number; storeId?: string } {
    const { runUid, appName, attempt, storeId } = this.request;
    return { runUid, appName, attempt, ...(storeId ? { storeId } : {}) };
  }

  observe(): Observation {
    if (this.lostMessage !== undefined) return { state: 'lost', message: this.lostMessage };
    switch (this.phase) {
      case 'waiting':
        return { state: 'waiting', reason: WaitingReason.Creating, terminal: false, message: 'the process is being spawned' };
      case 'running':
        return { state: 'running', startedAt: this.startedAt as string };
      case 'exited':
        return {
          state: 'exited',
          exitCode: this.exitCode as number,
          oomKilled: this.oomKilled,
          ...(this.startedAt ? { startedAt: this.startedAt } : {}),
          finishedAt: this.finishedAt as string,
          ...(this.message ? { message: this.message } : {}),
        };
    }
  }

  /** TERM to the main process, then KILL to the whole group after `graceSeconds`; resolves once it has ended. */
  async stop(graceSeconds: number): Promise<void> {
    await this.settled;
    if (this.phase === 'exited' || this.reaped) return this.ended;
    // Only the main process hears TERM, as only a container's first process does; it decides what its children hear.
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.killGroup(), Math.max(0, graceSeconds) * 1000);
    try {
      await this.ended;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends it as a node or an eviction would: no exit of its own, `message` says why. */
  lose(message: string): void {
    this.lostMessage = message;
    this.killGroup();
    this.onAction(WorkloadAction.Changed);
  }

  /** Kills what still runs and, once it has ended, deletes its working directory. */
  dispose(): void {
    this.killGroup();
    clearInterval(this.sampler);
    void this.ended.then(() => rmSync(this.dir, { recursive: true, force: true }));
  }

  /** Its output as text: the last `tail` lines, then, with `follow`, what it writes until it ends. */
  logs(options: LogOptions): Readable {
    const stream = new PassThrough();
    // Text, decoded across chunk boundaries, as the Docker executor's logs are.
    stream.setEncoding('utf8');
    const written = Buffer.concat(this.output);
    const shown = options.tail === undefined ? written : lastLines(written, options.tail);
    if (shown.length > 0) stream.write(shown);
    if (!options.follow || this.phase === 'exited') {
      stream.end();
      return stream;
    }
    this.followers.add(stream);
    stream.once('close', () => this.followers.delete(stream));
    return stream;
  }

  private append(chunk: Buffer): void {
    this.output.push(chunk);
    for (const follower of this.followers) follower.write(chunk);
  }

  private killGroup(): void {
    if (this.reaped || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // ESRCH: the group has ended already.
    }
  }

  /**
   * Samples the group's resident memory; over the limit, the group is killed
   * and the exit marked as an OOM kill. A spike shorter than one sample can
   * go unseen, where a kernel's cgroup would have caught it.
   */
  private watchMemory(limit: number, sampleMs: number): void {
    let sampling = false;
    this.sampler = setInterval(() => {
      if (sampling || this.reaped || this.child.pid === undefined) return;
      sampling = true;
      const pid = this.child.pid;
      void groupMemoryBytes(pid)
        .then((bytes) => {
          if (bytes <= limit || this.reaped) return;
          this.oomKilled = true;
          this.message = `memory use reached ${bytes} bytes, over the limit of ${limit}`;
          this.killGroup();
        })
        .finally(() => (sampling = false));
    }, sampleMs);
  }
}
