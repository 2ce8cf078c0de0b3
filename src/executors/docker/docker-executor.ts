/**
 * Runs berth's workloads as containers on a Docker engine, through dockerode.
 * One container per attempt, named and labelled so that every call can find
 * it again without remembering anything: the engine is the state.
 */

// First: dockerode then loads without its BuildKit and ssh code (see the file).
import './dockerode-extras';
import Docker from 'dockerode';
import type { Readable } from 'node:stream';
import { BerthError, ConfigError, ImagePullError, NotFoundError, RuntimeApiError, RuntimeRefusedError, RuntimeUnavailableError } from '../../errors';
import { BUILT_IN_NETWORKS, DEFAULT_CONTAINMENT, assertLaunchAllowed, dockerNetwork, type ContainmentPolicy } from '../../model/containment';
import { ImagePullPolicy, RuntimeName } from '../../model/types';
import {
  LABEL_APP,
  LABEL_ATTEMPT,
  LABEL_STORE,
  LABEL_MANAGED_BY,
  LABEL_RUN,
  MANAGED_BY,
  type Executor,
  type LaunchRequest,
  type LogOptions,
  type Observation,
  type OwnedWorkload,
  type WorkloadEvent,
} from '../executor';
import { containerCreateOptions } from './container-spec';
import { DockerTimeoutError, daemonMessage, engineAnswer, isUnreachable, statusOf, unavailable } from './docker-errors';
import { defaultDockerHost, parseDockerHost } from './docker-host';
import { watchEngineEvents } from './event-watch';
import { awaitPull } from './image-pull';
import { LogFrameDecoder } from './log-frames';
import { NetworkSandboxes, joinedContainer, joinsSandbox } from './network-sandboxes';
import { observationOf } from './observation';

/** How to reach the engine, and how long to wait for it. */
export interface DockerExecutorOptions {
  /**
   * The engine to drive: `unix:///path`, `tcp://host:port` or a socket path.
   * @default process.env.DOCKER_HOST, else unix:///var/run/docker.sock
   */
  dockerHost?: string;
  /**
   * How long one API call may go unanswered before the engine counts as unavailable.
   * @default 30_000
   */
  requestTimeoutMs?: number;
  /**
   * How long an image pull may take before it fails the run.
   * @default 300_000
   */
  pullTimeoutMs?: number;
  /**
   * First wait before the event watch reconnects; it doubles up to `watchMaxBackoffMs`.
   * @default 500
   */
  watchInitialBackoffMs?: number;
  /** @default 30_000 */
  watchMaxBackoffMs?: number;
  /** Told why the event stream broke or could not open (the watch reconnects by itself). */
  onWatchError?: (error: Error) => void;
  /**
   * How containers are contained, and what an App may ask for; checked again at each launch.
   * @default DEFAULT_CONTAINMENT
   */
  containment?: ContainmentPolicy;
  /**
   * How many network sandboxes of each network may exist on the engine for
   * runs on `none` or `bridge` to join (network-sandboxes.ts); 0: every run makes its own namespace.
   * @default 4
   */
  networkSandboxes?: number;
  /**
   * How long a network sandbox may go unused before it is removed.
   * @default 300_000
   */
  networkSandboxIdleMs?: number;
}

/** How many containers `listOwned` inspects at once: enough to be quick, few enough not to flood the engine. */
const INSPECT_CONCURRENCY = 8;

/** The Docker implementation of berth's Executor. */
export class DockerExecutor implements Executor {
  readonly runtime = RuntimeName.docker;
  /** The engine address, as configured; named in every RuntimeUnavailableError. */
  readonly dockerHost: string;
  private readonly docker: Docker;
  private readonly requestTimeoutMs: number;
  private readonly pullTimeoutMs: number;
  private readonly watchInitialBackoffMs: number;
  private readonly watchMaxBackoffMs: number;
  private readonly onWatchError?: (error: Error) => void;
  private readonly containment: ContainmentPolicy;
  private readonly sandboxes: NetworkSandboxes;

  /** @throws ConfigError when `dockerHost` is not a docker host address or a timeout is not positive. */
  constructor(options: DockerExecutorOptions = {}) {
    this.dockerHost = options.dockerHost ?? defaultDockerHost();
    try {
      this.docker = new Docker(parseDockerHost(this.dockerHost));
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
    this.requestTimeoutMs = positive('requestTimeoutMs', options.requestTimeoutMs ?? 30_000);
    this.pullTimeoutMs = positive('pullTimeoutMs', options.pullTimeoutMs ?? 300_000);
    this.watchInitialBackoffMs = positive('watchInitialBackoffMs', options.watchInitialBackoffMs ?? 500);
    this.watchMaxBackoffMs = positive('watchMaxBackoffMs', options.watchMaxBackoffMs ?? 30_000);
    this.onWatchError = options.onWatchError;
    this.containment = options.containment ?? DEFAULT_CONTAINMENT;
    const sandboxes = options.networkSandboxes ?? 4;
    if (!Number.isInteger(sandboxes) || sandboxes < 0) throw new ConfigError(`networkSandboxes: must be a whole number, 0 or more, got ${sandboxes}`);
    const idleMs = positive('networkSandboxIdleMs', options.networkSandboxIdleMs ?? 300_000);
    this.sandboxes = new NetworkSandboxes(this.docker, (doing, request) => this.call(doing, request), sandboxes, idleMs);
  }

  async ping(): Promise<void> {
    try {
      // dockerode honours abortSignal on ping; its types do not list the option.
      const ping = this.docker.ping.bind(this.docker) as (options: { abortSignal: AbortSignal }) => Promise<unknown>;
      await this.call('ping', (abortSignal) => ping({ abortSignal }));
    } catch (error) {
      if (error instanceof RuntimeUnavailableError) throw error;
      // An engine that answers ping with an error is not one to run work on.
      throw new RuntimeUnavailableError(`docker engine at ${this.dockerHost} answered ping with an error: ${daemonMessage(error)}`);
    }
  }

  /**
   * Pulls the image as `imagePullPolicy` says, then creates and starts the
   * container. A container of that name that exists already is left as it
   * is — only started, if an earlier launch created it and stopped there.
   * A workload that cannot start (its command does not exist, say) is not an
   * error here: the engine records why, and `observe` reports it as an exit.
   *
   * @throws ImagePullError when the image cannot be had.
   * @throws RuntimeRefusedError when the containment policy refuses the App (its image's registry, a
   *   capability, since the server's flags changed), its named network does not exist, or the engine
   *   refuses the container (a limit it does not allow, say).
   * @throws RuntimeUnavailableError when the engine cannot be reached.
   * @throws RuntimeApiError when the engine fails the request on its side.
   */
  async launch(request: LaunchRequest): Promise<void> {
    const { image, imagePullPolicy } = request.template;
    // Before any pull: an image from a registry the server does not allow is never fetched.
    assertLaunchAllowed(request.name, request.template, this.containment, RuntimeName.docker);
    await this.ensureNetwork(request);
    if (imagePullPolicy === ImagePullPolicy.Always && !(await this.inspect(request.name))) await this.pull(image, request.onPullingImage);
    const network = dockerNetwork(request.template, this.containment);
    const sandbox = joinsSandbox(network, request.template.capabilities?.add) ? await this.sandboxes.reserve(network) : undefined;
    let outcome: Awaited<ReturnType<DockerExecutor['create']>>;
    try {
      // Create first and ask questions after: the common case (a new run, an image already here)
      // then costs the engine one call instead of three inspects before it.
      outcome = await this.create(request, sandbox?.id);
      if (outcome === 'no-image') {
        await this.ensureImage(image, imagePullPolicy, request.onPullingImage);
        outcome = await this.create(request, sandbox?.id);
        if (outcome === 'no-image')
          throw new ImagePullError(image, `image "${image}" is still not present on the docker engine at ${this.dockerHost} after pulling it`);
      }
    } finally {
      // From here the engine shows the sandbox as taken: the container names it.
      sandbox?.settle();
    }
    if (outcome === 'exists') {
      const existing = await this.inspect(request.name);
      // Started before (running, exited, or failed to start): a repeated launch leaves it as it is.
      // One whose sandbox went away before it started is started again below, and so made again.
      if (existing && (existing.State.Status !== 'created' || (existing.State.Error && !sandboxGone(existing, existing.State.Error)))) return;
    }
    if ((await this.start(request.name)) === 'sandbox-gone') {
      // The sandbox was stopped or removed under it: the container is made again with a namespace of its own.
      await this.remove(request.name);
      await this.create(request);
      await this.start(request.name);
    }
  }

  /** Creates the run's container: `exists` when one of that name is there already, `no-image` when the image is absent. */
  private async create(request: LaunchRequest, sandbox?: string): Promise<'created' | 'exists' | 'no-image'> {
    const doing = `creating container ${request.name}`;
    let options: Docker.ContainerCreateOptions;
    try {
      options = containerCreateOptions(request, this.containment, sandbox);
    } catch (error) {
      // Validation at the edge keeps such quantities out; one that slips through is refused, never sent.
      throw new RuntimeRefusedError(`cannot create container ${request.name}: ${(error as Error).message}`);
    }
    try {
      await this.call(doing, (abortSignal) => this.docker.createContainer({ ...options, abortSignal }));
      return 'created';
    } catch (error) {
      // 409: a container of that name exists (an earlier launch, or a concurrent one).
      if (statusOf(error) === 409) return 'exists';
      // 404 on create: "No such image".
      if (statusOf(error) === 404) return 'no-image';
      throw this.rethrown(doing, error);
    }
  }

  async observe(name: string): Promise<Observation> {
    const info = await this.inspect(name);
    return info ? observationOf(info) : { state: 'absent' };
  }

  async stop(name: string, graceSeconds: number): Promise<void> {
    const grace = Math.max(0, Math.ceil(graceSeconds));
    try {
      // The engine answers only once the container is gone, up to the grace period later.
      await this.call(
        `stopping container ${name}`,
        (abortSignal) => this.docker.getContainer(name).stop({ t: grace, abortSignal }),
        this.requestTimeoutMs + grace * 1000,
      );
    } catch (error) {
      // 304: not running; 404: absent; 409: being removed. Each already is what stop asks for.
      if ([304, 404, 409].includes(statusOf(error) ?? 0)) return;
      throw this.rethrown(`stopping container ${name}`, error);
    }
  }

  /**
   * The container's output, streamed as the engine sends it: never held
   * whole, so a container that printed gigabytes costs berth no more than
   * what its reader keeps. The engine answering at all has the usual
   * deadline; how long the output then takes to arrive is the reader's to bound.
   *
   * @throws NotFoundError when there is no container of that name.
   */
  async logs(name: string, options: LogOptions = {}): Promise<Readable> {
    const doing = `reading the logs of container ${name}`;
    const query = { stdout: true, stderr: true, follow: options.follow ?? false, tail: engineTail(options) };
    let source: Readable;
    try {
      source = await this.call(doing, (abortSignal) => this.openLogs(name, query, abortSignal));
    } catch (error) {
      if (statusOf(error) === 404) throw new NotFoundError('container', name);
      throw this.rethrown(doing, error);
    }
    const text = new LogFrameDecoder();
    text.setEncoding('utf8');
    // A connection that breaks mid-stream reaches the reader as berth's error, like every other failure.
    source.on('error', (error) =>
      text.destroy(isUnreachable(error) ? unavailable(this.dockerHost, doing, error) : new RuntimeApiError(`${doing} broke off: ${daemonMessage(error)}`)),
    );
    // Destroying the text stream (a client went away, a reader's deadline) must close the engine connection too.
    text.on('close', () => source.destroy());
    source.pipe(text);
    return text;
  }

  /**
   * `GET /containers/{name}/logs` as a stream, followed or not. dockerode's
   * `logs()` answers a finished log as one Buffer, the whole of it in memory;
   * its framing is kept, for LogFrameDecoder (whose backpressure, unlike
   * `modem.demuxStream`'s, keeps a slow reader from piling output up in berth).
   */
  private openLogs(name: string, query: Record<string, string | number | boolean>, abortSignal: AbortSignal): Promise<Readable> {
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          path: `/containers/${name}/logs?`,
          method: 'GET',
          isStream: true,
          abortSignal,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          options: query,
        },
        (error, stream) => (error ? reject(error) : resolve(stream as Readable)),
      );
    });
  }

  async remove(name: string): Promise<void> {
    try {
      await this.call(`removing container ${name}`, (abortSignal) => this.docker.getContainer(name).remove({ force: true, v: true, abortSignal }));
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return;
      if (status === 409 && /already in progress/i.test(daemonMessage(error))) return;
      throw this.rethrown(`removing container ${name}`, error);
    }
  }

  async listOwned(): Promise<OwnedWorkload[]> {
    const summaries = await this.call('listing berth containers', (abortSignal) =>
      this.docker.listContainers({ all: true, filters: { label: [`${LABEL_MANAGED_BY}=${MANAGED_BY}`] }, abortSignal }),
    ).catch((error: unknown) => {
      throw this.rethrown('listing berth containers', error);
    });
    const owned: OwnedWorkload[] = [];
    const queue = summaries.filter((summary) => summary.Labels?.[LABEL_RUN]);
    // The list lacks exit codes, OOM kills and start times, so each container is inspected.
    const inspectNext = async (): Promise<void> => {
      for (let summary = queue.shift(); summary; summary = queue.shift()) {
        const info = await this.inspect(summary.Id);
        if (!info) continue; // removed between the list and the inspect
        const labels = info.Config.Labels ?? summary.Labels;
        const attempt = Number.parseInt(labels[LABEL_ATTEMPT] ?? '', 10);
        owned.push({
          name: info.Name.replace(/^\//, ''),
          runUid: labels[LABEL_RUN],
          ...(labels[LABEL_STORE] ? { storeId: labels[LABEL_STORE] } : {}),
          appName: labels[LABEL_APP] ?? '',
          attempt: Number.isNaN(attempt) ? 0 : attempt,
          observation: observationOf(info),
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(INSPECT_CONCURRENCY, queue.length) }, inspectNext));
    return owned.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Removes the network sandboxes no container uses: the ones in use go with a later close. */
  async close(): Promise<void> {
    await this.sandboxes.removeIdle();
  }

  /** Resolves once `signal` aborts; an engine that cannot be reached is retried with backoff and told to `onWatchError`. */
  watch(onEvent: (event: WorkloadEvent) => void, signal: AbortSignal): Promise<void> {
    return watchEngineEvents(
      this.docker,
      onEvent,
      signal,
      { initialBackoffMs: this.watchInitialBackoffMs, maxBackoffMs: this.watchMaxBackoffMs, onError: this.onWatchError },
      (error) => (isUnreachable(error) ? unavailable(this.dockerHost, 'watching events', error) : engineAnswer('watching events', error)),
    );
  }

  /** Starts the container; `sandbox-gone` when the network sandbox it was made to join is no longer running. */
  private async start(name: string): Promise<'started' | 'sandbox-gone'> {
    try {
      await this.call(`starting container ${name}`, (abortSignal) => this.docker.getContainer(name).start({ abortSignal }));
      return 'started';
    } catch (error) {
      if (error instanceof RuntimeUnavailableError) throw error;
      if (statusOf(error) === 304) return 'started'; // already started
      const after = await this.inspect(name);
      if (after && sandboxGone(after, daemonMessage(error))) return 'sandbox-gone';
      if (after?.State.Error) return 'started'; // the workload's own failure, recorded on the container
      // Removed between create and start (a cancel, a cleanup): the next launch creates it again.
      if (!after) throw new RuntimeApiError(`container ${name} was removed before it could be started`);
      throw this.rethrown(`starting container ${name}`, error);
    }
  }

  /**
   * A named network must exist: the engine would create the container and
   * only refuse to start it. The built-in ones always exist and cost no call.
   */
  private async ensureNetwork(request: LaunchRequest): Promise<void> {
    const network = dockerNetwork(request.template, this.containment);
    if (BUILT_IN_NETWORKS.includes(network)) return;
    const doing = `inspecting network ${network}`;
    try {
      // dockerode does not abort network inspects; `call` still stops waiting at the deadline.
      await this.call(doing, () => this.docker.getNetwork(network).inspect());
    } catch (error) {
      if (statusOf(error) !== 404) throw this.rethrown(doing, error);
      const whose = request.template.network === undefined || request.template.network === 'default' ? "the server's --default-network" : 'spec.network';
      throw new RuntimeRefusedError(
        `cannot launch ${request.name}: network "${network}" (${whose}) does not exist on the docker engine at ${this.dockerHost}; create it (docker network create ${network}) or use none or default`,
      );
    }
  }

  private async ensureImage(image: string, policy: ImagePullPolicy, onPulling?: LaunchRequest['onPullingImage']): Promise<void> {
    if (policy === ImagePullPolicy.Always) return this.pull(image, onPulling);
    if (await this.imagePresent(image)) return;
    if (policy === ImagePullPolicy.Never) {
      throw new ImagePullError(image, `image "${image}" is not present on the docker engine at ${this.dockerHost}, and imagePullPolicy is Never`);
    }
    return this.pull(image, onPulling);
  }

  private async imagePresent(image: string): Promise<boolean> {
    try {
      // dockerode does not abort image inspects; `call` still stops waiting at the deadline.
      await this.call(`inspecting image ${image}`, () => this.docker.getImage(image).inspect());
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw this.rethrown(`inspecting image ${image}`, error);
    }
  }

  /** Pulls `image`, telling `onPulling` first: a pull can take minutes, and the run says why it waits. */
  private async pull(image: string, onPulling?: LaunchRequest['onPullingImage']): Promise<void> {
    await onPulling?.(image);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.pullTimeoutMs);
    try {
      await awaitPull((await this.docker.pull(image, { abortSignal: controller.signal })) as Readable);
    } catch (error) {
      if (controller.signal.aborted) {
        throw new ImagePullError(image, `pulling image "${image}" did not finish within ${this.pullTimeoutMs} ms`);
      }
      if (isUnreachable(error)) throw unavailable(this.dockerHost, `pulling image ${image}`, error);
      throw new ImagePullError(image, `pulling image "${image}" failed: ${daemonMessage(error)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The container's inspect data, or undefined when there is none of that name. */
  private async inspect(name: string): Promise<Docker.ContainerInspectInfo | undefined> {
    try {
      return await this.call(`inspecting container ${name}`, (abortSignal) => this.docker.getContainer(name).inspect({ abortSignal }));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw this.rethrown(`inspecting container ${name}`, error);
    }
  }

  /**
   * Makes one engine call with a deadline. Unreachable engines and missed
   * deadlines become RuntimeUnavailableError; engine answers are rethrown as
   * they are, for the caller to read their status and then pass to `rethrown`.
   */
  private async call<T>(doing: string, request: (abortSignal: AbortSignal) => Promise<T>, timeoutMs = this.requestTimeoutMs): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // Racing the deadline too, for the few dockerode calls that ignore abortSignal.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort(new DockerTimeoutError(doing, timeoutMs));
        reject(controller.signal.reason);
      }, timeoutMs);
    });
    try {
      return await Promise.race([request(controller.signal), deadline]);
    } catch (error) {
      if (controller.signal.aborted) throw unavailable(this.dockerHost, doing, controller.signal.reason);
      if (isUnreachable(error)) throw unavailable(this.dockerHost, doing, error);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Errors berth already named pass through; an engine answer becomes berth's, saying what was being done. */
  private rethrown(doing: string, error: unknown): BerthError {
    if (error instanceof BerthError) return error;
    return engineAnswer(doing, error);
  }
}

/**
 * The engine's `tail`: the lines asked for, else, when the reader keeps only
 * the last `limitBytes`, that many log entries. An entry (a line, or a 16 KiB
 * piece of a longer one) holds at least one byte, so those entries hold at
 * least the bytes kept, and the engine decodes (and sends) no more of a long
 * log than that: 2 MiB, not 200 MB, of a container that printed `yes`.
 */
function engineTail(options: LogOptions): number | 'all' {
  const tails = [options.tail, options.limitBytes].filter((n): n is number => n !== undefined);
  return tails.length > 0 ? Math.min(...tails) : 'all';
}

/** Whether `message` (a start's error) says the network sandbox `info`'s container joins is gone: the engine names it. */
function sandboxGone(info: Docker.ContainerInspectInfo, message: string): boolean {
  const sandbox = joinedContainer(info.HostConfig.NetworkMode);
  return sandbox !== undefined && message.includes(sandbox);
}

function positive(option: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`${option}: must be a positive number of milliseconds, got ${value}`);
  return value;
}
