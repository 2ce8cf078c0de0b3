import { Command } from 'commander';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { UsageError } from '../exit';
import { resourceKind } from '../objects';
import { print } from '../output';

/** `berth delete app NAME`: the App with its runs and their logs (active runs are stopped). */
export function registerDelete(program: Command): void {
  withConnectionOptions(
    program
      .command('delete')
      .description('delete an App with its runs and their logs (runs still active are stopped)')
      .argument('<app>', 'what to delete: app')
      .argument('<name...>', "the Apps' names"),
  ).action(
    clientAction(async (client, [resource, ...names]) => {
      if (resourceKind(resource) !== 'App') throw new UsageError("only apps can be deleted; a run ends with berth cancel and goes with its App's history");
      for (const name of names) {
        await client.request('DELETE', `/apps/${encodeURIComponent(name)}/`);
        print(`app/${name} deleted`);
      }
    }),
  );
}
