import fs from 'node:fs';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { weakTokenReason } from '../api/auth';
import { API_LIMITS } from '../api/deps';
import { LOG_LEVELS, type LogLevel } from '../log';
import { parseCapabilityList } from '../model/capabilities';
import { DEFAULT_CONTAINMENT, parseDefaultNetwork, type ContainmentPolicy } from '../model/containment';
import { parseRegistryList } from '../model/image-registry';
import { parseCpuNanos, parseMemoryBytes } from '../model/quantity';
import { RuntimeName } from '../model/types';
import type { LeaderElectionConfig, ServerConfig } from '../server';
import { isPostgresUrl } from '../store/db';

/** A configuration berth refuses to start with; the CLI prints the message and exits 2. */
export class UsageError extends Error {}

/** `berth serve`'s options as commander hands them over. */
interface ServeFlags {
  port: number;
  host: string;
  db: string;
  appsDir: string;
  maxParallel: number;
  maxPending: number;
  maxPendingPerApp: number;
  maxEventStreams: number;
  maxLogFollowers: number;
  historyLimit: number;
  logLimit: number;
  runtime: RuntimeName;
  runtimes?: RuntimeName[];
  dockerHost?: string;
  dockerNetworkSandboxes?: number;
  kubeconfig?: string;
  namespace?: string;
  imagePullGrace: number;
  token?: string;
  tokenFile?: string;
  allowedHosts?: string[];
  insecureNoAuth: boolean;
  keepContainers: boolean;
  logLevel: LogLevel;
  publicUrl?: string;
  leaderElect: boolean;
  leaderElectLease: boolean;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
  replicaId?: string;
  allowedCapabilities: string[];
  allowedRegistries: string[];
  pidsLimit: number;
  defaultMemory: string | null;
  defaultCpu: string | null;
  defaultNetwork: string;
  logMaxSize: number;
  logMaxFile: number;
  allowPrivilegeEscalation: boolean;
}

/** Adds `serve`'s flags, each with its `BERTH_*` environment twin, to `command`. */
export function addServeOptions(command: Command): Command {
  command
    .addOption(option('--port <port>', 'port to listen on', 'BERTH_PORT').default(8000).argParser(integer(1, 65535)))
    .addOption(option('--host <host>', 'address to listen on', 'BERTH_HOST').default('127.0.0.1').argParser(nonEmpty))
    .addOption(option('--db <location>', 'SQLite file path, or a postgres:// URL', 'BERTH_DB').default('./data/berth.sqlite').argParser(nonEmpty))
    .addOption(option('--apps-dir <dir>', 'folder of App and Run files to sync', 'BERTH_APPS_DIR').default('./apps').argParser(nonEmpty))
    .addOption(option('--max-parallel <n>', 'runs running at once; the rest wait Pending', 'BERTH_MAX_PARALLEL').default(4).argParser(integer(1, 1000)))
    .addOption(
      option('--max-pending <n>', 'runs that may wait Pending in all; beyond, POST …/run/ answers 429', 'BERTH_MAX_PENDING')
        .default(API_LIMITS.pending.total)
        .argParser(integer(1, 100_000)),
    )
    .addOption(
      option('--max-pending-per-app <n>', 'runs of one App that may wait Pending; beyond, POST …/run/ answers 429', 'BERTH_MAX_PENDING_PER_APP')
        .default(API_LIMITS.pending.perApp)
        .argParser(integer(1, 100_000)),
    )
    .addOption(
      option('--max-event-streams <n>', 'GET /events/ streams open at once; beyond, 503', 'BERTH_MAX_EVENT_STREAMS')
        .default(API_LIMITS.eventStreams)
        .argParser(integer(1, 100_000)),
    )
    .addOption(
      option('--max-log-followers <n>', 'GET …/logs/?follow=1 streams open at once; beyond, 503', 'BERTH_MAX_LOG_FOLLOWERS')
        .default(API_LIMITS.logFollowers)
        .argParser(integer(1, 100_000)),
    )
    .addOption(
      option('--history-limit <n>', 'finished runs kept per App whose spec sets no historyLimit', 'BERTH_HISTORY_LIMIT')
        .default(100)
        .argParser(integer(0, 1_000_000)),
    )
    .addOption(
      option('--log-limit <size>', 'stored output per run, the newest kept: bytes or a quantity such as 1Mi', 'BERTH_LOG_LIMIT')
        .default(1024 * 1024, '1Mi')
        .argParser(byteSize(1024, 64 * 1024 * 1024)),
    )
    .addOption(option('--runtime <name>', 'runtime of Apps that name none', 'BERTH_RUNTIME').default(RuntimeName.docker).choices(Object.values(RuntimeName)))
    .addOption(
      option('--runtimes <list>', 'comma-separated runtimes this server drives, for Apps that name one (default: --runtime alone)', 'BERTH_RUNTIMES').argParser(
        runtimeList,
      ),
    )
    .addOption(
      option('--docker-host <address>', 'Docker engine: unix:///path or tcp://host:port (default: DOCKER_HOST, else the local socket)', 'BERTH_DOCKER_HOST'),
    )
    .addOption(
      option(
        '--docker-network-sandboxes <n>',
        'network namespaces kept ready, per network, for Docker runs on none or bridge to join; 0: each run makes its own (default: --max-parallel)',
        'BERTH_DOCKER_NETWORK_SANDBOXES',
      ).argParser(integer(0, 1000)),
    )
    .addOption(
      option(
        '--kubeconfig <file>',
        'kubeconfig for the kubernetes runtime (default: KUBECONFIG, else in-cluster, else ~/.kube/config)',
        'BERTH_KUBECONFIG',
      ).argParser(nonEmpty),
    )
    .addOption(
      option(
        '--namespace <name>',
        "namespace of the Jobs (default: in cluster the pod's own, else the kubeconfig context's, else default)",
        'BERTH_NAMESPACE',
      ).argParser(dnsLabel),
    )
    .addOption(
      option('--image-pull-grace <seconds>', 'how long a kubernetes pod may fail to pull its image before its run fails', 'BERTH_IMAGE_PULL_GRACE')
        .default(60)
        .argParser(integer(0, 86_400)),
    )
    .addOption(
      option(
        '--token <token>',
        'require "Authorization: Bearer <token>" on every endpoint but the probes (prefer BERTH_TOKEN or --token-file: a flag shows in ps)',
        'BERTH_TOKEN',
      ).argParser(nonEmpty),
    )
    .addOption(option('--token-file <file>', 'read the bearer token from this file (its first line)', 'BERTH_TOKEN_FILE').argParser(nonEmpty))
    .addOption(
      option(
        '--allowed-hosts <list>',
        'more Host names to answer for, comma-separated (.example.com for a domain and below; * for any)',
        'BERTH_ALLOWED_HOSTS',
      ).argParser(hostList),
    )
    .addOption(option('--insecure-no-auth', 'allow a non-loopback --host without --token', 'BERTH_INSECURE_NO_AUTH').default(false))
    .addOption(
      option('--public-url <url>', 'the address people reach berth at: webhook notifications link to their run there', 'BERTH_PUBLIC_URL').argParser(httpUrl),
    )
    .addOption(option('--keep-containers', 'leave finished containers in place for inspection', 'BERTH_KEEP_CONTAINERS').default(false))
    .addOption(option('--log-level <level>', 'log level', 'BERTH_LOG_LEVEL').default('info').choices(LOG_LEVELS))
    .addOption(
      option(
        '--leader-elect',
        'elect a leader among replicas sharing a PostgreSQL store: only it reconciles runs and syncs the folder',
        'BERTH_LEADER_ELECT',
      ).default(false),
    )
    .addOption(
      option(
        '--leader-elect-lease',
        'elect on a coordination.k8s.io Lease even outside a cluster (in a cluster it is the default)',
        'BERTH_LEADER_ELECT_LEASE',
      ).default(false),
    )
    .addOption(
      option(
        '--lease-duration <duration>',
        'how long followers wait after the Lease last changed before taking it (15s, 1500ms, or seconds)',
        'BERTH_LEASE_DURATION',
      )
        .default(15_000, '15s')
        .argParser(duration),
    )
    .addOption(
      option(
        '--renew-deadline <duration>',
        'how long the leader may fail to renew its Lease, or to reach its lock, before it stops leading',
        'BERTH_RENEW_DEADLINE',
      )
        .default(10_000, '10s')
        .argParser(duration),
    )
    .addOption(
      option('--retry-period <duration>', 'between tries to take the lock, and between renewals', 'BERTH_RETRY_PERIOD').default(2000, '2s').argParser(duration),
    )
    .addOption(
      option(
        '--replica-id <id>',
        "this replica's name in leader election (default: the hostname); each process adds a random suffix",
        'BERTH_REPLICA_ID',
      ).argParser(nonEmpty),
    );
  return addContainmentOptions(command);
}

/** The flags of the containment policy (src/model/containment.ts); each default is DEFAULT_CONTAINMENT's. */
function addContainmentOptions(command: Command): Command {
  const defaults = DEFAULT_CONTAINMENT;
  return command
    .addOption(
      option('--allowed-capabilities <list>', 'capabilities an App may add back: names, "default" for the baseline set, "none"', 'BERTH_ALLOWED_CAPABILITIES')
        .default([...defaults.allowedCapabilities], 'default')
        .argParser(parsed(parseCapabilityList)),
    )
    .addOption(
      option('--allowed-registries <list>', 'registries (or registry/path prefixes) images may come from (default: any)', 'BERTH_ALLOWED_REGISTRIES')
        .default([...defaults.allowedRegistries], 'any')
        .argParser(parsed(parseRegistryList)),
    )
    .addOption(
      option('--pids-limit <n>', 'processes and threads one container may have; 0: no limit', 'BERTH_PIDS_LIMIT')
        .default(defaults.pidsLimit)
        .argParser(integer(0, 4_194_304)),
    )
    .addOption(
      option('--default-memory <quantity>', 'memory limit of Apps that set none, such as 512Mi; "none": no limit', 'BERTH_DEFAULT_MEMORY')
        .default(defaults.defaultResources.memory, defaults.defaultResources.memory)
        .argParser(orNone(defaultMemory)),
    )
    .addOption(
      option('--default-cpu <quantity>', 'CPU limit of Apps that set none, such as 0.5 or 500m; "none": no limit', 'BERTH_DEFAULT_CPU')
        .default(defaults.defaultResources.cpu, defaults.defaultResources.cpu)
        .argParser(orNone(defaultCpu)),
    )
    .addOption(
      option(
        '--default-network <network>',
        "Docker network of Apps whose spec.network is default or absent: bridge, none, or a network's name",
        'BERTH_DEFAULT_NETWORK',
      )
        .default(defaults.defaultNetwork)
        .argParser(parsed(parseDefaultNetwork)),
    )
    .addOption(
      option('--log-max-size <size>', 'Docker log file size before it rotates: bytes or a quantity such as 10Mi', 'BERTH_LOG_MAX_SIZE')
        .default(defaults.logMaxSizeBytes, '10Mi')
        .argParser(byteSize(64 * 1024, 1024 * 1024 * 1024)),
    )
    .addOption(
      option('--log-max-file <n>', 'Docker log files kept per container', 'BERTH_LOG_MAX_FILE').default(defaults.logMaxFiles).argParser(integer(1, 100)),
    )
    .addOption(
      option(
        '--allow-privilege-escalation',
        'let container processes gain privileges (setuid binaries): no no-new-privileges',
        'BERTH_ALLOW_PRIVILEGE_ESCALATION',
      ).default(defaults.allowPrivilegeEscalation),
    );
}

/**
 * The server configuration from parsed flags, refusing unsafe combinations:
 * listening beyond loopback without a token exposes container execution to
 * the network, so it needs `--insecure-no-auth` said out loud.
 *
 * @throws UsageError naming the flag.
 */
export function serveConfig(command: Command): ServerConfig {
  const flags = command.opts<ServeFlags>();
  // commander sets a boolean flag whenever its environment twin exists; BERTH_KEEP_CONTAINERS=false should mean false.
  const booleans = {
    insecureNoAuth: 'BERTH_INSECURE_NO_AUTH',
    keepContainers: 'BERTH_KEEP_CONTAINERS',
    leaderElect: 'BERTH_LEADER_ELECT',
    leaderElectLease: 'BERTH_LEADER_ELECT_LEASE',
    allowPrivilegeEscalation: 'BERTH_ALLOW_PRIVILEGE_ESCALATION',
  } as const;
  for (const [name, env] of Object.entries(booleans) as [keyof typeof booleans, string][]) {
    if (command.getOptionValueSource(name) === 'env') flags[name] = envTrue(env);
  }
  const runtimes = flags.runtimes ?? [flags.runtime];
  if (!runtimes.includes(flags.runtime)) {
    throw new UsageError(`--runtimes ${runtimes.join(',')}: must include the default --runtime ${flags.runtime}`);
  }
  if (flags.maxPendingPerApp > flags.maxPending) {
    throw new UsageError(`--max-pending-per-app (${flags.maxPendingPerApp}) must not be more than --max-pending (${flags.maxPending})`);
  }
  const { token, warnings } = apiToken(command, flags);
  if (!token && !flags.insecureNoAuth && !isLoopback(flags.host)) {
    throw new UsageError(
      `refusing to listen on ${flags.host} without --token: anyone who can reach it could run containers; ` +
        'set BERTH_TOKEN or --token-file (or --token), or pass --insecure-no-auth to accept that',
    );
  }
  return {
    port: flags.port,
    host: flags.host,
    db: flags.db,
    appsDir: flags.appsDir,
    createAppsDir: command.getOptionValueSource('appsDir') === 'default',
    maxParallel: flags.maxParallel,
    limits: {
      pending: { total: flags.maxPending, perApp: flags.maxPendingPerApp },
      eventStreams: flags.maxEventStreams,
      logFollowers: flags.maxLogFollowers,
    },
    historyLimit: flags.historyLimit,
    logLimitBytes: flags.logLimit,
    runtime: flags.runtime,
    runtimes,
    dockerHost: flags.dockerHost,
    dockerNetworkSandboxes: flags.dockerNetworkSandboxes,
    kubeconfig: flags.kubeconfig,
    namespace: flags.namespace,
    imagePullGraceMs: flags.imagePullGrace * 1000,
    token,
    warnings,
    allowedHosts: flags.allowedHosts,
    keepContainers: flags.keepContainers,
    logLevel: flags.logLevel,
    publicUrl: flags.publicUrl,
    leaderElection: leaderElection(flags),
    containment: containment(flags),
  };
}

/**
 * The containment policy from its flags, refusing a log limit the log driver
 * cannot hold: berth reads a run's output back from the engine's log files.
 */
function containment(flags: ServeFlags): ContainmentPolicy {
  const kept = flags.logMaxSize * flags.logMaxFile;
  if (flags.logLimit > kept) {
    throw new UsageError(
      `--log-limit (${flags.logLimit} bytes) is more than Docker keeps of a container's output (--log-max-size × --log-max-file = ${kept} bytes); raise --log-max-size`,
    );
  }
  return {
    allowedCapabilities: flags.allowedCapabilities,
    allowedRegistries: flags.allowedRegistries,
    pidsLimit: flags.pidsLimit,
    defaultResources: {
      ...(flags.defaultMemory !== null ? { memory: flags.defaultMemory } : {}),
      ...(flags.defaultCpu !== null ? { cpu: flags.defaultCpu } : {}),
    },
    defaultNetwork: flags.defaultNetwork,
    logMaxSizeBytes: flags.logMaxSize,
    logMaxFiles: flags.logMaxFile,
    allowPrivilegeEscalation: flags.allowPrivilegeEscalation,
  };
}

/**
 * The API token, from BERTH_TOKEN, --token-file (BERTH_TOKEN_FILE) or --token,
 * refused when weak. A token on the command line still works, with a warning:
 * every user of the machine can read it in `ps` or /proc.
 */
function apiToken(command: Command, flags: ServeFlags): { token?: string; warnings: string[] } {
  const warnings: string[] = [];
  if (flags.token !== undefined && flags.tokenFile !== undefined) {
    throw new UsageError('--token and --token-file (or BERTH_TOKEN and BERTH_TOKEN_FILE) both give the token: keep one');
  }
  let token = flags.token;
  let from = command.getOptionValueSource('token') === 'env' ? 'BERTH_TOKEN' : '--token';
  if (flags.tokenFile !== undefined) {
    from = `the token in ${flags.tokenFile}`;
    token = readTokenFile(flags.tokenFile);
  } else if (command.getOptionValueSource('token') === 'cli') {
    warnings.push('the token given with --token is visible to other users of this machine (ps, /proc); prefer BERTH_TOKEN or --token-file');
  }
  if (token === undefined) return { warnings };
  const weak = weakTokenReason(token);
  if (weak) throw new UsageError(`${from} ${weak}`);
  return { token, warnings };
}

/** The first line of a token file (a Kubernetes Secret mounted as a file, `openssl rand -hex 32 > token`). */
function readTokenFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--token-file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const token = text.split(/\r?\n/)[0].trim();
  if (token === '') throw new UsageError(`--token-file ${file}: the file is empty`);
  return token;
}

/**
 * Leader election from its flags: refused on SQLite, whose file one replica
 * owns; on a Lease in a cluster (or with --leader-elect-lease), else on a
 * PostgreSQL advisory lock.
 */
function leaderElection(flags: ServeFlags): LeaderElectionConfig | undefined {
  if (!flags.leaderElect) return undefined;
  if (!isPostgresUrl(flags.db)) throw new UsageError('--leader-elect needs a shared PostgreSQL store (--db postgres://…); SQLite allows one replica');
  const { leaseDuration, renewDeadline, retryPeriod } = flags;
  if (leaseDuration <= renewDeadline) {
    throw new UsageError(`--lease-duration (${leaseDuration} ms) must be longer than --renew-deadline (${renewDeadline} ms)`);
  }
  if (renewDeadline <= retryPeriod) {
    throw new UsageError(`--renew-deadline (${renewDeadline} ms) must be longer than --retry-period (${retryPeriod} ms)`);
  }
  return {
    method: flags.leaderElectLease || process.env.KUBERNETES_SERVICE_HOST ? 'lease' : 'advisory-lock',
    // A process is a candidate of its own (client-go's hostname_uuid): a replica restarted under the same name (a
    // pod's container restarted by the kubelet) must not take its predecessor's Lease without waiting it out, nor
    // inherit its term.
    identity: `${flags.replicaId ?? os.hostname()}_${randomBytes(4).toString('hex')}`,
    leaseDurationMs: leaseDuration,
    renewDeadlineMs: renewDeadline,
    retryPeriodMs: retryPeriod,
  };
}

/** Loopback addresses and `localhost`: reachable only from this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  if (net.isIPv4(bare)) return bare.startsWith('127.');
  return /^::ffff:127\./.test(bare);
}

function option(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = /^[0-9]+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}.`);
    return n;
  };
}

/** A duration in ms: `15s`, `1500ms`, or a number of seconds (`0.5`); from 10 ms to an hour. */
function duration(value: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s)?$/.exec(value.trim());
  const ms = match ? Math.round(Number(match[1]) * (match[2] === 'ms' ? 1 : 1000)) : NaN;
  if (!Number.isFinite(ms) || ms < 10 || ms > 3_600_000) throw new InvalidArgumentError('must be a duration such as 15s or 500ms (from 10ms to 3600s).');
  return ms;
}

function byteSize(min: number, max: number) {
  return (value: string): number => {
    let bytes: number;
    try {
      bytes = parseMemoryBytes(value);
    } catch {
      throw new InvalidArgumentError('must be a number of bytes or a quantity such as 512Ki or 1Mi.');
    }
    if (bytes < min || bytes > max) throw new InvalidArgumentError(`must be from ${min} bytes to ${max / 1024 / 1024}Mi.`);
    return bytes;
  };
}

/** A model parser as a flag parser: its message becomes commander's. */
function parsed<T>(parse: (value: string) => T) {
  return (value: string): T => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** A value, or null for the word `none`. */
function orNone(parse: (value: string) => string) {
  return (value: string): string | null => (value.trim().toLowerCase() === 'none' ? null : parse(value));
}

function defaultMemory(value: string): string {
  let bytes: number;
  try {
    bytes = parseMemoryBytes(value);
  } catch {
    throw new InvalidArgumentError('must be a memory quantity such as 512Mi or 1Gi, or none.');
  }
  // As spec.resources.memory: Docker refuses limits below 6 MiB.
  if (bytes < 6 * 1024 * 1024) throw new InvalidArgumentError('must be at least 6Mi (the smallest limit Docker accepts), or none.');
  return value.trim();
}

function defaultCpu(value: string): string {
  try {
    parseCpuNanos(value);
  } catch {
    throw new InvalidArgumentError('must be a CPU quantity such as 0.5, 2 or 500m, or none.');
  }
  return value.trim();
}

function runtimeList(value: string): RuntimeName[] {
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const known = Object.values(RuntimeName) as string[];
  const unknown = names.filter((name) => !known.includes(name));
  if (names.length === 0 || unknown.length) throw new InvalidArgumentError(`must be a comma-separated list of ${known.join(', ')}.`);
  return [...new Set(names)] as RuntimeName[];
}

/** `--allowed-hosts`: `*`, or host names, each optionally with a leading `.` for its domain and below. */
function hostList(value: string): string[] {
  const names = value
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const name = /^\.?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$/;
  const bad = names.filter((n) => n !== '*' && !name.test(n) && net.isIP(n) === 0);
  if (names.length === 0 || bad.length) {
    throw new InvalidArgumentError(
      `must be "*" or comma-separated host names (".example.com" for a domain); not ${bad.map((b) => `"${b}"`).join(', ') || 'empty'}.`,
    );
  }
  return [...new Set(names)];
}

function dnsLabel(value: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(value)) throw new InvalidArgumentError('must be a DNS-1123 label (a Kubernetes namespace name).');
  return value;
}

function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an absolute http:// or https:// URL, such as https://berth.example.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`must use http or https, not ${url.protocol.slice(0, -1)}.`);
  return value;
}

function nonEmpty(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('must not be empty.');
  return value;
}

function envTrue(name: string): boolean {
  return !['', '0', 'false', 'no', 'off'].includes((process.env[name] ?? '').trim().toLowerCase());
}
