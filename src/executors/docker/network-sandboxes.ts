/**
 * Network sandboxes: network namespaces made ahead, for runs on the engine's
 * built-in networks (`none`, and the default `bridge`).
 *
 * Why: of a short container's start on Docker, most is the engine making its
 * network namespace (measured on the project's machine: a start takes ≈ 440
 * ms with its own namespace, ≈ 170 ms joining one that exists). So such a
 * run's container joins the namespace of a sandbox instead (`NetworkMode:
 * container:<sandbox>`), as a Kubernetes pod's containers join their pause
 * container's. A sandbox is a container running berth's `pause` program
 * (sandbox-image.ts) on the run's network; on `bridge` the run then has the
 * sandbox's address. Named networks are left alone: there a container is
 * found by its own name, which a joined one does not have on the network.
 *
 * Invariants:
 *  - A sandbox serves at most one live (created, running or paused)
 *    container at a time, so a run's loopback, its ports and its abstract
 *    sockets are its own while it runs, as with a namespace of its own.
 *    Reuse is sequential: a run finds nothing of the one before, whose
 *    processes all ended with its container.
 *  - Which sandboxes are taken is read from the engine at each reservation
 *    (the containers whose NetworkMode names them), so it survives a restart
 *    of berth and holds across processes. Within this process, the sandboxes
 *    chosen by launches that have not created their container yet are held
 *    in `reserved` until they have. Two berth processes on one engine could
 *    still choose the same idle sandbox in the same instant; picking at
 *    random among the idle ones makes that unlikely, not impossible.
 *  - A run whose App may change a namespace (NET_ADMIN, SYS_ADMIN) never
 *    joins one: what it did there would outlive it.
 *  - A run joins only a sandbox on its own network; `--docker-network-sandboxes`
 *    bounds the sandboxes of each network.
 *  - A sandbox left created but never started (its maker, or the engine,
 *    went away between the two steps) is neither joined nor counted against
 *    the limit, and is removed once it is older than a maker takes between
 *    the two steps (`neverStartedMs`, a minute).
 *  - A sandbox no container has used for `idleMs` is removed (each holds an
 *    engine shim, ≈ 13 MB here), so a burst of parallel runs leaves nothing
 *    behind for long; one idle longer is made again when next needed.
 *  - A sandbox is never needed for a run to happen: when there is none to
 *    have (the limit is reached, the engine cannot run the program, the
 *    engine refused), the run makes its own namespace, as it would without
 *    sandboxes; the executor does the same when a sandbox is gone by the time
 *    the container starts.
 *
 * What a run sees differently: its hostname is the sandbox's (the engine
 * gives a container that joins another's network that one's hostname).
 */

import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../executor';
import { SANDBOX_COMMAND, SANDBOX_IMAGE, importSandboxImage, sandboxArchitecture } from './sandbox-image';
import { statusOf } from './docker-errors';

/** Marks a container as a network sandbox; its value is the sandbox's network. */
export const LABEL_NETWORK_SANDBOX = 'berth.dev/network-sandbox';

/** Capabilities with which a run could change the namespace it runs in. */
const NAMESPACE_CHANGING = ['NET_ADMIN', 'SYS_ADMIN'];

/** How long a failure to make the sandbox image keeps sandboxes off before it is tried again. */
const RETRY_IMAGE_MS = 60_000;

/** One engine call with the executor's deadline and error mapping. */
export type EngineCall = <T>(doing: string, request: (abortSignal: AbortSignal) => Promise<T>) => Promise<T>;

/** A sandbox chosen for one container; `settle` once that container is created (or its creation failed). */
export interface SandboxReservation {
  readonly id: string;
  settle(): void;
}

/** The networks whose runs join sandboxes. */
const SANDBOXED_NETWORKS = ['none', 'bridge'];

/** Whether a run with this network and these added capabilities may join a sandbox. */
export function joinsSandbox(network: string, capabilities: readonly string[] = []): boolean {
  return SANDBOXED_NETWORKS.includes(network) && !capabilities.some((name) => NAMESPACE_CHANGING.includes(name.toUpperCase().replace(/^CAP_/, '')));
}

/** The sandbox a container joined, from its NetworkMode, if it joined one. */
export function joinedContainer(networkMode: string | undefined): string | undefined {
  return networkMode?.startsWith('container:') ? networkMode.slice('container:'.length) : undefined;
}

export class NetworkSandboxes {
  /** Sandboxes chosen by launches in this process that have not created their container yet. */
  private readonly reserved = new Set<string>();
  /** Sandboxes being made by this process, by network, counted against the limit. */
  private readonly making = new Map<string, number>();
  /** Whether the engine can run sandboxes: its architecture, and the image present or imported. */
  private usable: Promise<boolean> | undefined;
  /** When each sandbox was last seen taken (or first seen idle), for the idle sweep. */
  private readonly lastUsed = new Map<string, number>();
  /** Sandboxes the sweep is removing: never chosen meanwhile. */
  private readonly removing = new Set<string>();
  private sweeper: NodeJS.Timeout | undefined;

  /**
   * @param limit how many sandboxes of each network may exist on the engine; 0 turns them off.
   * @param idleMs how long a sandbox may go unused before it is removed.
   * @param neverStartedMs how long after its creation a sandbox still not started
   *   is taken as left so by a maker that went away, and removed.
   */
  constructor(
    private readonly docker: Docker,
    private readonly call: EngineCall,
    readonly limit: number,
    readonly idleMs = 300_000,
    readonly neverStartedMs = 60_000,
  ) {}

  /** A sandbox on `network` for one container to join, or undefined: that container makes its own namespace. */
  async reserve(network: string): Promise<SandboxReservation | undefined> {
    if (this.limit <= 0 || !(await this.engineCanRun())) return undefined;
    try {
      const { sandboxes, idle } = await this.survey(network);
      if (idle.length > 0) return this.hold(idle[Math.floor(Math.random() * idle.length)].Id);
      if (sandboxes.length + (this.making.get(network) ?? 0) >= this.limit) return undefined;
      // Sandboxes stop only with the engine (a restart) or by hand; those are not waited for.
      void this.removeStopped();
      return this.hold(await this.make(network));
    } catch {
      // A sandbox only saves time; the container makes its own namespace instead.
      return undefined;
    }
  }

  /**
   * Removes the sandboxes no container uses or is about to: at shutdown, so
   * that a stopped server leaves nothing running. Never throws: what stays
   * is reused by the next server, or removed by its close.
   */
  async removeIdle(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    if (this.limit <= 0) return;
    try {
      const { idle } = await this.survey();
      await Promise.all([this.removeAll(idle), this.removeStopped()]);
    } catch {
      // The engine is unreachable: nothing can be removed now.
    }
  }

  /** Removes the idle sandboxes no container has used for `idleMs`. */
  private async sweep(): Promise<void> {
    try {
      const { sandboxes, idle } = await this.survey();
      const now = Date.now();
      const idleIds = new Set(idle.map((sandbox) => sandbox.Id));
      const liveIds = new Set(sandboxes.map((sandbox) => sandbox.Id));
      // Sandboxes removed by another server, or stopped, are forgotten.
      for (const id of this.lastUsed.keys()) if (!liveIds.has(id)) this.lastUsed.delete(id);
      for (const sandbox of sandboxes) if (!idleIds.has(sandbox.Id) || !this.lastUsed.has(sandbox.Id)) this.lastUsed.set(sandbox.Id, now);
      // Decided and marked in one step, after the survey: a launch that chose one since is in `reserved`.
      const expired = idle.filter((sandbox) => !this.reserved.has(sandbox.Id) && now - (this.lastUsed.get(sandbox.Id) ?? now) >= this.idleMs);
      for (const sandbox of expired) this.removing.add(sandbox.Id);
      await this.removeAll(expired);
      for (const sandbox of expired) {
        this.removing.delete(sandbox.Id);
        this.lastUsed.delete(sandbox.Id);
      }
    } catch {
      // The engine is unreachable: swept the next time.
    }
  }

  /**
   * Removes the sandboxes that stopped (the engine restarted, or someone
   * stopped them), and those created but never started for longer than
   * `make` takes (`neverStartedMs`: their maker, or the engine, went away
   * between the two steps): no run can join either.
   */
  private async removeStopped(): Promise<void> {
    try {
      const ended = await this.call('listing stopped network sandboxes', (abortSignal) =>
        this.docker.listContainers({ all: true, filters: { label: [LABEL_NETWORK_SANDBOX], status: ['exited', 'dead', 'created'] }, abortSignal }),
      );
      // The engine gives `Created` in whole seconds.
      const createdBefore = (Date.now() - this.neverStartedMs) / 1000;
      await this.removeAll(ended.filter((sandbox) => sandbox.State !== 'created' || sandbox.Created < createdBefore));
    } catch {
      // Tried again the next time a sandbox is made, or at close.
    }
  }

  private async removeAll(sandboxes: Docker.ContainerInfo[]): Promise<void> {
    await Promise.all(
      sandboxes.map((sandbox) =>
        this.docker
          .getContainer(sandbox.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
    );
  }

  /**
   * The live sandboxes on the engine (on `network`, when given), and those of
   * them no live container joins and no launch here has chosen.
   */
  private async survey(network?: string): Promise<{ sandboxes: Docker.ContainerInfo[]; idle: Docker.ContainerInfo[] }> {
    const live = await this.call('listing berth containers for a network sandbox', (abortSignal) =>
      this.docker.listContainers({
        all: true,
        filters: { label: [`${LABEL_MANAGED_BY}=${MANAGED_BY}`], status: ['created', 'running', 'restarting', 'paused'] },
        abortSignal,
      }),
    );
    const taken = new Set([...this.reserved, ...this.removing]);
    for (const container of live) {
      const joined = joinedContainer(container.HostConfig?.NetworkMode);
      if (joined) taken.add(joined);
    }
    // One left created but never started holds no namespace to join and must not fill the limit
    // (removeStopped takes it away).
    const sandboxes = live.filter((container) => {
      const on = container.Labels?.[LABEL_NETWORK_SANDBOX];
      return on !== undefined && (network === undefined || on === network) && container.State !== 'created';
    });
    return { sandboxes, idle: sandboxes.filter((sandbox) => sandbox.State === 'running' && !taken.has(sandbox.Id)) };
  }

  private hold(id: string): SandboxReservation {
    this.reserved.add(id);
    this.lastUsed.set(id, Date.now());
    this.sweeper ??= setInterval(() => void this.sweep(), Math.min(this.idleMs, 60_000)).unref();
    return { id, settle: () => this.reserved.delete(id) };
  }

  /** Creates and starts a sandbox on `network`: the one namespace the engine makes, then kept for the runs after. */
  private async make(network: string): Promise<string> {
    this.making.set(network, (this.making.get(network) ?? 0) + 1);
    try {
      const sandbox = await this.call('creating a network sandbox', (abortSignal) =>
        this.docker.createContainer({
          name: `berth-network-sandbox-${randomBytes(4).toString('hex')}`,
          Image: SANDBOX_IMAGE,
          Cmd: SANDBOX_COMMAND,
          Labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_NETWORK_SANDBOX]: network },
          HostConfig: {
            NetworkMode: network,
            CapDrop: ['ALL'],
            SecurityOpt: ['no-new-privileges'],
            RestartPolicy: { Name: 'no' },
            LogConfig: { Type: 'none', Config: {} },
          },
          abortSignal,
        }),
      );
      try {
        await this.call('starting a network sandbox', (abortSignal) => sandbox.start({ abortSignal }));
      } catch (error) {
        await sandbox.remove({ force: true }).catch(() => undefined);
        throw error;
      }
      return sandbox.id;
    } finally {
      this.making.set(network, (this.making.get(network) ?? 1) - 1);
    }
  }

  /** True once the sandbox image is on the engine; false on an architecture the program is not for. */
  private engineCanRun(): Promise<boolean> {
    this.usable ??= this.prepareImage().catch(() => {
      // Tried again after a while: an engine that was down at the first launch comes back.
      setTimeout(() => {
        this.usable = undefined;
      }, RETRY_IMAGE_MS).unref();
      return false;
    });
    return this.usable;
  }

  private async prepareImage(): Promise<boolean> {
    const info = (await this.call('reading the engine architecture', () => this.docker.info())) as { Architecture?: string };
    if (!sandboxArchitecture(info.Architecture)) return false;
    try {
      await this.call(`inspecting image ${SANDBOX_IMAGE}`, () => this.docker.getImage(SANDBOX_IMAGE).inspect());
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      await this.call(`importing image ${SANDBOX_IMAGE}`, (abortSignal) => importSandboxImage(this.docker, abortSignal));
    }
    return true;
  }
}
