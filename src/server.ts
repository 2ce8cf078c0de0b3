/**
 * The composition root: opens the store, builds the API and the long-running
 * parts around it, listens, and shuts everything down in order.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApi } from './api/app';
import type { ApiDeps, ApiLimits, SourceReporter, SyncReport } from './api/deps';
import { Controller, type ControllerOptions } from './controller/controller';
import type { LaunchFence } from './controller/reconciler';
import { Notifier, type NotifierOptions } from './controller/notifier';
import { Scheduler } from './controller/scheduler';
import { ConfigError } from './errors';
import type { Executor } from './executors/executor';
import { createKubernetesExecutor } from './executors/kubernetes/create';
import { Runtimes } from './executors/runtimes';
import { DockerExecutor } from './executors/docker';
import { AdvisoryLockElection } from './leadership/advisory-lock';
import { termFence } from './leadership/fence';
import type { Leadership } from './leadership/leadership';
import type * as LeaseModule from './leadership/lease';
import { LeaderTerms } from './leadership/terms';
import { createLogger, type Logger, type LogLevel } from './log';
import { metrics, registry } from './metrics';
import { DEFAULT_CONTAINMENT, type ContainmentPolicy } from './model/containment';
import { RuntimeName } from './model/types';
import { FolderSource } from './sources/folder';
import { isPostgresUrl } from './store/db';
import type { ReadinessCheck, ServerPart } from './server-part';
import { Store, type Term } from './store/store';

export interface ServerConfig {
  /** 0 picks a free port (tests). @default 8000 */
  port: number;
  /** @default '127.0.0.1' */
  host: string;
  /** A SQLite file path or a `postgres://` URL. @default './data/berth.sqlite' */
  db: string;
  /** @default './apps' */
  appsDir: string;
  /**
   * Make the apps folder when it is missing. Only for the default `./apps`:
   * a mistyped folder that got created empty would prune every file-owned
   * App, so a named folder that is missing is waited for instead.
   * @default false
   */
  createAppsDir?: boolean;
  /** Runs Running at once. @default 4 */
  maxParallel: number;
  /** Runs waiting, streams open: bounds on what clients can make the server hold. @default API_LIMITS */
  limits?: Partial<ApiLimits>;
  /** How long a client may take to send a request; tests shorten them. @default HTTP_TIMEOUTS */
  httpTimeouts?: Partial<HttpTimeouts>;
  /** Finished runs kept per App whose spec sets no historyLimit. @default 100 */
  historyLimit?: number;
  /** Stored output per run, the newest kept. @default 1048576 */
  logLimitBytes?: number;
  /** The runtime of Apps that name none. @default 'docker' */
  runtime: RuntimeName;
  /** Every runtime this server drives. @default [runtime] */
  runtimes?: RuntimeName[];
  /** @default DOCKER_HOST, else the local socket */
  dockerHost?: string;
  /** Network sandboxes per network for Docker runs on none or bridge (src/executors/docker/network-sandboxes.ts). @default maxParallel */
  dockerNetworkSandboxes?: number;
  /** For the kubernetes runtime. @default KUBECONFIG, else in-cluster, else ~/.kube/config */
  kubeconfig?: string;
  /** The Jobs' namespace. @default in cluster the pod's own, else the kubeconfig context's, else 'default' */
  namespace?: string;
  /** How long a pod may fail to pull its image before its run fails. @default 60000 */
  imagePullGraceMs?: number;
  /** Host names the API answers for beyond loopback names, IP addresses and `host` (`.domain` for a domain and below; `*`: any). */
  allowedHosts?: string[];
  /** When set, every endpoint but the probes needs `Authorization: Bearer <token>`; a weak token is refused. */
  token?: string;
  /** Said once at start-up through the logger: settings that work but should change (a token on the command line). */
  warnings?: string[];
  /** Leave finished containers in place for inspection. @default false */
  keepContainers: boolean;
  /** @default 'info' */
  logLevel: LogLevel;
  /** A logger to use instead of one made from `logLevel`. */
  logger?: Logger;
  /** Controller tuning beyond the flags (tests shorten retry delays, narrow adoption). */
  controller?: Partial<Omit<ControllerOptions, 'store' | 'runtimes' | 'maxParallel' | 'keepContainers' | 'logger' | 'historyLimit' | 'logLimitBytes'>>;
  /** The address people reach berth at: webhook notifications link to their run there. */
  publicUrl?: string;
  /** Notifier tuning beyond the flags (tests shorten retry delays and timeouts). */
  notifier?: Partial<Omit<NotifierOptions, 'store' | 'logger' | 'publicUrl'>>;
  /** How long `stop()` lets in-flight requests finish before closing their connections. @default 5000 */
  shutdownGraceMs?: number;
  /**
   * Elect a leader among the replicas sharing this (PostgreSQL) store: only
   * the leader reconciles runs and syncs the apps folder; every replica
   * serves the API. Absent: this server does both, alone.
   */
  leaderElection?: LeaderElectionConfig;
  /** How workloads are contained, and what an App may ask for. @default DEFAULT_CONTAINMENT */
  containment?: ContainmentPolicy;
}

/**
 * How long a connection may hold the server without sending a request. They
 * bound receiving a request only: an answer may stream for as long as it
 * lasts (event streams, followed logs).
 */
export interface HttpTimeouts {
  /** To send the request line and headers. */
  headersMs: number;
  /** To send the whole request, body included (a 1 MiB body at 20 KB/s). */
  requestMs: number;
  /** An idle keep-alive connection waits this long for its next request. */
  keepAliveMs: number;
}

export const HTTP_TIMEOUTS: HttpTimeouts = { headersMs: 20_000, requestMs: 60_000, keepAliveMs: 5_000 };

/** How replicas elect their leader. */
export interface LeaderElectionConfig {
  /** `advisory-lock`: a PostgreSQL advisory lock (outside a cluster); `lease`: a coordination.k8s.io Lease. */
  method: 'advisory-lock' | 'lease';
  /** This replica's identity: unique among the replicas (hostname and pid by default). */
  identity: string;
  /** Lease: how long followers wait after the Lease last changed; advisory lock: how long PostgreSQL keeps a silent leader's session. @default 15000 */
  leaseDurationMs: number;
  /** How long the leader may fail to renew (lease) or to check its lock's connection before it stops leading. @default 10000 */
  renewDeadlineMs: number;
  /** Between tries to take the lock, and between renewals. @default 2000 */
  retryPeriodMs: number;
}

export interface RunningServer {
  /** `http://host:port`, with the port actually bound. */
  url: string;
  port: number;
  store: Store;
  deps: ApiDeps;
  /** Absent with leader election: each term of leadership makes its own. */
  controller?: Controller;
  folder?: FolderSource;
  /** Stops accepting, lets in-flight requests finish, stops the parts, closes the store. Safe to call twice. */
  stop(): Promise<void>;
}

/** Opens the store and serves the API; rejects with a ConfigError naming the problem when it cannot. */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const logger = config.logger ?? createLogger(config.logLevel);
  if (config.leaderElection && !isPostgresUrl(config.db)) {
    throw new ConfigError('leader election needs a shared PostgreSQL store (a postgres:// URL); SQLite allows one replica');
  }
  const store = await Store.open(config.db);
  const shutdown = new AbortController();
  try {
    const executors = buildExecutors(config, logger);
    const { parts, readiness, controller, folder, folderSource, leadership } = config.leaderElection
      ? buildElectedParts({ config, election: config.leaderElection, store, executors, logger })
      : buildSoleParts({ config, store, executors, logger });
    const deps: ApiDeps = {
      store,
      logger,
      token: config.token,
      listenHost: config.host,
      allowedHosts: config.allowedHosts,
      readiness: [storeReadiness(store), ...readiness],
      runtimes: executors,
      metrics: registry,
      appsDir: config.appsDir,
      shutdown: shutdown.signal,
      folder,
      leadership,
      limits: config.limits,
      containment: config.containment,
    };
    // Handlers can outlive their connection (a client that hangs up); the store closes only after they finish.
    const inFlight = new Set<Promise<unknown>>();
    const handle = createApi(deps).callback();
    const timeouts = { ...HTTP_TIMEOUTS, ...config.httpTimeouts };
    const server = http.createServer(
      {
        headersTimeout: timeouts.headersMs,
        requestTimeout: timeouts.requestMs,
        keepAliveTimeout: timeouts.keepAliveMs,
        // Node looks for expired requests this often (30 s by default, which would let a 20 s timeout run to 50 s).
        connectionsCheckingInterval: Math.max(100, Math.min(1000, timeouts.headersMs / 4)),
      },
      (req, res) => {
        const handled = Promise.resolve(handle(req, res));
        inFlight.add(handled);
        void handled.finally(() => inFlight.delete(handled));
      },
    );
    const port = await listen(server, config.port, config.host);
    const running = parts.map((part) => runPart(part, shutdown.signal, logger));
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    logger.info({ url, db: store.dialect, auth: Boolean(config.token), leaderElection: config.leaderElection?.method }, 'berth is serving');
    for (const warning of config.warnings ?? []) logger.warn(warning);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        logger.info('shutting down');
        shutdown.abort();
        await closeServer(server, config.shutdownGraceMs ?? 5000);
        await Promise.allSettled([...inFlight]);
        await Promise.all(running);
        await executors.close();
        await store.close();
        logger.info('stopped');
      })());
    return { url, port, store, deps, controller, folder: folderSource, stop };
  } catch (err) {
    shutdown.abort();
    await store.close().catch(() => undefined);
    throw err;
  }
}

/** The runtimes this server drives (and follows live logs on). */
function buildExecutors(config: ServerConfig, logger: Logger): Runtimes {
  const wanted = new Set(config.runtimes ?? [config.runtime]);
  wanted.add(config.runtime);
  const executors: Executor[] = [];
  const containment = config.containment ?? DEFAULT_CONTAINMENT;
  if (wanted.has(RuntimeName.docker))
    executors.push(new DockerExecutor({ dockerHost: config.dockerHost, containment, networkSandboxes: config.dockerNetworkSandboxes ?? config.maxParallel }));
  if (wanted.has(RuntimeName.kubernetes)) {
    executors.push(
      createKubernetesExecutor({
        kubeconfig: config.kubeconfig,
        namespace: config.namespace,
        imagePullGraceMs: config.imagePullGraceMs,
        containment,
        onWatchError: (err) => logger.debug({ err, runtime: 'kubernetes' }, 'watch interrupted; reconnecting'),
      }),
    );
  }
  return new Runtimes(executors, config.runtime);
}

/** The long-running parts as the server runs them, and what the API reads of them. */
interface ServerParts {
  parts: ServerPart[];
  readiness: ReadinessCheck[];
  folder: SourceReporter;
  controller?: Controller;
  folderSource?: FolderSource;
  leadership?: LeaderTerms;
}

/** Without leader election: this server runs the controller and the folder source for as long as it runs. */
function buildSoleParts(context: { config: ServerConfig; store: Store; executors: Runtimes; logger: Logger }): ServerParts {
  const { parts, controller, folder } = buildLeaderParts(context);
  metrics.leader.set(1);
  return { parts, readiness: parts.flatMap((p) => (p.readiness ? [p.readiness] : [])), folder, folderSource: folder, controller };
}

/**
 * With leader election: one part campaigns, and runs a new controller and
 * folder source (fenced by the term's epoch) for each term this replica
 * leads. `/readyz` asks the current term's parts; a follower is ready.
 */
function buildElectedParts(context: { config: ServerConfig; election: LeaderElectionConfig; store: Store; executors: Runtimes; logger: Logger }): ServerParts {
  const { config, election, store, logger } = context;
  const log = logger.child({ part: 'leadership', identity: election.identity });
  const leadership = buildLeadership(config, election, store, log);
  // The API keeps one folder reporter; each term's folder source is put behind it.
  const relay = new EventEmitter<{ sync: [SyncReport] }>();
  let currentFolder: FolderSource | undefined;
  const folder: SourceReporter = {
    report: () =>
      currentFolder?.report() ?? { kind: 'folder', dir: config.appsDir, ready: false, message: 'this replica follows; the leader syncs the apps folder' },
    on: (event, listener) => relay.on(event, listener),
    off: (event, listener) => relay.off(event, listener),
  };
  const terms = new LeaderTerms({
    leadership,
    records: store.leadership,
    gauge: metrics.leader,
    logger: log,
    makeParts: (record) => {
      const term: Term = { name: record.name, holder: record.holder, epoch: record.epoch };
      const made = buildLeaderParts({ ...context, fence: termFence(store.leadership, term, log) });
      made.folder.on('sync', (report) => relay.emit('sync', report));
      currentFolder = made.folder;
      return made.parts;
    },
  });
  return { parts: [terms.part], readiness: [terms.readiness('controller'), terms.readiness('folder')], folder, leadership: terms };
}

function buildLeadership(config: ServerConfig, election: LeaderElectionConfig, store: Store, logger: Logger): Leadership {
  const common = { identity: election.identity, records: store.leadership, logger };
  if (election.method === 'lease') {
    // Loaded only here: client-node costs a server that elects on PostgreSQL (or drives only Docker) ~75 MB.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { clusterLeaseClient, LeaseElection } = require('./leadership/lease') as typeof LeaseModule;
    const client = clusterLeaseClient(config.kubeconfig, config.namespace);
    return new LeaseElection({ ...common, client, timing: election });
  }
  return new AdvisoryLockElection({ ...common, url: config.db, ...election });
}

/**
 * The long-running parts the leader runs, started after the API listens and
 * stopped before the store closes: the controller, which moves runs toward
 * their desired state, the folder source, which makes the store match the
 * apps folder, the scheduler, which asks for the runs schedules make, and the notifier, which calls webhooks. One-shot: a new term makes new ones.
 */
function buildLeaderParts(context: { config: ServerConfig; store: Store; executors: Runtimes; logger: Logger; fence?: LaunchFence }): {
  parts: ServerPart[];
  controller: Controller;
  folder: FolderSource;
} {
  const { config, store, executors, logger, fence } = context;
  const controller = new Controller({
    ...config.controller,
    fence,
    store,
    runtimes: executors,
    maxParallel: config.maxParallel,
    historyLimit: config.historyLimit,
    logLimitBytes: config.logLimitBytes,
    keepContainers: config.keepContainers,
    logger: logger.child({ part: 'controller' }),
  });
  const folder = new FolderSource({
    dir: config.appsDir,
    store,
    logger: logger.child({ part: 'folder' }),
    admission: { containment: config.containment ?? DEFAULT_CONTAINMENT, defaultRuntime: config.runtime },
  });
  const notifier = new Notifier({ ...config.notifier, store, publicUrl: config.publicUrl, logger: logger.child({ part: 'notifier' }) });
  const scheduler = new Scheduler({ store, logger: logger.child({ part: 'scheduler' }), onMissed: (app, due) => notifier.missed(app, due) });
  let folderProblem: string | undefined;
  const folderReadiness = folder.readinessCheck();
  return {
    controller,
    folder,
    parts: [
      {
        name: 'controller',
        start: (signal) => controller.start(signal),
        readiness: { name: 'controller', check: async () => controller.health() },
      },
      { name: 'scheduler', start: (signal) => scheduler.start(signal) },
      { name: 'notifier', start: (signal) => notifier.start(signal) },
      {
        name: 'folder',
        async start(signal) {
          if (config.createAppsDir) fs.mkdirSync(config.appsDir, { recursive: true });
          // A folder that is not there yet (a git-sync checkout still cloning) is waited for, never treated as empty.
          while (!isDirectory(config.appsDir)) {
            if (!folderProblem) {
              folderProblem = `the apps folder ${config.appsDir} does not exist (waiting for it)`;
              logger.warn(folderProblem);
            }
            if (!(await delay(1000, signal))) return;
          }
          folderProblem = undefined;
          await folder.start(signal);
        },
        readiness: {
          name: 'folder',
          check: async () => (folderProblem ? { ready: false, reason: folderProblem } : folderReadiness.check()),
        },
      },
    ],
  };
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function storeReadiness(store: Store): ReadinessCheck {
  return {
    name: 'store',
    async check() {
      await store.ping();
      return { ready: true };
    },
  };
}

/** A part that fails is logged; the API keeps serving and says so in /readyz when the part has a check. */
async function runPart(part: ServerPart, signal: AbortSignal, logger: Logger): Promise<void> {
  try {
    await part.start(signal);
  } catch (err) {
    logger.error({ err, part: part.name }, `${part.name} stopped with an error`);
  }
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
      reject(new ConfigError(`cannot listen on ${host}:${port}: ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Stops accepting connections and closes idle keep-alive ones at once;
 * requests in flight may finish within `graceMs`, then their connections
 * are closed too.
 */
function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    // Connections turn idle as their last answer ends (event streams end on shutdown): close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearTimeout(force);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}
