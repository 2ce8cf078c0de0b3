import type { Command } from 'commander';
import { ApiClient } from './api-client';
import { resolveConnection } from './connection';
import { CliError, exitWith, ExitCode } from './exit';

/**
 * The action of a client command: builds the ApiClient from `--server`,
 * `--token`, `--context` (./connection.ts), runs `handler` with the
 * command's arguments and options, and turns what it throws into one line
 * and an exit code. A handler that returns a number exits with it.
 */
export function clientAction<O extends object>(handler: (client: ApiClient, args: string[], options: O) => Promise<number | void>) {
  return async (...received: unknown[]): Promise<void> => {
    const command = received[received.length - 1] as Command;
    const options = command.opts<O & { server?: string; token?: string; context?: string }>();
    const code = await reportErrors(async () => handler(new ApiClient(resolveConnection(options)), command.args, options));
    exitWith(code ?? ExitCode.Ok);
  };
}

/** The action of a command that talks to no server (config, completion). */
export function localAction<O extends object>(handler: (args: string[], options: O) => Promise<number | void> | number | void) {
  return async (...received: unknown[]): Promise<void> => {
    const command = received[received.length - 1] as Command;
    const code = await reportErrors(async () => handler(command.args, command.opts<O>()));
    exitWith(code ?? ExitCode.Ok);
  };
}

async function reportErrors(run: () => Promise<number | void>): Promise<number | void> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof CliError) exitWith(err.exitCode, err.message);
    throw err;
  }
}
