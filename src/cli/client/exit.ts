/**
 * How the berth client ends: one line on stderr naming the problem, and an
 * exit code a script can act on. README "Command line" documents the codes.
 */

export const ExitCode = {
  /** Done. */
  Ok: 0,
  /** The server refused or failed the request (404, 409, 422, 5xx); a run that failed without an exit code of its own. */
  Failed: 1,
  /** A bad flag, argument, context or file: nothing was sent. */
  Usage: 2,
  /** The server could not be reached (refused, no such host, timed out). */
  Unreachable: 3,
  /** The server refused the token (401) or the request's origin (403). */
  Unauthorized: 4,
  /** Interrupted (Ctrl-C) and detached: the run goes on. */
  Interrupted: 130,
} as const;

/** An error the client reports as `berth: <message>` and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.Failed,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A flag, argument, context or file the client refuses before sending anything. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.Usage);
  }
}

/** Ends the process now, after writing `berth: <message>` when there is one. */
export function exitWith(code: number, message?: string): never {
  if (message) process.stderr.write(`berth: ${message}\n`);
  process.exit(code);
}
