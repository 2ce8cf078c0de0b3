import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import type { Store } from '../../src/store/store';
import type { FileReport } from '../../src/sources/report';
import { appSpec, tempDir, tempSqliteStore, uniqueName } from '../helpers/fixtures';
import { appYaml, documents, RunningSource, startFolderSource, writeFile } from '../helpers/folder';
import { waitFor } from '../helpers/wait';

describe('FolderSource: held files, conflicts and ownership', function () {
  let dir: string;
  let store: Store;
  let running: RunningSource | undefined;

  beforeEach(async () => {
    dir = tempDir('berth-apps-');
    ({ store } = await tempSqliteStore());
  });

  afterEach(async () => {
    await running?.stop();
    running = undefined;
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = async (registry?: Registry): Promise<RunningSource> => (running = await startFolderSource(dir, store, { registry }));
  const fileReport = (p: string): FileReport | undefined => running?.source.report().files.find((f) => f.path === p);

  it('holds a file with broken YAML at its last good state, reports line and column, and applies the fix', async () => {
    const [kept, other] = [uniqueName('kept'), uniqueName('other')];
    writeFile(dir, 'app.yaml', documents(appYaml(kept), appYaml(other)));
    await start();
    const good = fileReport('app.yaml');
    // The second App's document is dropped and the first is edited, but the YAML is broken.
    writeFile(dir, 'app.yaml', `${appYaml(kept, { image: 'busybox:1.37' })}  env: [unclosed\n`);
    const held = await waitFor('the file to be held', () => (fileReport('app.yaml')?.state === 'Error' ? fileReport('app.yaml') : undefined));
    assert.equal(held.errors[0].field, '(yaml)');
    assert.equal(held.errors[0].line, 9);
    assert.equal(typeof held.errors[0].column, 'number');
    assert.equal(held.contentHash, good?.contentHash, 'the hash is that of the content last applied');
    assert.equal(held.lastAppliedAt, good?.lastAppliedAt);
    assert.deepEqual(held.objects.map((o) => o.name).sort(), [kept, other].sort());
    // Nothing changed, nothing pruned; the Apps say why they are stale.
    const app = await waitFor('the App to be marked', async () => {
      const found = await store.getApp(kept);
      return found?.status.syncState === 'Error' ? found : undefined;
    });
    assert.equal(app.spec.image, 'busybox:1.36');
    assert.match(app.status.syncMessage ?? '', /^file:app\.yaml is not applied: \(yaml\): .* at line 9, column \d+/);
    assert.ok(await store.getApp(other));

    writeFile(dir, 'app.yaml', appYaml(kept, { image: 'busybox:1.37' }));
    await waitFor('the fix to apply', async () => (await store.getApp(kept))?.spec.image === 'busybox:1.37');
    await waitFor('the dropped App to be pruned', async () => (await store.getApp(other)) === null);
    const fixed = await store.mustGetApp(kept);
    assert.deepEqual(fixed.status, { source: 'file:app.yaml', syncState: 'Synced' });
    assert.equal(fileReport('app.yaml')?.state, 'Synced');
    assert.deepEqual(fileReport('app.yaml')?.errors, []);
  });

  it('holds the whole file when one document is invalid, naming the document, field, line and column', async () => {
    const [first, second] = [uniqueName('first'), uniqueName('second')];
    writeFile(dir, 'two.yaml', documents(appYaml(first), appYaml(second)));
    await start();
    const broken = appYaml(second).replace('  image: busybox:1.36\n', '  image: busybox:1.36\n  retries: lots\n');
    writeFile(dir, 'two.yaml', documents(appYaml(first, { image: 'busybox:1.37' }), broken));
    const held = await waitFor('the file to be held', () => (fileReport('two.yaml')?.state === 'Error' ? fileReport('two.yaml') : undefined));
    assert.deepEqual(held.errors, [
      { document: 1, kind: 'App', name: second, field: 'spec.retries', reason: held.errors[0].reason, line: 15, column: 12 },
    ]);
    assert.match(held.errors[0].reason, /integer/);
    // The valid first document did not apply either: a file applies whole or not at all.
    assert.equal((await store.mustGetApp(first)).spec.image, 'busybox:1.36');
  });

  it('reports an unknown apiVersion or kind, and a new file with errors creates nothing', async () => {
    await start();
    const name = uniqueName('unknown');
    writeFile(dir, 'bad.yaml', documents(appYaml(name).replace('berth.dev/v1', 'berth.dev/v2'), appYaml(uniqueName('b')).replace('kind: App', 'kind: Deployment')));
    const held = await waitFor('the file to be held', () => (fileReport('bad.yaml')?.state === 'Error' ? fileReport('bad.yaml') : undefined));
    assert.deepEqual(
      held.errors.map((e) => [e.document, e.field, e.line, e.column]),
      [
        [0, 'apiVersion', 1, 13],
        [1, 'kind', 10, 7],
      ],
    );
    assert.match(held.errors[0].reason, /must be berth\.dev\/v1 \(found "berth\.dev\/v2"\)/);
    assert.match(held.errors[1].reason, /must be App or Run \(found "Deployment"\)/);
    assert.equal((await store.listApps()).total, 0);
    assert.equal(held.lastAppliedAt, undefined);
  });

  it('never prunes an App made through the API, and reports a file that declares its name', async () => {
    const apiMade = uniqueName('api');
    await store.createApp({ name: apiMade, spec: appSpec(), source: 'api' });
    writeFile(dir, 'other.yaml', appYaml(uniqueName('other')));
    await start();
    assert.ok(await store.getApp(apiMade), 'the start-up scan does not prune it');

    writeFile(dir, 'claims.yaml', appYaml(apiMade, { image: 'busybox:1.37' }));
    const held = await waitFor('the conflict', () => (fileReport('claims.yaml')?.state === 'Error' ? fileReport('claims.yaml') : undefined));
    assert.equal(held.errors[0].field, 'metadata.name');
    assert.match(held.errors[0].reason, /already exists and was created through the API \(source: api\)/);
    const app = await store.mustGetApp(apiMade);
    assert.equal(app.spec.image, appSpec().image);
    assert.equal(app.status.source, 'api');

    // Once the API-made App is gone, the file's declaration applies.
    await store.deleteApp(apiMade);
    await waitFor('the file to take the name', async () => (await store.getApp(apiMade))?.status.source === 'file:claims.yaml');
  });

  it('reports the same name in two files on the later one, naming the owner, and applies it once the owner lets go', async () => {
    const name = uniqueName('shared');
    writeFile(dir, 'a.yaml', appYaml(name));
    await start();
    writeFile(dir, 'b.yaml', appYaml(name, { image: 'busybox:1.37' }));
    const held = await waitFor('the conflict', () => (fileReport('b.yaml')?.state === 'Error' ? fileReport('b.yaml') : undefined));
    assert.match(held.errors[0].reason, new RegExp(`App "${name}" is already declared by file:a\\.yaml`));
    const before = await store.mustGetApp(name);
    assert.equal(before.spec.image, 'busybox:1.36');
    assert.equal(fileReport('a.yaml')?.state, 'Synced');

    // a.yaml drops the App: b.yaml is retried and takes it over, with no change needed to b.yaml.
    writeFile(dir, 'a.yaml', appYaml(uniqueName('else')));
    await waitFor('b.yaml to own the App', async () => (await store.getApp(name))?.status.source === 'file:b.yaml');
    const after = await store.mustGetApp(name);
    assert.equal(after.spec.image, 'busybox:1.37');
    assert.equal(after.metadata.uid, before.metadata.uid, 'handed over, not pruned and re-created');
    await waitFor('b.yaml to be synced', () => fileReport('b.yaml')?.state === 'Synced');
  });

  it('at start-up, gives a name declared by two new files to the first path and reports the second', async () => {
    const name = uniqueName('twice');
    writeFile(dir, 'a.yaml', appYaml(name));
    writeFile(dir, 'b.yaml', appYaml(name, { image: 'busybox:1.37' }));
    await start();
    assert.equal((await store.mustGetApp(name)).status.source, 'file:a.yaml');
    assert.equal(fileReport('b.yaml')?.state, 'Error');
    assert.match(fileReport('b.yaml')?.errors[0].reason ?? '', /already declared by file:a\.yaml/);
  });

  it('counts files by state in berth_source_files and times passes in berth_source_apply_seconds', async () => {
    const registry = new Registry();
    writeFile(dir, 'good.yaml', appYaml(uniqueName('good')));
    writeFile(dir, 'bad.yaml', 'kind: [');
    await start(registry);
    const text = await registry.metrics();
    assert.match(text, /berth_source_files\{state="Synced"\} 1/);
    assert.match(text, /berth_source_files\{state="Error"\} 1/);
    assert.match(text, /berth_source_apply_seconds_count [1-9]/);
  });

  it('reports a file larger than the limit without applying it', async () => {
    const name = uniqueName('large');
    writeFile(dir, 'large.yaml', `${appYaml(name)}# ${'x'.repeat(2048)}\n`);
    running = await startFolderSource(dir, store, { maxFileBytes: 1024 });
    assert.equal(await store.getApp(name), null);
    assert.match(fileReport('large.yaml')?.errors[0].reason ?? '', /manifest files may be at most 1024/);
  });

  it('reports the commit when the folder is a git work tree', async function () {
    const git = (args: string) => require('node:child_process').execSync(`git ${args}`, { cwd: dir, stdio: 'pipe' }).toString().trim();
    try {
      git('init -q');
    } catch {
      this.skip();
    }
    writeFile(dir, 'app.yaml', appYaml(uniqueName('git')));
    git('add app.yaml');
    git('-c user.email=t@example.com -c user.name=t commit -qm first');
    const head = git('rev-parse HEAD');
    await start();
    await waitFor('the commit in the report', () => running?.source.report().git?.commit === head);
  });
});
