import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir, uniqueName } from '../helpers/fixtures';
import { appYaml, startFolderSource, useFolderSource, writeFile } from '../helpers/folder';
import { waitFor } from '../helpers/wait';

/** Points `link` at `target` in one step, as git-sync does: a new link renamed over the old one. */
function swapLink(link: string, target: string): void {
  const temp = `${link}.${process.pid}.tmp`;
  fs.symlinkSync(target, temp);
  fs.renameSync(temp, link);
}

/** The inode numbers this process's inotify instances watch (Linux: /proc/self/fdinfo), i.e. what chokidar watches. */
function watchedInodes(): Set<number> {
  const inodes = new Set<number>();
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    const target = (() => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })();
    if (target !== 'anon_inode:inotify') continue;
    for (const match of fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').matchAll(/^inotify wd:\S+ ino:([0-9a-f]+)/gm)) inodes.add(parseInt(match[1], 16));
  }
  return inodes;
}

describe('FolderSource: symbolic links', function () {
  const folder = useFolderSource();
  let outside: string;
  /** An App and a value that exist only outside the apps folder: neither may show up anywhere. */
  let foreign: { app: string; marker: string };

  beforeEach(() => {
    outside = tempDir('berth-outside-');
    foreign = { app: uniqueName('foreign'), marker: uniqueName('marker') };
    writeFile(outside, 'secret.yaml', appYaml(foreign.app, { env: { TOKEN: foreign.marker } }));
    writeFile(outside, 'nested/other.yaml', appYaml(uniqueName('foreign'), { env: { TOKEN: foreign.marker } }));
  });
  afterEach(() => fs.rmSync(outside, { recursive: true, force: true }));

  /** Asserts nothing from beyond the apps folder was applied, echoed or watched. */
  async function assertNothingForeign(): Promise<void> {
    const watched = watchedInodes();
    assert.ok(watched.size > 0, 'the folder source watches nothing at all');
    for (const folder of [outside, path.join(outside, 'nested')])
      assert.ok(!watched.has(fs.statSync(folder).ino), `${folder}, outside the apps folder, is watched`);
    assert.equal(await folder.store.getApp(foreign.app), null);
    const apps = await folder.store.listApps();
    assert.ok(
      apps.items.every((app) => app.spec.env.TOKEN !== foreign.marker),
      'an App carries a value from outside the folder',
    );
    const report = JSON.stringify(folder.running?.source.report());
    for (const leak of [foreign.app, foreign.marker, 'other.yaml', 'nested'])
      assert.ok(!report.includes(leak), `/sources/ shows "${leak}" from outside: ${report}`);
  }

  const outsideReason = (_link: string, target: string, dir: string) =>
    `is a symbolic link to ${target}, which leads outside the apps folder (${fs.realpathSync(dir)}); links may only point inside it, so it is not followed`;

  it('reports links leading outside at start-up, one error each naming the link and its target, and follows none', async () => {
    const own = uniqueName('own');
    writeFile(folder.dir, 'own.yaml', appYaml(own));
    fs.symlinkSync(outside, path.join(folder.dir, 'elsewhere'));
    fs.symlinkSync(path.join(outside, 'secret.yaml'), path.join(folder.dir, 'borrowed.yaml'));
    fs.symlinkSync('/', path.join(folder.dir, 'host'));
    const { source } = await folder.start();

    assert.equal((await folder.store.mustGetApp(own)).status.source, 'file:own.yaml');
    const report = source.report();
    assert.deepEqual(
      report.files.map((f) => [f.path, f.state, f.objects]),
      [
        ['borrowed.yaml', 'Error', []],
        ['elsewhere', 'Error', []],
        ['host', 'Error', []],
        ['own.yaml', 'Synced', [{ kind: 'App', name: own }]],
      ],
    );
    assert.deepEqual(folder.fileReport('elsewhere')?.errors, [{ field: '(file)', reason: outsideReason('elsewhere', outside, folder.dir) }]);
    assert.deepEqual(folder.fileReport('host')?.errors, [{ field: '(file)', reason: outsideReason('host', '/', folder.dir) }]);
    assert.deepEqual(folder.fileReport('borrowed.yaml')?.errors, [
      { field: '(file)', reason: outsideReason('borrowed.yaml', path.join(outside, 'secret.yaml'), folder.dir) },
    ]);
    assert.deepEqual(report.summary, { files: 4, synced: 1, error: 3 });
    await assertNothingForeign();
  });

  it('reports a link leading outside made while running, applies nothing through it, and forgets it once removed', async () => {
    await folder.start();
    const link = path.join(folder.dir, 'elsewhere');
    fs.symlinkSync(outside, link);
    await waitFor('the link to be reported', () => folder.fileReport('elsewhere')?.state === 'Error');
    assert.deepEqual(folder.fileReport('elsewhere')?.errors, [{ field: '(file)', reason: outsideReason('elsewhere', outside, folder.dir) }]);
    // A change beyond the link is not seen either.
    writeFile(outside, 'later.yaml', appYaml(foreign.app));
    fs.unlinkSync(link);
    await waitFor('the removed link to be forgotten', () => folder.fileReport('elsewhere') === undefined);
    await assertNothingForeign();
  });

  it('holds the Apps of a link that is swapped to lead outside, naming the link, and applies nothing from there', async () => {
    const name = uniqueName('held');
    writeFile(folder.dir, '.worktrees/rev1/app.yaml', appYaml(name, { env: { REV: '1' } }));
    fs.symlinkSync('.worktrees/rev1', path.join(folder.dir, 'current'));
    writeFile(outside, 'app.yaml', appYaml(name, { env: { REV: foreign.marker } }));
    await folder.start();
    assert.equal((await folder.store.mustGetApp(name)).status.source, 'file:current/app.yaml');

    swapLink(path.join(folder.dir, 'current'), outside);
    // The report is written after the pass's store writes: wait for it.
    await waitFor('the file to be held', () => folder.fileReport('current/app.yaml')?.state === 'Error');
    const app = await folder.store.mustGetApp(name);
    assert.equal(app.status.syncState, 'Error');
    assert.deepEqual(app.spec.env, { REV: '1' });
    const reason = `is reached through the symbolic link current → ${outside}, which leads outside the apps folder (${fs.realpathSync(folder.dir)}); links may only point inside it, so it is not followed`;
    assert.deepEqual(folder.fileReport('current/app.yaml')?.errors, [{ field: '(file)', reason }]);
    await assertNothingForeign();
  });

  it('applies a new revision when a top-level link is swapped to a new worktree inside the folder (git-sync --link)', async () => {
    const [kept, added] = [uniqueName('kept'), uniqueName('added')];
    writeFile(folder.dir, '.worktrees/rev1/app.yaml', appYaml(kept, { env: { REV: '1' } }));
    fs.symlinkSync('.worktrees/rev1', path.join(folder.dir, 'current'));
    await folder.start();
    assert.deepEqual((await folder.store.mustGetApp(kept)).spec.env, { REV: '1' });
    assert.equal((await folder.store.mustGetApp(kept)).status.source, 'file:current/app.yaml');

    writeFile(folder.dir, '.worktrees/rev2/app.yaml', appYaml(kept, { env: { REV: '2' } }));
    writeFile(folder.dir, '.worktrees/rev2/team/new.yaml', appYaml(added));
    swapLink(path.join(folder.dir, 'current'), '.worktrees/rev2');
    fs.rmSync(path.join(folder.dir, '.worktrees/rev1'), { recursive: true });
    await waitFor('revision 2 to apply', async () => (await folder.store.getApp(kept))?.spec.env.REV === '2' && (await folder.store.getApp(added)) !== null);
    assert.equal((await folder.store.mustGetApp(added)).status.source, 'file:current/team/new.yaml');
    await waitFor('every file synced', () => folder.running?.source.report().files.every((f) => f.state === 'Synced'));
  });

  it('follows the apps folder itself through a link swapped to new worktrees, again and again (git-sync with --apps-dir /git/current/apps)', async () => {
    const root = tempDir('berth-git-');
    const name = uniqueName('rev');
    const publish = (rev: number): void => {
      writeFile(root, `.worktrees/rev${rev}/apps/app.yaml`, appYaml(name, { env: { REV: String(rev) } }));
      // A file each revision adds: only a watch on the new folder sees it (the one before watches a deleted folder).
      writeFile(root, `.worktrees/rev${rev}/apps/added-${rev}.yaml`, appYaml(`${name}-${rev}`));
      swapLink(path.join(root, 'current'), `.worktrees/rev${rev}`);
      if (rev > 1) fs.rmSync(path.join(root, `.worktrees/rev${rev - 1}`), { recursive: true });
    };
    publish(1);
    const running = await startFolderSource(path.join(root, 'current/apps'), folder.store);
    try {
      assert.deepEqual((await folder.store.mustGetApp(name)).spec.env, { REV: '1' });
      for (const rev of [2, 3]) {
        publish(rev);
        await waitFor(`revision ${rev} to apply`, async () => (await folder.store.getApp(name))?.spec.env.REV === String(rev));
        await waitFor(
          `the file revision ${rev} adds to apply`,
          async () => (await folder.store.getApp(`${name}-${rev}`))?.status.source === `file:added-${rev}.yaml`,
        );
        // The file the revision before added is gone with it (pruned in the same pass or the next).
        await waitFor(`the file revision ${rev - 1} added to be pruned`, async () => (await folder.store.getApp(`${name}-${rev - 1}`)) === null);
      }
      assert.equal((await folder.store.mustGetApp(name)).status.source, 'file:app.yaml');
    } finally {
      await running.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
