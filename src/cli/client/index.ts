import type { Command } from 'commander';
import { registerApply } from './commands/apply';
import { registerCancel } from './commands/cancel';
import { registerCompletion } from './commands/completion';
import { registerConfig } from './commands/config';
import { registerDelete } from './commands/delete';
import { registerDescribe } from './commands/describe';
import { registerGet } from './commands/get';
import { registerLogs } from './commands/logs';
import { registerRun } from './commands/run';
import { registerSources } from './commands/sources';
import { registerVersion } from './commands/version';

/**
 * The client commands: `berth apply`, `get`, `run`, `logs`, … Each talks to
 * a berth server through its public HTTP API only (./api-client.ts), so it
 * works against any berth, local or in a cluster, and loads none of the
 * server's code.
 */
export function registerClientCommands(program: Command): void {
  for (const register of [
    registerApply,
    registerGet,
    registerDescribe,
    registerRun,
    registerLogs,
    registerCancel,
    registerDelete,
    registerSources,
    registerVersion,
    registerConfig,
    registerCompletion,
  ]) {
    register(program);
  }
  // `berth get runs | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
