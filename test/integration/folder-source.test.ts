import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { SyncEvent } from '../../src/sources/report';
import { uniqueName } from '../helpers/fixtures';
import { appYaml, documents, replaceFile, startFolderSource, useFolderSource, writeFile } from '../helpers/folder';
import { waitFor } from '../helpers/wait';

describe('FolderSource: applying and pruning', function () {
  const folder = useFolderSource();

  const image = async (name: string): Promise<string | undefined> => (await folder.store.getApp(name))?.spec.image;

  it('applies every manifest below the folder before it is ready, recording each file as the source', async () => {
    const [a, b] = [uniqueName('a'), uniqueName('b')];
    writeFile(folder.dir, 'a.yaml', appYaml(a));
    writeFile(folder.dir, 'team/b.yml', appYaml(b, { env: { WHO: 'world' }, labels: { team: 'data' } }));
    const { source } = await folder.start();
    assert.equal(source.isReady(), true);
    assert.deepEqual(await source.readinessCheck().check(), { ready: true });
    const appA = await folder.store.mustGetApp(a);
    assert.deepEqual(appA.status, { source: 'file:a.yaml', syncState: 'Synced' });
    const appB = await folder.store.mustGetApp(b);
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
    writeFile(folder.dir, 'app.yaml', appYaml(name));
    const { source } = await folder.start();
    const events: SyncEvent[] = [];
    source.on('sync', (e) => events.push(e));
    const before = await folder.store.mustGetApp(name);
    writeFile(folder.dir, 'app.yaml', appYaml(name, { image: 'busybox:1.37' }));
    await waitFor('the edit to apply', async () => (await image(name)) === 'busybox:1.37');
    const after = await folder.store.mustGetApp(name);
    assert.equal(after.metadata.generation, before.metadata.generation + 1);
    await waitFor('a sync event', () => events.find((e) => e.path === 'app.yaml' && e.change === 'Applied'));
  });

  it('applies an atomic replace (a temporary file renamed over the manifest)', async () => {
    const name = uniqueName('atomic');
    writeFile(folder.dir, 'app.yaml', appYaml(name));
    await folder.start();
    for (const tag of ['1.35', '1.36', '1.37']) {
      replaceFile(folder.dir, 'app.yaml', appYaml(name, { image: `busybox:${tag}` }));
      await waitFor(`busybox:${tag} to apply`, async () => (await image(name)) === `busybox:${tag}`);
    }
    // The temporary file was a dotfile: it never became an App of its own, and the App never left.
    assert.equal((await folder.store.listApps()).total, 1);
  });

  it('prunes the Apps of a deleted file, and forgets the file', async () => {
    const [keep, gone] = [uniqueName('keep'), uniqueName('gone')];
    writeFile(folder.dir, 'keep.yaml', appYaml(keep));
    writeFile(folder.dir, 'gone.yaml', appYaml(gone));
    const { source } = await folder.start();
    fs.rmSync(path.join(folder.dir, 'gone.yaml'));
    await waitFor('the App to be pruned', async () => (await folder.store.getApp(gone)) === null);
    assert.ok(await folder.store.getApp(keep));
    await waitFor('the file to leave the report', () => source.report().files.length === 1);
  });

  it('prunes only the App whose document left a multi-document file', async () => {
    const [first, second, third] = [uniqueName('one'), uniqueName('two'), uniqueName('three')];
    writeFile(folder.dir, 'many.yaml', documents(appYaml(first), appYaml(second), appYaml(third)));
    await folder.start();
    const kept = await folder.store.mustGetApp(first);
    writeFile(folder.dir, 'many.yaml', documents(appYaml(first), appYaml(third)));
    await waitFor('the removed document to be pruned', async () => (await folder.store.getApp(second)) === null);
    assert.ok(await folder.store.getApp(third));
    assert.equal((await folder.store.mustGetApp(first)).metadata.resourceVersion, kept.metadata.resourceVersion, 'untouched documents are not rewritten');
  });

  it('follows a new sub-folder and prunes when a sub-folder is removed', async () => {
    await folder.start();
    const [x, y] = [uniqueName('x'), uniqueName('y')];
    fs.mkdirSync(path.join(folder.dir, 'new/deeper'), { recursive: true });
    writeFile(folder.dir, 'new/x.yaml', appYaml(x));
    writeFile(folder.dir, 'new/deeper/y.yaml', appYaml(y));
    await waitFor('Apps of the new folder', async () => (await folder.store.getApp(x)) && (await folder.store.getApp(y)));
    assert.equal((await folder.store.mustGetApp(y)).status.source, 'file:new/deeper/y.yaml');
    fs.rmSync(path.join(folder.dir, 'new'), { recursive: true });
    await waitFor('Apps of the removed folder to be pruned', async () => (await folder.store.listApps()).total === 0);
  });

  it('applies a burst of 200 files completely, none half-written', async () => {
    const { source } = await folder.start();
    const prefix = uniqueName('burst');
    const names = Array.from({ length: 200 }, (_, i) => `${prefix}-${i}`);
    // Each file written in two halves, like a slow writer: the first half alone is invalid YAML.
    for (const name of names) {
      const text = appYaml(name, { env: { SIZE: 'x'.repeat(2000) } });
      const file = path.join(folder.dir, 'burst', `${name}.yaml`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fd = fs.openSync(file, 'w');
      fs.writeSync(fd, text.slice(0, text.length / 2));
      fs.writeSync(fd, text.slice(text.length / 2));
      fs.closeSync(fd);
    }
    await waitFor('all 200 Apps', async () => (await folder.store.listApps({ sources: names.map((n) => `file:burst/${n}.yaml` as const) })).total === 200);
    await source.whenIdle();
    const { items } = await folder.store.listApps();
    assert.ok(items.every((app) => app.spec.env.SIZE?.length === 2000 && app.status.syncState === 'Synced'));
    assert.deepEqual(source.report().summary, { files: 200, synced: 200, error: 0 });
  });

  it('ignores dotfiles, dot-folders, editor temp files and other extensions', async () => {
    const names = Array.from({ length: 6 }, () => uniqueName('ignored'));
    writeFile(folder.dir, '.hidden.yaml', appYaml(names[0]));
    writeFile(folder.dir, '.git/config.yaml', appYaml(names[1]));
    writeFile(folder.dir, 'app.yaml~', appYaml(names[2]));
    writeFile(folder.dir, '.app.yaml.swp', appYaml(names[3]));
    writeFile(folder.dir, 'notes.txt', appYaml(names[4]));
    writeFile(folder.dir, 'app.json', appYaml(names[5]));
    const { source } = await folder.start();
    const visible = uniqueName('visible');
    writeFile(folder.dir, '.#lock.yaml', appYaml(uniqueName('lock')));
    writeFile(folder.dir, '4913', 'vim write check');
    writeFile(folder.dir, 'visible.yaml', appYaml(visible));
    await waitFor('the visible App', () => folder.store.getApp(visible));
    await source.whenIdle();
    assert.equal((await folder.store.listApps()).total, 1);
    assert.deepEqual(
      source.report().files.map((f) => f.path),
      ['visible.yaml'],
    );
  });

  it('applies and prunes what changed while it was not running, before it is ready', async () => {
    const [edited, deleted, added, untouched] = [uniqueName('edited'), uniqueName('deleted'), uniqueName('added'), uniqueName('same')];
    writeFile(folder.dir, 'edited.yaml', appYaml(edited));
    writeFile(folder.dir, 'deleted.yaml', appYaml(deleted));
    writeFile(folder.dir, 'sub/untouched.yaml', appYaml(untouched));
    await folder.start();
    await folder.stop();
    const before = await folder.store.mustGetApp(untouched);

    writeFile(folder.dir, 'edited.yaml', appYaml(edited, { image: 'busybox:1.37' }));
    fs.rmSync(path.join(folder.dir, 'deleted.yaml'));
    writeFile(folder.dir, 'added.yaml', appYaml(added));
    await folder.start();
    // No waiting: ready means reconciled.
    assert.equal(await image(edited), 'busybox:1.37');
    assert.equal(await folder.store.getApp(deleted), null);
    assert.ok(await folder.store.getApp(added));
    assert.equal((await folder.store.mustGetApp(untouched)).metadata.resourceVersion, before.metadata.resourceVersion);
  });

  it('prunes the Apps of a whole folder deleted while it was not running', async () => {
    const name = uniqueName('offline');
    writeFile(folder.dir, 'gone/app.yaml', appYaml(name));
    await folder.start();
    await folder.stop();
    fs.rmSync(path.join(folder.dir, 'gone'), { recursive: true });
    await folder.start();
    assert.equal(await folder.store.getApp(name), null);
  });

  it('moves an App between files without deleting it, in one change', async () => {
    const name = uniqueName('moved');
    writeFile(folder.dir, 'a.yaml', appYaml(name));
    const { source } = await folder.start();
    const before = await folder.store.mustGetApp(name);
    // As `git mv a.yaml b.yaml` would: the new file and the old one's removal arrive together.
    fs.renameSync(path.join(folder.dir, 'a.yaml'), path.join(folder.dir, 'b.yaml'));
    await waitFor('the App to belong to b.yaml', async () => (await folder.store.getApp(name))?.status.source === 'file:b.yaml');
    await source.whenIdle();
    const after = await folder.store.mustGetApp(name);
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.deepEqual(
      source.report().files.map((f) => [f.path, f.state]),
      [['b.yaml', 'Synced']],
    );
  });

  it('refuses to start on a folder that does not exist', async () => {
    await assert.rejects(startFolderSource(path.join(folder.dir, 'missing'), folder.store), { name: 'ConfigError', message: /does not exist/ });
  });
});
