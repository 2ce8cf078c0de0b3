import { Command } from 'commander';
import { BERTH_VERSION } from '../../../api/version';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { print } from '../output';

/** `berth version`: this client's version, and the server's from its OpenAPI document. */
export function registerVersion(program: Command): void {
  withConnectionOptions(
    program.command('version').description("print the client's version and the server's").option('--client', "only the client's; do not ask the server"),
  ).action(
    clientAction<{ client?: boolean }>(async (client, _args, options) => {
      print(`Client: ${BERTH_VERSION}`);
      if (options.client) return;
      const { body } = await client.request<{ info?: { version?: string } }>('GET', '/openapi.json');
      print(`Server: ${body.info?.version ?? 'unknown'} (${client.server})`);
    }),
  );
}
