import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { appYaml, documents, RunningSource, useFolderSource, writeFile } from '../helpers/folder';
import { waitFor } from '../helpers/wait';

describe('FolderSource: held files, conflicts and ownership', function () {
  const folder = useFolderSource();

  // Without a registry of its own, the source counts into the process-wide one (src/metrics.ts).
  const start = (registry?: Registry): Promise<RunningSource> => folder.start({ registry });

  it('holds a file with broken YAML at its last good state, reports line and column, and applies the fix', async () => {
    const [kept, other] = [uniqueName('kept'), uniqueName('other')];
    writeFile(folder.dir, 'app.yaml', documents(appYaml(kept), appYaml(other)));
    await start();
    const good = folder.fileReport('app.yaml');
    // The second App's document is dropped and the first is edited, but the YAML is broken.
    writeFile(folder.dir, 'app.yaml', `${appYaml(kept, { image: 'busybox:1.37' })}  env: [unclosed\n`);
    const held = await waitFor('the file to be held', () => (folder.fileReport('app.yaml')?.state === 'Error' ? folder.fileReport('app.yaml') : undefined));
    assert.equal(held.errors[0].field, '(yaml)');
    assert.equal(held.errors[0].line, 9);
    assert.equal(typeof held.errors[0].column, 'number');
    assert.equal(held.contentHash, good?.contentHash, 'the hash is that of the content last applied');
    assert.equal(held.lastAppliedAt, good?.lastAppliedAt);
    assert.deepEqual(held.objects.map((o) => o.name).sort(), [kept, other].sort());
    // Nothing changed, nothing pruned; the Apps say why they are stale.
    const app = await waitFor('the App to be marked', async () => {
      const found = await folder.store.getApp(kept);
      return found?.status.syncState === 'Error' ? found : undefined;
    });
    assert.equal(app.spec.image, 'busybox:1.36');
    assert.match(app.status.syncMessage ?? '', /^file:app\.yaml is not applied: \(yaml\): .* at line 9, column \d+/);
    assert.ok(await folder.store.getApp(other));

    writeFile(folder.dir, 'app.yaml', appYaml(kept, { image: 'busybox:1.37' }));
    await waitFor('the fix to apply', async () => (await folder.store.getApp(kept))?.spec.image === 'busybox:1.37');
    await waitFor('the dropped App to be pruned', async () => (await folder.store.getApp(other)) === null);
    // The report is written once the pass's store writes are done: wait for it, not for the writes.
    const report = await waitFor('the file to be reported synced', () =>
      folder.fileReport('app.yaml')?.state === 'Synced' ? folder.fileReport('app.yaml') : undefined,
    );
    assert.deepEqual(report.errors, []);
    const fixed = await folder.store.mustGetApp(kept);
    assert.deepEqual(fixed.status, { source: 'file:app.yaml', syncState: 'Synced' });
  });

  it('holds the whole file when one document is invalid, naming the document, field, line and column', async () => {
    const [first, second] = [uniqueName('first'), uniqueName('second')];
    writeFile(folder.dir, 'two.yaml', documents(appYaml(first), appYaml(second)));
    await start();
    const broken = appYaml(second).replace('  image: busybox:1.36\n', '  image: busybox:1.36\n  retries: lots\n');
    writeFile(folder.dir, 'two.yaml', documents(appYaml(first, { image: 'busybox:1.37' }), broken));
    const held = await waitFor('the file to be held', () => (folder.fileReport('two.yaml')?.state === 'Error' ? folder.fileReport('two.yaml') : undefined));
    assert.deepEqual(held.errors, [{ document: 1, kind: 'App', name: second, field: 'spec.retries', reason: held.errors[0].reason, line: 15, column: 12 }]);
    assert.match(held.errors[0].reason, /integer/);
    // The valid first document did not apply either: a file applies whole or not at all.
    assert.equal((await folder.store.mustGetApp(first)).spec.image, 'busybox:1.36');
  });

  it('reports an unknown apiVersion or kind, and a new file with errors creates nothing', async () => {
    await start();
    const name = uniqueName('unknown');
    writeFile(
      folder.dir,
      'bad.yaml',
      documents(appYaml(name).replace('berth.dev/v1', 'berth.dev/v2'), appYaml(uniqueName('b')).replace('kind: App', 'kind: Deployment')),
    );
    const held = await waitFor('the file to be held', () => (folder.fileReport('bad.yaml')?.state === 'Error' ? folder.fileReport('bad.yaml') : undefined));
    assert.deepEqual(
      held.errors.map((e) => [e.document, e.field, e.line, e.column]),
      [
        [0, 'apiVersion', 1, 13],
        [1, 'kind', 10, 7],
      ],
    );
    assert.match(held.errors[0].reason, /must be berth\.dev\/v1 \(found "berth\.dev\/v2"\)/);
    assert.match(held.errors[1].reason, /must be App or Run \(found "Deployment"\)/);
    assert.equal((await folder.store.listApps()).total, 0);
    assert.equal(held.lastAppliedAt, undefined);
  });

  it('never prunes an App made through the API, and reports a file that declares its name', async () => {
    const apiMade = uniqueName('api');
    await folder.store.createApp({ name: apiMade, spec: appSpec(), source: 'api' });
    writeFile(folder.dir, 'other.yaml', appYaml(uniqueName('other')));
    await start();
    assert.ok(await folder.store.getApp(apiMade), 'the start-up scan does not prune it');

    writeFile(folder.dir, 'claims.yaml', appYaml(apiMade, { image: 'busybox:1.37' }));
    const held = await waitFor('the conflict', () => (folder.fileReport('claims.yaml')?.state === 'Error' ? folder.fileReport('claims.yaml') : undefined));
    assert.equal(held.errors[0].field, 'metadata.name');
    assert.match(held.errors[0].reason, /already exists and was created through the API \(source: api\)/);
    const app = await folder.store.mustGetApp(apiMade);
    assert.equal(app.spec.image, appSpec().image);
    assert.equal(app.status.source, 'api');

    // Once the API-made App is gone, the file's declaration applies.
    await folder.store.deleteApp(apiMade);
    await waitFor('the file to take the name', async () => (await folder.store.getApp(apiMade))?.status.source === 'file:claims.yaml');
  });

  it('reports the same name in two files on the later one, naming the owner, and applies it once the owner lets go', async () => {
    const name = uniqueName('shared');
    writeFile(folder.dir, 'a.yaml', appYaml(name));
    await start();
    writeFile(folder.dir, 'b.yaml', appYaml(name, { image: 'busybox:1.37' }));
    const held = await waitFor('the conflict', () => (folder.fileReport('b.yaml')?.state === 'Error' ? folder.fileReport('b.yaml') : undefined));
    assert.match(held.errors[0].reason, new RegExp(`App "${name}" is already declared by file:a\\.yaml`));
    const before = await folder.store.mustGetApp(name);
    assert.equal(before.spec.image, 'busybox:1.36');
    assert.equal(folder.fileReport('a.yaml')?.state, 'Synced');

    // a.yaml drops the App: b.yaml is retried and takes it over, with no change needed to b.yaml.
    writeFile(folder.dir, 'a.yaml', appYaml(uniqueName('else')));
    await waitFor('b.yaml to own the App', async () => (await folder.store.getApp(name))?.status.source === 'file:b.yaml');
    const after = await folder.store.mustGetApp(name);
    assert.equal(after.spec.image, 'busybox:1.37');
    assert.equal(after.metadata.uid, before.metadata.uid, 'handed over, not pruned and re-created');
    await waitFor('b.yaml to be synced', () => folder.fileReport('b.yaml')?.state === 'Synced');
  });

  it('at start-up, gives a name declared by two new files to the first path and reports the second', async () => {
    const name = uniqueName('twice');
    writeFile(folder.dir, 'a.yaml', appYaml(name));
    writeFile(folder.dir, 'b.yaml', appYaml(name, { image: 'busybox:1.37' }));
    await start();
    assert.equal((await folder.store.mustGetApp(name)).status.source, 'file:a.yaml');
    assert.equal(folder.fileReport('b.yaml')?.state, 'Error');
    assert.match(folder.fileReport('b.yaml')?.errors[0].reason ?? '', /already declared by file:a\.yaml/);
  });

  it('counts files by state in berth_source_files and times passes in berth_source_apply_seconds', async () => {
    const registry = new Registry();
    writeFile(folder.dir, 'good.yaml', appYaml(uniqueName('good')));
    writeFile(folder.dir, 'bad.yaml', 'kind: [');
    await start(registry);
    const text = await registry.metrics();
    assert.match(text, /berth_source_files\{state="Synced"\} 1/);
    assert.match(text, /berth_source_files\{state="Error"\} 1/);
    assert.match(text, /berth_source_apply_seconds_count [1-9]/);
  });

  it('reports a file larger than the limit without applying it', async () => {
    const name = uniqueName('large');
    writeFile(folder.dir, 'large.yaml', `${appYaml(name)}# ${'x'.repeat(2048)}\n`);
    await folder.start({ maxFileBytes: 1024 });
    assert.equal(await folder.store.getApp(name), null);
    assert.match(folder.fileReport('large.yaml')?.errors[0].reason ?? '', /manifest files may be at most 1024/);
  });

  it('reports the commit when the folder is a git work tree', async () => {
    // git is provisioned (.ci/provision): without it this fails, never skips.
    const git = (args: string) => require('node:child_process').execSync(`git ${args}`, { cwd: folder.dir, stdio: 'pipe' }).toString().trim();
    git('init -q');
    writeFile(folder.dir, 'app.yaml', appYaml(uniqueName('git')));
    git('add app.yaml');
    git('-c user.email=t@example.com -c user.name=t commit -qm first');
    const head = git('rev-parse HEAD');
    await start();
    await waitFor('the commit in the report', () => folder.running?.source.report().git?.commit === head);
  });
});
