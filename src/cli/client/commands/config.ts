import { Command } from 'commander';
import { localAction } from '../client-action';
import { configPath, readConfig, writeConfig, type Context } from '../config-file';
import { normalizeServer } from '../connection';
import { UsageError } from '../exit';
import { print, Table } from '../output';

/** `berth config …`: the contexts file (`~/.config/berth/config.yaml`, or `BERTH_CONFIG`). */
export function registerConfig(program: Command): void {
  const config = program.command('config').description(`manage contexts: named servers and their tokens (in ${displayPath()})`);

  config
    .command('get-contexts')
    .description('list the contexts; * marks the current one')
    .action(
      localAction(() => {
        const { contexts, currentContext } = readConfig();
        if (contexts.length === 0) return void process.stderr.write(`No contexts in ${configPath()}; add one with berth config set-context.\n`);
        const rows = contexts.map((c) => [
          c.name === currentContext ? '*' : '',
          c.name,
          c.server,
          c.token ? 'token' : c.tokenFile ? `tokenFile ${c.tokenFile}` : '<none>',
        ]);
        const table = new Table(['CURRENT', 'NAME', 'SERVER', 'AUTH'], rows);
        print([table.header(), ...rows.map((r) => table.line(r))].join('\n'));
      }),
    );

  config
    .command('current-context')
    .description("print the current context's name")
    .action(
      localAction(() => {
        const { currentContext } = readConfig();
        if (!currentContext) throw new UsageError(`no current context in ${configPath()}; choose one with berth config use-context`);
        print(currentContext);
      }),
    );

  config
    .command('use-context')
    .description('make a context the current one')
    .argument('<name>')
    .action(
      localAction(([name]) => {
        const file = readConfig();
        if (!file.contexts.some((c) => c.name === name)) {
          throw new UsageError(
            `no context "${name}" in ${configPath()}${file.contexts.length ? ` (it has ${file.contexts.map((c) => c.name).join(', ')})` : ''}`,
          );
        }
        writeConfig({ ...file, currentContext: name });
        print(`Switched to context "${name}".`);
      }),
    );

  config
    .command('set-context')
    .description('add a context, or change one; the first one added becomes current')
    .argument('<name>')
    .option('--server <url>', "berth's address, e.g. http://127.0.0.1:8000")
    .option('--token <token>', 'a bearer token to keep in the file (mode 0600)')
    .option('--token-file <path>', 'a file whose first line is the token, read at each use')
    .option('--no-token', "forget the context's token and token file")
    .action(
      localAction<{ server?: string; token?: string | boolean; tokenFile?: string }>(([name], options) => {
        if (typeof options.token === 'string' && options.tokenFile) throw new UsageError('give --token or --token-file, not both');
        const file = readConfig();
        const existing = file.contexts.find((c) => c.name === name);
        if (!existing && !options.server) throw new UsageError(`context "${name}" is new: give its --server`);
        const context: Context = { ...(existing ?? { name, server: '' }) };
        if (options.server) context.server = normalizeServer(options.server);
        if (typeof options.token === 'string') {
          context.token = options.token;
          delete context.tokenFile;
        } else if (options.tokenFile) {
          context.tokenFile = options.tokenFile;
          delete context.token;
        } else if (options.token === false) {
          delete context.token;
          delete context.tokenFile;
        }
        const contexts = existing ? file.contexts.map((c) => (c.name === name ? context : c)) : [...file.contexts, context];
        writeConfig({ currentContext: file.currentContext ?? name, contexts });
        print(`Context "${name}" ${existing ? 'changed' : 'added'}.`);
      }),
    );

  config
    .command('delete-context')
    .description('remove a context')
    .argument('<name>')
    .action(
      localAction(([name]) => {
        const file = readConfig();
        if (!file.contexts.some((c) => c.name === name)) throw new UsageError(`no context "${name}" in ${configPath()}`);
        const contexts = file.contexts.filter((c) => c.name !== name);
        writeConfig({ currentContext: file.currentContext === name ? undefined : file.currentContext, contexts });
        print(`Context "${name}" deleted.`);
      }),
    );
}

function displayPath(): string {
  return process.env.BERTH_CONFIG ? '$BERTH_CONFIG' : '~/.config/berth/config.yaml';
}
