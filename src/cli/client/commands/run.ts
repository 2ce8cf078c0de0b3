import readline from 'node:readline';
import { Command } from 'commander';
import type { ApiClient } from '../api-client';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { ExitCode, exitWith, UsageError } from '../exit';
import { runPath, type RunAnswer } from '../objects';
import { print } from '../output';
import { followLogs, isTerminal, runOutcome, RunWatch } from '../run-watch';

interface RunOptions {
  env: string[];
  command?: string;
  name?: string;
  wait?: boolean;
  follow?: boolean;
  output?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `berth run APP`: ask for a run; with --wait or --follow, end as the run ends, with its exit code. */
export function registerRun(program: Command): void {
  withConnectionOptions(
    program
      .command('run')
      .description("start a run of an App; with --wait or --follow, exit with the run's exit code")
      .argument('<app>', 'the App to run')
      .argument('[command...]', 'after --: the command to run instead of the App\'s (berth run hello -- sh -c "exit 3")')
      .option('-e, --env <KEY=VALUE>', 'set an environment variable for this run; repeatable', collect, [])
      .option('--command <command>', "the command instead of the App's, as one string split as a shell would")
      .option('--name <name>', "the run's name (default: the App's name and a random suffix)")
      .option('--wait', 'wait for the run to finish and exit with its exit code')
      .option('-f, --follow', "print the run's output as it runs, then exit with its exit code")
      .option('-o, --output <format>', 'name: print only run/NAME'),
  ).action(clientAction<RunOptions>((client, args, options) => run(client, args[0], args.slice(1), options)));
}

async function run(client: ApiClient, app: string, words: string[], options: RunOptions): Promise<number> {
  if (options.command !== undefined && words.length) throw new UsageError('give the command either with --command or after --, not both');
  if (options.output !== undefined && options.output !== 'name') throw new UsageError(`-o ${options.output}: only -o name is supported here`);
  const env = parseEnv(options.env);
  const command = words.length ? words : options.command;
  const body = { ...(options.name ? { name: options.name } : {}), ...(Object.keys(env).length ? { env } : {}), ...(command !== undefined ? { command } : {}) };
  const created = (await client.request<RunAnswer>('POST', `/apps/${encodeURIComponent(app)}/run/`, { body })).body;
  print(options.output === 'name' ? `run/${created.metadata.name}` : `run/${created.metadata.name} created`);
  if (!options.wait && !options.follow) return ExitCode.Ok;

  const watch = await RunWatch.start(client, created);
  const interrupt = new Interrupt(client, watch);
  try {
    const finished = options.follow ? await followLogs(client, watch) : await watch.until(isTerminal);
    const outcome = runOutcome(finished);
    if (outcome.message) process.stderr.write(`berth: ${outcome.message}\n`);
    return outcome.code;
  } finally {
    interrupt.remove();
    watch.close();
  }
}

/** `KEY=VALUE` pairs; the value may hold `=`. */
function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env "${pair}" must be KEY=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/**
 * Ctrl-C while waiting. On a terminal it asks whether to cancel the run:
 * yes cancels it and waits for it to stop (exit 1, Cancelled); anything else
 * detaches, leaving the run going. Without a terminal to ask on, it detaches
 * and says so. A second Ctrl-C detaches at once.
 */
class Interrupt {
  private asking = false;
  private readonly onSignal = (): void => void this.handle();

  constructor(
    private readonly client: ApiClient,
    private readonly watch: RunWatch,
  ) {
    process.on('SIGINT', this.onSignal);
  }

  remove(): void {
    process.off('SIGINT', this.onSignal);
  }

  private async handle(): Promise<void> {
    const run = this.watch.run;
    const name = run.metadata.name;
    if (this.asking || !process.stdin.isTTY || !process.stderr.isTTY) this.detach(name, !process.stdin.isTTY || !process.stderr.isTTY);
    this.asking = true;
    const answer = await ask(`\ncancel run ${name}? [y/N] `);
    this.asking = false;
    if (!/^y(es)?$/i.test(answer.trim())) this.detach(name, false);
    await this.client.request('POST', `${runPath(run)}cancel/`).catch((err: Error) => exitWith(ExitCode.Failed, err.message));
    process.stderr.write(`berth: cancelling run ${name}\n`);
  }

  private detach(name: string, noTerminal: boolean): never {
    const why = noTerminal ? ' (no terminal to ask whether to cancel it)' : '';
    exitWith(ExitCode.Interrupted, `detached${why}; run ${name} goes on: berth logs -f ${name} follows it, berth cancel ${name} stops it`);
  }
}

function ask(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
    // Ctrl-C at the prompt: readline closes without an answer.
    rl.once('SIGINT', () => {
      rl.close();
      resolve('');
    });
  });
}
