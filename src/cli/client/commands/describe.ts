import { Command } from 'commander';
import type { FolderReport } from '../../../sources/report';
import { NotFoundAnswer, type ApiClient } from '../api-client';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { age, paint, print, span, Table } from '../output';
import { getRun, labelText, resourceKind, sourceOf, type AppAnswer, type RunAnswer } from '../objects';
import { toYaml } from '../yaml';

/** How many of an App's runs `describe app` shows. */
const LAST_RUNS = 10;

/** `berth describe app|run NAME`: everything about one object a person needs to understand its state. */
export function registerDescribe(program: Command): void {
  withConnectionOptions(
    program
      .command('describe')
      .description('show an App (spec, source and its sync errors, last runs) or a Run (status, attempts, overrides)')
      .argument('<app|run>', 'what to describe')
      .argument('<name>', 'its name (or id)'),
  ).action(
    clientAction(async (client, [resource, name]) => {
      if (resourceKind(resource) === 'App') await describeApp(client, name);
      else await describeRun(client, name);
    }),
  );
}

async function describeApp(client: ApiClient, name: string): Promise<void> {
  const app = (await client.request<AppAnswer>('GET', `/apps/${encodeURIComponent(name)}/`)).body;
  const [runs, sync] = await Promise.all([
    client.request<RunAnswer[]>('GET', `/apps/${encodeURIComponent(app.metadata.name)}/run/`, { query: { limit: LAST_RUNS } }),
    fileReport(client, app),
  ]);
  const m = app.metadata;
  const lines = fields([
    ['Name', m.name],
    ['Labels', labelText(m.labels)],
    ['Source', paintSource(sourceOf(app))],
    ['Created', `${m.creationTimestamp} (${age(m.creationTimestamp)} ago)`],
    ['Generation', String(m.generation)],
    ['Resource version', m.resourceVersion],
  ]);
  if (app.status.syncMessage) lines.push(...fields([['Sync message', app.status.syncMessage]]));
  if (sync) {
    lines.push(...fields([['File', `${sync.path} (${paint(sync.state)}${sync.lastAppliedAt ? `, applied ${age(sync.lastAppliedAt)} ago` : ''})`]]));
    if (sync.errors.length) {
      lines.push('Sync errors:');
      for (const e of sync.errors) {
        const where = e.line !== undefined ? `${sync.path}:${e.line}:${e.column ?? 1}` : sync.path;
        lines.push(`  ${where}: ${e.field}: ${e.reason}`);
      }
    }
    lines.push('Note:', '  This App is declared by a file in the apps folder; change it there (the API refuses writes to it).');
  }
  lines.push('Spec:', indent(toYaml(app.spec)));
  const total = Number(runs.headers.get('x-total-count') ?? runs.body.length);
  lines.push(`Last runs (${runs.body.length} of ${total}):`);
  if (runs.body.length === 0) lines.push('  <none>');
  else {
    const rows = runs.body.map((r) => [
      r.metadata.name,
      r.status.phase,
      r.status.reason ?? '',
      r.status.exitCode === undefined ? '' : String(r.status.exitCode),
      r.status.startedAt ? `${age(r.status.startedAt)} ago` : '-',
      span(r.status.startedAt, r.status.finishedAt),
    ]);
    const table = new Table(['NAME', 'PHASE', 'REASON', 'EXIT', 'STARTED', 'DURATION'], rows, 1);
    lines.push(`  ${table.header()}`, ...rows.map((r) => `  ${table.line(r)}`));
  }
  print(lines.join('\n'));
}

async function describeRun(client: ApiClient, name: string): Promise<void> {
  const run = await getRun(client, name);
  const s = run.status;
  const pairs: [string, string | undefined][] = [
    ['Name', run.metadata.name],
    ['Id', String(run.id)],
    ['App', run.app],
    ['Phase', paint(s.phase)],
    ['Reason', s.reason],
    ['Message', s.message],
    ['Exit code', s.exitCode === undefined ? undefined : String(s.exitCode)],
    ['Attempts', String(s.attempts ?? 0)],
    ['Next attempt', s.nextAttemptAt],
    ['Cancel requested', s.cancelRequested && `${s.cancelRequested.reason}: ${s.cancelRequested.message}`],
    ['Runtime', s.runtime],
    ['Container', s.containerName],
    ['Created', `${run.metadata.creationTimestamp} (${age(run.metadata.creationTimestamp)} ago)`],
    ['Started', s.startedAt],
    ['Finished', s.finishedAt],
    ['Duration', span(s.startedAt, s.finishedAt)],
    ['Image', run.spec.template.image],
    ['Command', run.spec.template.command.length ? JSON.stringify(run.spec.template.command) : '<image default>'],
    ['Command override', run.spec.command && JSON.stringify(run.spec.command)],
  ];
  const lines = fields(pairs.filter((p): p is [string, string] => p[1] !== undefined && p[1] !== ''));
  if (run.spec.env && Object.keys(run.spec.env).length) lines.push('Env overrides:', ...Object.entries(run.spec.env).map(([k, v]) => `  ${k}=${v}`));
  const history = s.history ?? [];
  lines.push('History:');
  if (history.length === 0) lines.push('  <no attempt yet>');
  else {
    const rows = history.map((a) => [
      String(a.attempt),
      a.startedAt ?? '',
      a.finishedAt ?? '',
      a.exitCode === undefined ? '' : String(a.exitCode),
      a.reason ?? '',
      (a.message ?? '').replace(/\s+/g, ' '),
    ]);
    const table = new Table(['#', 'STARTED', 'FINISHED', 'EXIT', 'REASON', 'MESSAGE'], rows);
    lines.push(`  ${table.header()}`, ...rows.map((r) => `  ${table.line(r)}`));
  }
  print(lines.join('\n'));
}

/** The apps folder's report on the file that owns the App, when a file does and the server watches a folder. */
async function fileReport(client: ApiClient, app: AppAnswer): Promise<FolderReport['files'][number] | undefined> {
  if (!app.status.source.startsWith('file:')) return undefined;
  try {
    const report = (await client.request<FolderReport>('GET', '/sources/')).body;
    return report.files.find((f) => `file:${f.path}` === app.status.source);
  } catch (err) {
    if (err instanceof NotFoundAnswer) return undefined;
    throw err;
  }
}

function fields(pairs: [string, string][]): string[] {
  const width = Math.max(...pairs.map(([k]) => k.length)) + 2;
  return pairs.map(([k, v]) => `${(k + ':').padEnd(width)}${v}`);
}

function paintSource(source: string): string {
  return source.endsWith('(Error)') ? source.replace('(Error)', `(${paint('Error')})`) : source;
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
