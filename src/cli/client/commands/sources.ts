import { Command, Option } from 'commander';
import type { FolderReport } from '../../../sources/report';
import { clientAction } from '../client-action';
import { withConnectionOptions } from '../connection';
import { age, print, Table } from '../output';
import { toYaml } from '../yaml';

/** `berth sources`: the apps folder's sync status, file by file, with each error at file:line:column. */
export function registerSources(program: Command): void {
  withConnectionOptions(
    program
      .command('sources')
      .description("show the apps folder's sync status, file by file, with errors at file:line")
      .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json'])),
  ).action(
    clientAction<{ output?: 'yaml' | 'json' }>(async (client, _args, options) => {
      const report = (await client.request<FolderReport>('GET', '/sources/')).body;
      if (options.output === 'json') return print(JSON.stringify(report, null, 2));
      if (options.output === 'yaml') return print(toYaml(report));
      const s = report.summary;
      const state = report.ready ? 'ready' : 'first scan not finished';
      const lines = [`Folder: ${report.dir} (${state}${report.git ? `, commit ${report.git.commit.slice(0, 12)}` : ''})`];
      lines.push(`Files:  ${s.files} (${s.synced} synced, ${s.error} in error)${report.lastSyncAt ? `, last sync ${age(report.lastSyncAt)} ago` : ''}`);
      if (report.files.length) {
        const rows = report.files.map((f) => [
          f.path,
          f.state,
          f.objects.map((o) => `${o.kind.toLowerCase()}/${o.name}`).join(',') || '<none>',
          f.lastAppliedAt ? `${age(f.lastAppliedAt)} ago` : 'never',
        ]);
        const table = new Table(['FILE', 'STATE', 'OBJECTS', 'APPLIED'], rows, 1);
        lines.push('', table.header(), ...rows.map((r) => table.line(r)));
      }
      const errors = report.files.flatMap((f) =>
        f.errors.map((e) => {
          const where = e.line !== undefined ? `${f.path}:${e.line}:${e.column ?? 1}` : f.path;
          const what = e.kind && e.name ? ` ${e.kind.toLowerCase()}/${e.name}` : '';
          return `${where}:${what} ${e.field}: ${e.reason}`;
        }),
      );
      if (errors.length) lines.push('', 'Errors:', ...errors.map((e) => `  ${e}`));
      print(lines.join('\n'));
    }),
  );
}
