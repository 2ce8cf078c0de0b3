import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { uniqueName } from '../helpers/fixtures';
import { appYaml, documents, RunningSource, runYaml, useFolderSource, writeFile } from '../helpers/folder';
import { waitFor } from '../helpers/wait';

describe('FolderSource: declared runs', function () {
  const folder = useFolderSource();

  const restart = async (): Promise<RunningSource> => {
    await folder.stop();
    return folder.start();
  };
  const runsOf = async (app: string): Promise<string[]> => {
    const found = await folder.store.getApp(app);
    return found ? (await folder.store.listRuns({ appId: found.id })).items.map((r) => r.metadata.name) : [];
  };

  it('creates a Run declared beside its App exactly once, across edits and a restart', async () => {
    const [app, run] = [uniqueName('app'), uniqueName('run')];
    writeFile(folder.dir, 'job.yaml', documents(runYaml(run, app, { WHO: 'gitops' }), appYaml(app)));
    await folder.start();
    const created = await folder.store.mustGetRun(run);
    assert.equal(created.spec.app, app);
    assert.deepEqual(created.spec.env, { WHO: 'gitops' });
    assert.equal(created.status.phase, 'Pending');
    assert.deepEqual(folder.fileReport('job.yaml')?.objects, [
      { kind: 'App', name: app },
      { kind: 'Run', name: run },
    ]);

    // An unrelated edit to the file re-applies it, and asks for nothing new.
    writeFile(folder.dir, 'job.yaml', documents(runYaml(run, app, { WHO: 'gitops' }), appYaml(app, { image: 'busybox:1.37' })));
    await waitFor('the edit', async () => (await folder.store.getApp(app))?.spec.image === 'busybox:1.37');
    await restart();
    await restart();
    assert.deepEqual(await runsOf(app), [run]);
    assert.equal((await folder.store.mustGetRun(run)).metadata.uid, created.metadata.uid);
  });

  it('does not ask again for a run whose spec was edited: reported as immutable, the rest of the file applies', async () => {
    const [app, run] = [uniqueName('app'), uniqueName('run')];
    writeFile(folder.dir, 'app.yaml', appYaml(app));
    writeFile(folder.dir, 'run.yaml', runYaml(run, app, { WHO: 'first' }));
    await folder.start();
    const other = uniqueName('other');
    writeFile(folder.dir, 'run.yaml', documents(runYaml(run, app, { WHO: 'second' }), appYaml(other)));
    const report = await waitFor('the immutable error', () => (folder.fileReport('run.yaml')?.state === 'Error' ? folder.fileReport('run.yaml') : undefined));
    assert.deepEqual(
      report.errors.map((e) => [e.document, e.kind, e.name, e.field, e.line]),
      [[0, 'Run', run, 'spec', 1]],
    );
    assert.match(report.errors[0].reason, /already exists and its spec is immutable/);
    assert.deepEqual((await folder.store.mustGetRun(run)).spec.env, { WHO: 'first' });
    assert.ok(await folder.store.getApp(other), "the file's App applied all the same");
    assert.deepEqual(await runsOf(app), [run]);

    // A new name is a new run; putting the old spec back clears the error.
    writeFile(folder.dir, 'run.yaml', documents(runYaml(run, app, { WHO: 'first' }), runYaml(`${run}-2`, app, { WHO: 'second' }), appYaml(other)));
    await waitFor('the second run', () => folder.store.getRun(`${run}-2`));
    await waitFor('the file to be synced', () => folder.fileReport('run.yaml')?.state === 'Synced');
  });

  it('keeps the run when its file is deleted', async () => {
    const [app, run] = [uniqueName('app'), uniqueName('run')];
    writeFile(folder.dir, 'app.yaml', appYaml(app));
    writeFile(folder.dir, 'runs/today.yaml', runYaml(run, app));
    const { source } = await folder.start();
    assert.ok(await folder.store.getRun(run));
    fs.rmSync(path.join(folder.dir, 'runs'), { recursive: true });
    await waitFor('the file to leave the report', () => source.report().files.length === 1);
    assert.ok(await folder.store.getRun(run), 'the run and its history stay');
  });

  it('reports a Run naming an unknown App, and creates it once that App appears in another file', async () => {
    const [app, run] = [uniqueName('later'), uniqueName('run')];
    writeFile(folder.dir, 'run.yaml', runYaml(run, app));
    await folder.start();
    const report = folder.fileReport('run.yaml');
    assert.equal(report?.state, 'Error');
    assert.deepEqual(
      report?.errors.map((e) => [e.kind, e.name, e.field, e.reason]),
      [['Run', run, 'spec.app', `App "${app}" does not exist; the run is created once it does`]],
    );
    assert.equal(await folder.store.getRun(run), null);

    writeFile(folder.dir, 'app.yaml', appYaml(app));
    await waitFor('the run', () => folder.store.getRun(run));
    await waitFor('the run file to be synced', () => folder.fileReport('run.yaml')?.state === 'Synced');
  });

  it('holds a file whose Run document is invalid, like any other document', async () => {
    const app = uniqueName('app');
    writeFile(folder.dir, 'app.yaml', appYaml(app));
    writeFile(folder.dir, 'run.yaml', runYaml(uniqueName('run'), app).replace(`  app: ${app}\n`, `  app: ${app}\n  image: busybox\n`));
    await folder.start();
    const report = folder.fileReport('run.yaml');
    assert.equal(report?.state, 'Error');
    assert.deepEqual(
      report?.errors.map((e) => [e.kind, e.field, e.reason, e.line]),
      [['Run', 'spec.image', 'is not a known field', 7]],
    );
    assert.equal((await folder.store.listRuns()).total, 0);
  });
});
