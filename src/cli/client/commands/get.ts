import { Command, Option } from 'commander';
import type { ApiClient } from '../api-client';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { EventStream } from '../events';
import { UsageError } from '../exit';
import {
  APP_COLUMNS,
  APP_WIDE_COLUMNS,
  appRow,
  matchesSelector,
  objectForm,
  parseSelector,
  resourceKind,
  RUN_COLUMNS,
  RUN_PHASE_COLUMN,
  RUN_WIDE_COLUMNS,
  runRow,
  type AppAnswer,
  type RunAnswer,
} from '../objects';
import { print, Table } from '../output';
import { toYaml } from '../yaml';

type Format = 'table' | 'wide' | 'yaml' | 'json' | 'name';

interface GetOptions {
  selector?: string;
  app?: string;
  phase?: string;
  output?: Format;
  watch?: boolean;
}

type Answer = AppAnswer | RunAnswer;

/** `berth get apps|runs [NAME]`: tables a person scans, or objects a script reads; `-w` goes on with changes from `/events/`. */
export function registerGet(program: Command): void {
  withConnectionOptions(
    program
      .command('get')
      .description('list Apps or Runs, or show one')
      .argument('<apps|runs>', 'what to list')
      .argument('[name]', 'just this one')
      .option('-l, --selector <key=value,…>', 'only Apps with these labels (equality)')
      .option('--app <name>', "runs: only this App's")
      .option('--phase <phases>', 'runs: only these phases, comma-separated (Pending,Running,Succeeded,Failed,Cancelled)')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['wide', 'yaml', 'json', 'name']))
      .option('-w, --watch', 'after the list, print each change as it happens (until Ctrl-C)'),
  ).action(clientAction<GetOptions>((client, args, options) => get(client, args[0], args[1], options)));
}

async function get(client: ApiClient, resource: string, name: string | undefined, options: GetOptions): Promise<void> {
  const kind = resourceKind(resource);
  if (kind === 'App' && (options.app || options.phase)) throw new UsageError('--app and --phase filter runs; for apps use -l');
  if (kind === 'Run' && options.selector) throw new UsageError('-l selects Apps by label; for runs use --app or --phase');
  const selector = parseSelector(options.selector);
  const phases = options.phase?.split(',').map((p) => p.trim());
  const format: Format = options.output ?? 'table';
  const wanted = (o: Answer): boolean =>
    (name === undefined || o.metadata.name === name || String(o.id) === name) &&
    (kind === 'App'
      ? matchesSelector(o.metadata.labels, selector)
      : (!options.app || (o as RunAnswer).app === options.app) && (!phases || phases.includes((o as RunAnswer).status.phase)));

  // Subscribing before reading means no change made in between is missed.
  const events = options.watch ? await EventStream.open(client, { kind, app: options.app }) : undefined;
  const items = await read(client, kind, name, options);
  const printer = new Printer(kind, format, items, Boolean(events));
  printer.list(items, name !== undefined, Boolean(events));
  if (!events) return;
  for await (const event of events) {
    if (event.object.kind !== kind || !wanted(event.object as Answer)) continue;
    printer.change(event.type, event.object as Answer);
  }
}

async function read(client: ApiClient, kind: 'App' | 'Run', name: string | undefined, options: GetOptions): Promise<Answer[]> {
  if (name !== undefined) {
    const path = kind === 'App' ? `/apps/${encodeURIComponent(name)}/` : `/runs/${encodeURIComponent(name)}/`;
    const one = (await client.request<Answer>('GET', path)).body;
    if (kind === 'Run' && options.app && (one as RunAnswer).app !== options.app) {
      throw new UsageError(`run "${name}" is of app "${(one as RunAnswer).app}", not "${options.app}"`);
    }
    return [one];
  }
  if (kind === 'App') return client.list<AppAnswer>('/apps/', { labelSelector: options.selector });
  return client.list<RunAnswer>('/runs/', { app: options.app, phase: options.phase });
}

/** Prints a list, then changes, in one format; a table keeps the widths of the list's rows. */
class Printer {
  private readonly table?: Table;
  private readonly wide: boolean;

  constructor(
    private readonly kind: 'App' | 'Run',
    private readonly format: Format,
    items: Answer[],
    watching: boolean,
  ) {
    this.wide = format === 'wide';
    if (format === 'table' || format === 'wide') {
      const headers = kind === 'App' ? (this.wide ? APP_WIDE_COLUMNS : APP_COLUMNS) : this.wide ? RUN_WIDE_COLUMNS : RUN_COLUMNS;
      // Rows a watch prints later are not known yet: leave room for typical names and phases.
      const room = watching ? (kind === 'App' ? [20, 28, 12] : [24, 16, 9, 9]) : [];
      this.table = new Table(
        headers,
        items.map((o) => this.row(o)),
        kind === 'Run' ? RUN_PHASE_COLUMN : undefined,
        room,
      );
    }
  }

  list(items: Answer[], single: boolean, watching = false): void {
    switch (this.format) {
      case 'json':
        print(JSON.stringify(single ? objectForm(items[0]) : listOf(items), null, 2));
        return;
      case 'yaml':
        print(toYaml(single ? objectForm(items[0]) : listOf(items)));
        return;
      case 'name':
        for (const o of items) print(`${this.kind.toLowerCase()}/${o.metadata.name}`);
        return;
      default:
        // Like kubectl: the header only when there is something under it, so `| wc -l` counts objects plus one.
        if (items.length === 0 && !watching) process.stderr.write(`No ${this.kind === 'App' ? 'apps' : 'runs'} found.\n`);
        else print([this.table!.header(), ...items.map((o) => this.table!.line(this.row(o)))].join('\n'));
    }
  }

  /** One change from the watch: a row (DELETED ones say so), one JSON object per line, or a YAML document. */
  change(type: string, object: Answer): void {
    switch (this.format) {
      case 'json':
        print(JSON.stringify({ type, object: objectForm(object) }));
        return;
      case 'yaml':
        print(`---\n${toYaml({ type, object: objectForm(object) })}`);
        return;
      case 'name':
        print(`${this.kind.toLowerCase()}/${object.metadata.name}${type === 'DELETED' ? ' deleted' : ''}`);
        return;
      default: {
        const row = this.row(object);
        if (type === 'DELETED') row[0] = `${row[0]} (deleted)`;
        print(this.table!.line(row));
      }
    }
  }

  private row(o: Answer): string[] {
    return this.kind === 'App' ? appRow(o as AppAnswer, this.wide) : runRow(o as RunAnswer, this.wide);
  }
}

function listOf(items: Answer[]): Record<string, unknown> {
  return { apiVersion: 'berth.dev/v1', kind: 'List', items: items.map(objectForm) };
}
