/**
 * Every create `POST /apps/` acknowledged survives the server being killed
 * (SIGKILL) right after: what README's "Durability" promises for SQLite in
 * WAL mode with `synchronous = NORMAL`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { exited, serve, type Berth } from '../helpers/berth-process';
import { tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

describe('POST /apps/ durability', function () {
  this.timeout(90_000);
  let dir: string;
  let berth: Berth | undefined;
  afterEach(async () => {
    if (berth && berth.child.exitCode === null && berth.child.signalCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged create after a SIGKILL in the middle of a burst of creates', async () => {
    dir = tempDir('berth-durability-');
    fs.mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir);
    const prefix = uniqueName('durable');
    const acknowledged: string[] = [];
    let next = 0;
    let killed = false;
    // 16 clients creating as fast as the server takes them, until it is killed under them.
    const clients = Array.from({ length: 16 }, async () => {
      while (!killed) {
        const name = `${prefix}-${next++}`;
        try {
          const res = await fetch(`${berth!.url}/apps/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ name, image: 'busybox:1.36' }),
          });
          if (res.status === 201) acknowledged.push(name);
        } catch {
          // the connection died with the server: this create was never acknowledged
        }
      }
    });
    await waitFor('200 acknowledged creates', () => acknowledged.length >= 200, { timeoutMs: 60_000 });
    berth.child.kill('SIGKILL');
    killed = true;
    await exited(berth.child);
    await Promise.all(clients);
    const count = acknowledged.length;

    berth = await serve(dir);
    const stored = new Set<string>();
    for (let offset = 0; ; offset += 1000) {
      const res = await fetch(`${berth.url}/apps/?limit=1000&offset=${offset}&fields=name`);
      assert.equal(res.status, 200);
      const page = (await res.json()) as { name: string }[];
      for (const app of page) stored.add(app.name);
      if (page.length < 1000) break;
    }
    const lost = acknowledged.filter((name) => !stored.has(name));
    assert.deepEqual(lost, [], `${lost.length} of ${count} acknowledged creates were lost`);
  });
});
