import { Command, InvalidArgumentError } from 'commander';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { getRun, runPath } from '../objects';
import { followLogs, RunWatch } from '../run-watch';

interface LogsOptions {
  follow?: boolean;
  tail?: number;
}

/** `berth logs RUN [-f] [--tail N]`: a run's output, kept after its container is gone; -f follows it live until the run ends. */
export function registerLogs(program: Command): void {
  withConnectionOptions(
    program
      .command('logs')
      .description("print a run's output (kept after its container is gone)")
      .argument('<run>', "the run's name (or id)")
      .option('-f, --follow', 'go on printing while the run runs, attempt by attempt, until it ends')
      .option('--tail <lines>', 'only the last lines', nonNegativeInteger),
  ).action(
    clientAction<LogsOptions>(async (client, [ref], options) => {
      const run = await getRun(client, ref);
      if (!options.follow) {
        const stored = await client.request<string>('GET', `${runPath(run)}logs/`, { query: { tail: options.tail } });
        process.stdout.write(stored.body);
        return;
      }
      const watch = await RunWatch.start(client, run);
      try {
        await followLogs(client, watch, options.tail);
      } finally {
        watch.close();
      }
    }),
  );
}

function nonNegativeInteger(value: string): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a whole number of lines, 0 or more');
  return Number(value);
}
