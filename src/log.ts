import pino, { type Level, type Logger } from 'pino';
import { LogOutput } from './log-output';
import { metrics } from './metrics';

/** The levels `--log-level` accepts: pino's, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = Level | 'silent';

/** How long the last lines may take to be written at exit: a reader that has stalled gets no longer than this. */
export const LOG_FLUSH_DEADLINE_MS = 2000;

let stdout: LogOutput | undefined;

/**
 * The process's stdout as berth's loggers write to it: asynchronous and
 * bounded (see src/log-output.ts), lines it drops counted in
 * `berth_log_lines_dropped_total`. One per process, as stdout is; `flush`
 * it before exiting.
 */
export function stdoutLog(): LogOutput {
  stdout ??= new LogOutput(process.stdout, { onDrop: () => metrics.logLinesDropped.inc() });
  return stdout;
}

/**
 * berth's logger: one JSON line per event on stdout, as log collectors
 * (journald, Kubernetes) expect. Tests pass `silent`.
 *
 * @param level - @default 'info'
 * @param output - @default stdoutLog()
 */
export function createLogger(level: LogLevel = 'info', output: LogOutput = stdoutLog()): Logger {
  return pino(
    {
      name: 'berth',
      level,
      // Error objects under `err` keep their stack in the log, never in an answer.
      serializers: { err: pino.stdSerializers.err },
      base: { pid: process.pid },
    },
    output,
  );
}

export type { Logger };
