import pino, { type Level, type Logger } from 'pino';

/** The levels `--log-level` accepts: pino's, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = Level | 'silent';

/**
 * berth's logger: one JSON line per event on stdout, as log collectors
 * (journald, Kubernetes) expect. Tests pass `silent`.
 *
 * @param level - @default 'info'
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({
    name: 'berth',
    level,
    // Error objects under `err` keep their stack in the log, never in an answer.
    serializers: { err: pino.stdSerializers.err },
    base: { pid: process.pid },
  });
}

export type { Logger };
