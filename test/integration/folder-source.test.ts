import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Store } from '../../src/store/store';
import type { SyncEvent } from '../../src/sources/report';
import { tempDir, tempSqliteStore, uniqueName } from '../helpers/fixtures';
import { appYaml, documents, replaceFile, RunningSource, startFolderSource, writeFile } from '../helpers/folder';
import { waitFor } from '../helpers/wait';

describe('FolderSource: applying and pruning', function () {
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

  const start = async (): Promise<RunningSource> => (running = await startFolderSource(dir, store));
  const image = async (name: string): Promise<string | undefined> => (await store.getApp(name))?.spec.image;

  it('applies every manifest below the folder before it is ready, recording each file as the source', async () => {
    const [a, b] = [uniqueName('a'), uniqueName('b')];
    writeFile(dir, 'a.yaml', appYaml(a));
    writeFile(dir, 'team/b.yml', appYaml(b, { env: { WHO: 'world' }, labels: { team: 'data' } }));
    const { source } = await start();
    assert.equal(source.isReady(), true);
    assert.deepEqual(await source.readinessCheck().check(), { ready: true });
    const appA = await store.mustGetApp(a);
    assert.deepEqual(appA.status, { source: 'file:a.yaml', syncState: 'Synced' });
    const appB = await store.mustGetApp(b);
    assert.equal(appB.status.source, 'file:team/b.yml');
    assert.deepEqual(appB.spec.env, { WHO: 'world' });
    assert.deepEqual(appB.metadata.labels, { team: 'data' });
    const report = source.report();
    assert.equal(report.ready, true);
    assert.deepEqual(
      report.files.map((f) => [f.path, f.state, f.objects]),
      [
        ['a.yaml', 'Synced', [{ kind: 'App', name: a }]],
        ['team/b.yml', 'Synced', [{ kind: 'App', name: b }]],
      ],
    );
    assert.match(report.files[0].contentHash ?? '', /^[0-9a-f]{64}$/);
    assert.ok(report.files[0].lastAppliedAt);
  });

  it('applies an in-place edit and emits a sync event', async () => {
    const name = uniqueName('edit');
    writeFile(dir, 'app.yaml', appYaml(name));
    const { source } = await start();
    const events: SyncEvent[] = [];
    source.on('sync', (e) => events.push(e));
    const before = await store.mustGetApp(name);
    writeFile(dir, 'app.yaml', appYaml(name, { image: 'busybox:1.37' }));
    await waitFor('the edit to apply', async () => (await image(name)) === 'busybox:1.37');
    const after = await store.mustGetApp(name);
    assert.equal(after.metadata.generation, before.metadata.generation + 1);
    await waitFor('a sync event', () => events.find((e) => e.path === 'app.yaml' && e.change === 'Applied'));
  });

  it('applies an atomic replace (a temporary file renamed over the manifest)', async () => {
    const name = uniqueName('atomic');
    writeFile(dir, 'app.yaml', appYaml(name));
    await start();
    for (const tag of ['1.35', '1.36', '1.37']) {
      replaceFile(dir, 'app.yaml', appYaml(name, { image: `busybox:${tag}` }));
      await waitFor(`busybox:${tag} to apply`, async () => (await image(name)) === `busybox:${tag}`);
    }
    // The temporary file was a dotfile: it never became an App of its own, and the App never left.
    assert.equal((await store.listApps()).total, 1);
  });

  it('prunes the Apps of a deleted file, and forgets the file', async () => {
    const [keep, gone] = [uniqueName('keep'), uniqueName('gone')];
    writeFile(dir, 'keep.yaml', appYaml(keep));
    writeFile(dir, 'gone.yaml', appYaml(gone));
    const { source } = await start();
    fs.rmSync(path.join(dir, 'gone.yaml'));
    await waitFor('the App to be pruned', async () => (await store.getApp(gone)) === null);
    assert.ok(await store.getApp(keep));
    await waitFor('the file to leave the report', () => source.report().files.length === 1);
  });

  it('prunes only the App whose document left a multi-document file', async () => {
    const [first, second, third] = [uniqueName('one'), uniqueName('two'), uniqueName('three')];
    writeFile(dir, 'many.yaml', documents(appYaml(first), appYaml(second), appYaml(third)));
    await start();
    const kept = await store.mustGetApp(first);
    writeFile(dir, 'many.yaml', documents(appYaml(first), appYaml(third)));
    await waitFor('the removed document to be pruned', async () => (await store.getApp(second)) === null);
    assert.ok(await store.getApp(third));
    assert.equal((await store.mustGetApp(first)).metadata.resourceVersion, kept.metadata.resourceVersion, 'untouched documents are not rewritten');
  });

  it('follows a new sub-folder and prunes when a sub-folder is removed', async () => {
    await start();
    const [x, y] = [uniqueName('x'), uniqueName('y')];
    fs.mkdirSync(path.join(dir, 'new/deeper'), { recursive: true });
    writeFile(dir, 'new/x.yaml', appYaml(x));
    writeFile(dir, 'new/deeper/y.yaml', appYaml(y));
    await waitFor('Apps of the new folder', async () => (await store.getApp(x)) && (await store.getApp(y)));
    assert.equal((await store.mustGetApp(y)).status.source, 'file:new/deeper/y.yaml');
    fs.rmSync(path.join(dir, 'new'), { recursive: true });
    await waitFor('Apps of the removed folder to be pruned', async () => (await store.listApps()).total === 0);
  });

  it('applies a burst of 200 files completely, none half-written', async () => {
    const { source } = await start();
    const prefix = uniqueName('burst');
    const names = Array.from({ length: 200 }, (_, i) => `${prefix}-${i}`);
    // Each file written in two halves, like a slow writer: the first half alone is invalid YAML.
    for (const name of names) {
      const text = appYaml(name, { env: { SIZE: 'x'.repeat(2000) } });
      const file = path.join(dir, 'burst', `${name}.yaml`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fd = fs.openSync(file, 'w');
      fs.writeSync(fd, text.slice(0, text.length / 2));
      fs.writeSync(fd, text.slice(text.length / 2));
      fs.closeSync(fd);
    }
    await waitFor('all 200 Apps', async () => (await store.listApps({ sources: names.map((n) => `file:burst/${n}.yaml` as const) })).total === 200);
    await source.whenIdle();
    const { items } = await store.listApps();
    assert.ok(items.every((app) => app.spec.env.SIZE?.length === 2000 && app.status.syncState === 'Synced'));
    assert.deepEqual(source.report().summary, { files: 200, synced: 200, error: 0 });
  });

  it('ignores dotfiles, dot-folders, editor temp files and other extensions', async () => {
    const names = Array.from({ length: 6 }, () => uniqueName('ignored'));
    writeFile(dir, '.hidden.yaml', appYaml(names[0]));
    writeFile(dir, '.git/config.yaml', appYaml(names[1]));
    writeFile(dir, 'app.yaml~', appYaml(names[2]));
    writeFile(dir, '.app.yaml.swp', appYaml(names[3]));
    writeFile(dir, 'notes.txt', appYaml(names[4]));
    writeFile(dir, 'app.json', appYaml(names[5]));
    const { source } = await start();
    const visible = uniqueName('visible');
    writeFile(dir, '.#lock.yaml', appYaml(uniqueName('lock')));
    writeFile(dir, '4913', 'vim write check');
    writeFile(dir, 'visible.yaml', appYaml(visible));
    await waitFor('the visible App', () => store.getApp(visible));
    await source.whenIdle();
    assert.equal((await store.listApps()).total, 1);
    assert.deepEqual(source.report().files.map((f) => f.path), ['visible.yaml']);
  });

  it('applies and prunes what changed while it was not running, before it is ready', async () => {
    const [edited, deleted, added, untouched] = [uniqueName('edited'), uniqueName('deleted'), uniqueName('added'), uniqueName('same')];
    writeFile(dir, 'edited.yaml', appYaml(edited));
    writeFile(dir, 'deleted.yaml', appYaml(deleted));
    writeFile(dir, 'sub/untouched.yaml', appYaml(untouched));
    await (await start()).stop();
    running = undefined;
    const before = await store.mustGetApp(untouched);

    writeFile(dir, 'edited.yaml', appYaml(edited, { image: 'busybox:1.37' }));
    fs.rmSync(path.join(dir, 'deleted.yaml'));
    writeFile(dir, 'added.yaml', appYaml(added));
    await start();
    // No waiting: ready means reconciled.
    assert.equal(await image(edited), 'busybox:1.37');
    assert.equal(await store.getApp(deleted), null);
    assert.ok(await store.getApp(added));
    assert.equal((await store.mustGetApp(untouched)).metadata.resourceVersion, before.metadata.resourceVersion);
  });

  it('prunes the Apps of a whole folder deleted while it was not running', async () => {
    const name = uniqueName('offline');
    writeFile(dir, 'gone/app.yaml', appYaml(name));
    await (await start()).stop();
    running = undefined;
    fs.rmSync(path.join(dir, 'gone'), { recursive: true });
    await start();
    assert.equal(await store.getApp(name), null);
  });

  it('moves an App between files without deleting it, in one change', async () => {
    const name = uniqueName('moved');
    writeFile(dir, 'a.yaml', appYaml(name));
    const { source } = await start();
    const before = await store.mustGetApp(name);
    // As `git mv a.yaml b.yaml` would: the new file and the old one's removal arrive together.
    fs.renameSync(path.join(dir, 'a.yaml'), path.join(dir, 'b.yaml'));
    await waitFor('the App to belong to b.yaml', async () => (await store.getApp(name))?.status.source === 'file:b.yaml');
    await source.whenIdle();
    const after = await store.mustGetApp(name);
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.deepEqual(source.report().files.map((f) => [f.path, f.state]), [['b.yaml', 'Synced']]);
  });

  it('refuses to start on a folder that does not exist', async () => {
    await assert.rejects(startFolderSource(path.join(dir, 'missing'), store), { name: 'ConfigError', message: /does not exist/ });
  });
});
