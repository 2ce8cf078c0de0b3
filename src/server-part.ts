/**
 * What the server runs besides the API, and how each reports readiness: the
 * store, the controller and its runtimes, the folder's first sync. Its own
 * file so that the parts (src/leadership/terms.ts makes them per term) need
 * not import the server that runs them.
 */

/** One thing `/readyz` asks about. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ready: boolean; reason?: string }>;
}

/**
 * A long-running part of the server (the controller, the folder source):
 * `start` runs until `signal` aborts and then resolves once the part has
 * let go of everything, so the store can be closed after it.
 */
export interface ServerPart {
  name: string;
  start(signal: AbortSignal): Promise<void>;
  /** Joins `/readyz` when given. */
  readiness?: ReadinessCheck;
}
