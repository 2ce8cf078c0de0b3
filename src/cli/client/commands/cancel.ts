import { Command } from 'commander';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { getRun, runPath } from '../objects';
import { print } from '../output';

/** `berth cancel RUN`: asks the controller to stop a Pending or Running run. */
export function registerCancel(program: Command): void {
  withConnectionOptions(
    program.command('cancel').description('cancel a Pending or Running run (the controller stops its container)').argument('<run>', "the run's name (or id)"),
  ).action(
    clientAction(async (client, [ref]) => {
      const run = await getRun(client, ref);
      await client.request('POST', `${runPath(run)}cancel/`);
      print(`run/${run.metadata.name} cancelled`);
    }),
  );
}
