import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Runtimes } from '../executors/runtimes';
import type { ContainmentPolicy } from '../model/containment';
import type { Store } from '../store/store';
import type { ReadinessCheck } from '../server-part';
import type { PendingLimits } from '../controller/run-requests';

export type { ReadinessCheck } from '../server-part';

/** What the folder source reports about its files, for `GET /sources/`. */
export interface SourceReporter {
  report(): unknown;
  /** Each file applied, held at its last good state, or deleted: relayed to `/events/` as `event: SYNC`. */
  on(event: 'sync', listener: (event: SyncReport) => void): unknown;
  off(event: 'sync', listener: (event: SyncReport) => void): unknown;
}

/** What a sync event says, as far as the API reads it. */
export interface SyncReport {
  path: string;
  objects: { kind: string; name: string }[];
}

/**
 * Everything the HTTP API needs, passed in by the composition root
 * (src/server.ts). The API only reads and writes the store; it never drives
 * a runtime, except to stream live logs of a running workload.
 */
export interface ApiDeps {
  store: Store;
  logger: Logger;
  /** When set, every endpoint but the probes needs `Authorization: Bearer <token>`. */
  token?: string;
  /** The address the server listens on: its name (or, a wildcard, the hostname) is a Host it answers for. */
  listenHost?: string;
  /** More Host names to answer for (`.domain` for a domain and below; `*`: any). See ./host-check.ts. */
  allowedHosts?: string[];
  readiness: ReadinessCheck[];
  /** The runtimes, for following live logs. */
  runtimes: Runtimes;
  metrics: Registry;
  folder?: SourceReporter;
  /** The apps folder as the user gave it, so a 409 on a file-owned App names the file as they know it. */
  appsDir?: string;
  /** With leader election: which replica leads and since when, for `/readyz`. */
  leadership?: { report(): Promise<unknown> };
  /** What an App may ask for (registries, capabilities, networks); refused Apps are 422. @default DEFAULT_CONTAINMENT */
  containment?: ContainmentPolicy;
  /** Aborted when the server shuts down: long-lived answers (event streams, followed logs) end then. */
  shutdown?: AbortSignal;
  /** Bounds on what clients can make the server hold. @default API_LIMITS */
  limits?: Partial<ApiLimits>;
}

/** Bounds on what clients can make the server hold: runs waiting, streams open. */
export interface ApiLimits {
  /** Pending runs, in all and per App, beyond which `POST …/run/` answers 429. */
  pending: PendingLimits;
  /** `GET /events/` streams open at once; beyond, 503. */
  eventStreams: number;
  /** `GET …/logs/?follow=1` streams of live workloads open at once; beyond, 503. */
  logFollowers: number;
}

/** The limits of a server told nothing else (`berth serve`'s defaults). */
export const API_LIMITS: ApiLimits = {
  pending: { total: 500, perApp: 100 },
  eventStreams: 100,
  logFollowers: 100,
};
