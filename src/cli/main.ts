#!/usr/bin/env node
/**
 * The `berth` command. `berth serve` runs the API server (and, with it, the
 * controller and the folder source). Usage errors exit 2, start-up failures
 * (database, address) exit 1, each with one line naming the problem. The
 * client commands (`apply`, `get`, `run`, …) live in ./client/.
 */
import { Command, CommanderError } from 'commander';
import { BerthError } from '../errors';
import { BERTH_VERSION } from '../api/version';
import type { RunningServer } from '../server';
import { registerClientCommands } from './client';

/** How long a signalled shutdown may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 10_000;

function program(): Command {
  const berth = new Command('berth')
    .description('A declarative controller for containerised batch work')
    .version(BERTH_VERSION)
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'berth: ')) })
    // Every commander error (unknown flag, bad value) exits 2, the usual code for a usage error.
    .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : 2));

  const serve = berth.command('serve').description('serve the API and run the controller');
  // serve's options (and the store, logging and server code behind them) load only when serving or
  // asked for serve's help: the client commands start without sequelize, pino, koa or dockerode.
  berth.hook('preSubcommand', async (_berth, subcommand) => {
    if (subcommand === serve) (await import('./serve-options')).addServeOptions(serve);
  });
  serve.action(async (_opts, command: Command) => {
    const { serveConfig, UsageError } = await import('./serve-options');
    let config: ReturnType<typeof serveConfig>;
    try {
      config = serveConfig(command);
    } catch (err) {
      if (err instanceof UsageError) fail(err.message, 2);
      throw err;
    }
    let server: RunningServer;
    try {
      // Loaded here, not above: the client commands need none of koa, sequelize, dockerode or client-node.
      const { startServer } = await import('../server');
      server = await startServer(config);
    } catch (err) {
      fail(err instanceof BerthError ? err.message : `cannot start: ${(err as Error).message}`, 1);
    }
    stopOnSignals(server);
  });
  registerClientCommands(berth);
  return berth;
}

/** SIGTERM or SIGINT: finish in-flight requests, close the store, exit 0. A second signal exits at once. */
function stopOnSignals(server: RunningServer): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(130);
    stopping = true;
    setTimeout(() => {
      process.stderr.write(`berth: shutdown took longer than ${SHUTDOWN_DEADLINE_MS} ms after ${signal}; exiting\n`);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    server.stop().then(
      () => exitAfterLogs(0),
      (err: Error) => {
        process.stderr.write(`berth: error while shutting down: ${err.message}\n`);
        exitAfterLogs(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Exits once the last log lines are written, or when a reader that is not reading has had long enough. */
function exitAfterLogs(code: number): void {
  void import('../log').then(({ stdoutLog, LOG_FLUSH_DEADLINE_MS }) => stdoutLog().flush(LOG_FLUSH_DEADLINE_MS)).finally(() => process.exit(code));
}

function fail(message: string, code: number): never {
  process.stderr.write(`berth: ${message}\n`);
  process.exit(code);
}

program()
  .parseAsync(process.argv)
  .catch((err: Error) => fail(err.message, 1));
