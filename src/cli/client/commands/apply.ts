import { Command } from 'commander';
import type { ApiClient } from '../api-client';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { CliError, ExitCode, UsageError } from '../exit';
import { readManifests } from '../manifests';
import { print, useColour } from '../output';
import { executePlan, planApply, sortKeys, type Comparable, type Plan, type Step } from '../plan';
import { unifiedDiff } from '../text-diff';
import { toYaml } from '../yaml';

interface ApplyOptions {
  filename: string[];
  dryRun?: boolean;
  prune?: boolean;
  selector?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `berth apply -f FILE|DIR|-` and `berth diff -f FILE|DIR|-`. */
export function registerApply(program: Command): void {
  withConnectionOptions(
    program
      .command('apply')
      .description('create or update the Apps (and create the Runs) the files declare, as kubectl apply does')
      .requiredOption('-f, --filename <path>', 'a YAML or JSON file, a folder (recursively) or - for stdin; repeatable', collect)
      .option('--dry-run', 'have the server check everything and say what would happen; change nothing')
      .option('--prune', 'delete the API-made Apps the files do not declare (never Apps a file in the apps folder owns)')
      .option('-l, --selector <key=value,…>', 'with --prune: only Apps with these labels'),
  ).action(clientAction<ApplyOptions>((client, _args, options) => apply(client, options)));

  withConnectionOptions(
    program
      .command('diff')
      .description(
        'show what apply would create, change (a unified diff of the spec) and, with --prune, delete; exit 0 when nothing differs, 1 when something does, 2 or more on error',
      )
      .requiredOption('-f, --filename <path>', 'a YAML or JSON file, a folder (recursively) or - for stdin; repeatable', collect)
      .option('--prune', 'also show the API-made Apps apply --prune would delete')
      .option('-l, --selector <key=value,…>', 'with --prune: only Apps with these labels'),
  ).action(clientAction<ApplyOptions>(async (client, _args, options) => diffExitCode(() => diff(client, options))));
}

async function plan(client: ApiClient, options: ApplyOptions): Promise<Plan> {
  if (options.selector && !options.prune) throw new UsageError('--selector only narrows --prune; give --prune too');
  const manifests = await readManifests(options.filename);
  if (manifests.length === 0) throw new UsageError(`no App or Run documents in ${options.filename.join(', ')}`);
  const planned = await planApply(client, manifests, options);
  if (planned.problems.length) {
    for (const problem of planned.problems) process.stderr.write(`berth: ${problem}\n`);
    throw new CliError(`${planned.problems.length} of ${manifests.length} documents refused; nothing was applied`);
  }
  return planned;
}

const PAST: Record<Step['action'], string> = { create: 'created', configure: 'configured', unchanged: 'unchanged', prune: 'pruned' };

async function apply(client: ApiClient, options: ApplyOptions): Promise<void> {
  const planned = await plan(client, options);
  const say = (step: Step): void => print(`${step.kind.toLowerCase()}/${step.name} ${PAST[step.action]}${options.dryRun ? ' (server dry run)' : ''}`);
  if (options.dryRun) planned.steps.forEach(say);
  else await executePlan(client, planned, say);
}

/** 0: nothing would change; 1: something would. */
async function diff(client: ApiClient, options: ApplyOptions): Promise<number> {
  const planned = await plan(client, options);
  const changes = planned.steps.filter((s) => s.action !== 'unchanged');
  const colour = useColour();
  for (const step of changes) {
    const id = `${step.kind.toLowerCase()}/${step.name}`;
    const lines = [`diff -u ${id}`, `--- ${id} (live)`, `+++ ${id} (${step.action === 'prune' ? 'pruned' : step.origin})`];
    lines.push(...unifiedDiff(asYaml(step.live), asYaml(step.action === 'prune' ? undefined : step.applied)));
    print(lines.map((line) => (colour ? tint(line) : line)).join('\n'));
  }
  return changes.length ? 1 : 0;
}

/** flux's convention: differences are 1, so every error is 2 or more. */
async function diffExitCode(run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof CliError && err.exitCode === ExitCode.Failed) throw new CliError(err.message, 2);
    throw err;
  }
}

function asYaml(object: Comparable | undefined): string {
  if (!object) return '';
  return toYaml(sortKeys(object));
}

function tint(line: string): string {
  if (line.startsWith('+') && !line.startsWith('+++')) return `\x1b[32m${line}\x1b[0m`;
  if (line.startsWith('-') && !line.startsWith('---')) return `\x1b[31m${line}\x1b[0m`;
  if (line.startsWith('@@')) return `\x1b[36m${line}\x1b[0m`;
  return line;
}
