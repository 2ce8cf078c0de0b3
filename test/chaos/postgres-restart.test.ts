/**
 * PostgreSQL restarts under a berth that is writing: writes meanwhile get 503
 * with the reason (never 500), /readyz says so, berth reconnects by itself,
 * and every write it acknowledged is there afterwards. The server is a
 * private one: the shared PostgreSQL serves other tests.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Berth, exited, json, serve } from '../helpers/berth-process';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { PrivatePostgres, postgresMissing, startPostgres } from '../helpers/private-postgres';
import { waitFor } from '../helpers/wait';

describe('chaos: PostgreSQL restarts mid-write', function () {
  this.timeout(120_000);
  let pg: PrivatePostgres | undefined;
  let berth: Berth | undefined;

  before(async function () {
    const missing = postgresMissing();
    // A missing prerequisite fails the suite rather than skipping it: CI must not pass without the chaos tests.
    if (missing) throw new Error(`this chaos test cannot run here: ${missing} (bash .ci/provision sets it up)`);
    pg = await startPostgres();
  });

  after(() => pg?.remove());

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
  });

  for (const mode of ['fast', 'immediate'] as const) {
    it(`answers 503 while it is down (pg_ctl stop -m ${mode}), reconnects, and loses nothing acknowledged`, async () => {
      const dir = tempDir('berth-chaos-pg-');
      fs.mkdirSync(path.join(dir, 'apps'));
      berth = await serve(dir, undefined, ['--db', pg!.url]);
      const url = berth.url;
      const acknowledged: string[] = [];
      const answers = new Map<number, { error?: string; message?: string }>();
      let writing = true;
      const writer = (async () => {
        while (writing) {
          const name = uniqueName('pg');
          const answer = await json(`${url}/apps/`, { method: 'POST', body: JSON.stringify({ name, image: TEST_IMAGE, command: 'true' }) });
          if (answer.status === 201) acknowledged.push(name);
          answers.set(answer.status, answer.body);
        }
      })();

      await waitFor('a few writes', () => acknowledged.length >= 5);
      pg!.stop(mode);
      await waitFor('a write refused while PostgreSQL is down', () => answers.has(503));
      const unready = await fetch(`${url}/readyz`);
      assert.equal(unready.status, 503, await unready.text());
      pg!.start();
      const before = acknowledged.length;
      await waitFor('writes acknowledged again', () => acknowledged.length > before + 3, { timeoutMs: 30_000 });
      writing = false;
      await writer;

      assert.deepEqual([...answers.keys()].sort(), [201, 503], JSON.stringify([...answers]));
      assert.equal(answers.get(503)!.error, 'StoreUnavailable');
      assert.match(answers.get(503)!.message!, /the store is unavailable/);
      assert.equal((await fetch(`${url}/readyz`)).status, 200);
      const names = new Set<string>();
      for (let offset = 0; ; offset += 1000) {
        const page = await json(`${url}/apps/?limit=1000&offset=${offset}`);
        assert.equal(page.status, 200, JSON.stringify(page.body));
        for (const app of page.body as { name: string }[]) names.add(app.name);
        if (page.body.length < 1000) break;
      }
      const lost = acknowledged.filter((name) => !names.has(name));
      assert.deepEqual(lost, [], `acknowledged and lost: ${lost.join(', ')}`);
    });
  }
});
