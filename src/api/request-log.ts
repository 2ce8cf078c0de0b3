import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

/** Probed every few seconds by orchestrators: logged at debug so they do not drown the rest. */
const PROBES = new Set(['/healthz', '/healthz/', '/readyz', '/readyz/', '/metrics', '/metrics/']);

/** One log line per request: method, path, status and duration. */
export function requestLog(logger: Logger) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    try {
      await next();
    } finally {
      const level = PROBES.has(ctx.path) ? 'debug' : 'info';
      if (logger.isLevelEnabled(level)) {
        logger[level]({ method: ctx.method, url: ctx.url, status: ctx.status, ms: Math.round((performance.now() - started) * 10) / 10 }, 'request');
      }
    }
  };
}
