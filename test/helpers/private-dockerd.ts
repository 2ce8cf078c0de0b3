/**
 * A Docker engine of a test's own: a second dockerd with its own socket,
 * data and exec roots, no bridge and no iptables rules, so a test can kill
 * and restart it while other tests use the shared engine. Containers on it run
 * with `--network none`. The test image is copied in from the shared engine.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { TEST_IMAGE } from './fixtures';
import { waitFor } from './wait';

export interface PrivateDockerd {
  /** `unix://…`, for `berth serve --docker-host`. */
  host: string;
  docker: Docker;
  /** Stops the engine with `signal` (SIGKILL: a crash) and waits until it is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same data root and waits until it answers. */
  start(): Promise<void>;
  /** Stops it, removes every container it holds, and deletes its folders. */
  remove(): Promise<void>;
}

/** Why this machine cannot run a private dockerd, or undefined when it can. */
export function dockerdMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'a second dockerd needs root';
  try {
    execFileSync('sh', ['-c', 'command -v dockerd && command -v docker'], { stdio: 'ignore' });
  } catch {
    return 'dockerd or the docker CLI is not installed';
  }
  return undefined;
}

/** Starts a private dockerd and loads the test image into it. */
export async function startDockerd(): Promise<PrivateDockerd> {
  // A short path: a unix socket's path is limited to about 100 bytes.
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-chaos-'));
  const socket = path.join(base, 'docker.sock');
  const host = `unix://${socket}`;
  const docker = new Docker({ socketPath: socket });
  let child: ChildProcess | undefined;

  const start = async () => {
    const out = fs.openSync(path.join(base, 'dockerd.log'), 'a');
    // In a network namespace of its own: a dockerd told `--bridge none` deletes the host's docker0 as it starts,
    // which would take the shared engine's default network away from every other test.
    child = spawn(
      'unshare',
      [
        '--net',
        '--',
        'dockerd',
        '--host',
        host,
        '--data-root',
        path.join(base, 'data'),
        '--exec-root',
        path.join(base, 'exec'),
        '--pidfile',
        path.join(base, 'docker.pid'),
        // It starts a containerd of its own under exec-root; distinct namespaces keep even a shared one apart.
        '--containerd-namespace',
        `berth-chaos-${path.basename(base)}`,
        '--containerd-plugins-namespace',
        `berth-chaos-plugins-${path.basename(base)}`,
        '--bridge',
        'none',
        '--iptables=false',
        '--ip-masq=false',
        '--ip6tables=false',
      ],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    const running = child;
    await waitFor(
      `the private dockerd at ${host} to answer`,
      async () => {
        if (running.exitCode !== null) throw new Error(`dockerd exited: ${fs.readFileSync(path.join(base, 'dockerd.log'), 'utf8').slice(-2000)}`);
        return (await docker.ping()) && true;
      },
      { timeoutMs: 60_000 },
    );
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill(signal);
    await gone;
    // dockerd runs its containerd as a child that outlives a SIGKILL and keeps its database locked, so the next
    // dockerd could not start its own: a crash here takes the whole engine down, as a host's crash would.
    const containerdPid = path.join(base, 'exec', 'containerd', 'containerd.pid');
    if (signal === 'SIGKILL' && fs.existsSync(containerdPid)) {
      const pid = Number(fs.readFileSync(containerdPid, 'utf8'));
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await waitFor('the private containerd to be gone', () => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '));
    }
  };

  const hostBridge = '/sys/class/net/docker0';
  const hadBridge = fs.existsSync(hostBridge);
  await start();
  if (hadBridge && !fs.existsSync(hostBridge)) throw new Error("starting the private dockerd deleted the shared engine's docker0 bridge");
  execFileSync('sh', ['-c', `docker save ${TEST_IMAGE} | docker -H ${host} load`], { stdio: 'ignore' });

  return {
    host,
    docker,
    stop,
    start,
    async remove() {
      if (child && child.exitCode === null && child.signalCode === null) {
        const all = await docker.listContainers({ all: true }).catch(() => []);
        await Promise.all(
          all.map((c) =>
            docker
              .getContainer(c.Id)
              .remove({ force: true })
              .catch(() => undefined),
          ),
        );
      }
      await stop('SIGTERM');
      // Whatever this engine left running (a shim after a failed start) goes too: it holds mounts under base.
      for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
        const cmdline = (() => {
          try {
            return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          } catch {
            return '';
          }
        })();
        if (cmdline.includes(base)) process.kill(Number(pid), 'SIGKILL');
      }
      // The data root holds overlay mounts of stopped engines no more, but exec-root may hold a netns mount.
      execFileSync('sh', ['-c', `grep -o ' ${base}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`], { stdio: 'ignore' });
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
