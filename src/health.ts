/**
 * Readiness, as every long-running part reports it: the store, the
 * controller and its runtimes, the folder's first sync. `/readyz` asks each.
 */

/** One thing `/readyz` asks about. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ready: boolean; reason?: string }>;
}
