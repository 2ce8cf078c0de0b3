/**
 * The SQLite volume fills up under a running berth: writes are refused with
 * 503 and the reason, reads go on, nothing acknowledged is lost, and berth
 * writes again once space returns, without a restart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Berth, exited, json, serve } from '../helpers/berth-process';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { PrivateVolume, mountVolume, volumeMissing } from '../helpers/private-volume';
import { waitFor } from '../helpers/wait';

describe('chaos: the SQLite volume runs out of space', function () {
  this.timeout(120_000);
  let volume: PrivateVolume | undefined;
  let berth: Berth | undefined;

  before(function () {
    const missing = volumeMissing();
    // A missing prerequisite fails the suite rather than skipping it: CI must not pass without the chaos tests.
    if (missing) throw new Error(`this chaos test cannot run here: ${missing} (bash .ci/provision sets it up)`);
  });

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
    volume?.remove();
    volume = undefined;
  });

  it('answers 503 with the reason, keeps what it acknowledged, and writes again when space returns', async () => {
    volume = mountVolume(8);
    const dir = tempDir('berth-chaos-full-');
    fs.mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir, undefined, ['--db', path.join(volume.dir, 'berth.sqlite')]);
    const create = (name: string) => json(`${berth!.url}/apps/`, { method: 'POST', body: JSON.stringify({ name, image: TEST_IMAGE, command: 'true' }) });

    const acknowledged: string[] = [];
    for (let i = 0; i < 5; i++) {
      const name = uniqueName('full');
      assert.equal((await create(name)).status, 201);
      acknowledged.push(name);
    }

    volume.fill();
    // SQLite may still have room in pages it already holds; a few writes later the disk is needed.
    const refused = await waitFor('a write to be refused for want of space', async () => {
      const name = uniqueName('full');
      const answer = await create(name);
      if (answer.status === 201) acknowledged.push(name);
      return answer.status === 201 ? undefined : answer;
    });
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error, 'StoreUnavailable');
    assert.match(refused.body.message, /full/i);
    assert.equal(berth.child.exitCode, null, `berth exited: ${berth.output()}`);

    // Reads go on while the disk is full, and nothing acknowledged is missing.
    const listed = await json(`${berth.url}/apps/?limit=1000`);
    assert.equal(listed.status, 200);
    const names = new Set(listed.body.map((app: { name: string }) => app.name));
    for (const name of acknowledged) assert.ok(names.has(name), `${name} was acknowledged and is gone`);

    volume.free();
    const later = uniqueName('full');
    await waitFor('a write to succeed once space returns', async () => (await create(later)).status === 201);
    for (const name of [...acknowledged, later]) assert.equal((await json(`${berth.url}/apps/${name}/`)).status, 200, name);
    const ready = await fetch(`${berth.url}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
  });
});
