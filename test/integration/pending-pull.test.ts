/**
 * "Why is it waiting?" while its image is pulled: a run whose image is only
 * in the loopback registry says `PullingImage` on `/events/` before it runs,
 * on `berth serve` as a process with a real Docker engine.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Berth, exited, freePort, json, runOf, serve } from '../helpers/berth-process';
import { removeContainersOf } from '../helpers/containers';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

const docker = (...args: string[]) => promisify(execFile)('docker', args);

/** Every status `/events/?kind=Run&app=…` sends for the App's runs, as it arrives; `stop()` closes the stream. */
function watchRuns(url: string, app: string): { seen: { phase: string; pendingReason?: string; pendingMessage?: string }[]; stop: () => void } {
  const seen: { phase: string; pendingReason?: string; pendingMessage?: string }[] = [];
  const abort = new AbortController();
  void (async () => {
    const res = await fetch(`${url}/events/?kind=Run&app=${app}`, { signal: abort.signal });
    let text = '';
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const blocks = text.split('\n\n');
      text = blocks.pop()!;
      for (const block of blocks) {
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data) seen.push((JSON.parse(data) as { status: (typeof seen)[number] }).status);
      }
    }
  })().catch(() => undefined);
  return { seen, stop: () => abort.abort() };
}

describe('PullingImage while the Docker executor pulls (berth serve, /events/)', function () {
  this.timeout(120_000);
  let berth: Berth | undefined;
  let app: string;
  let image: string;

  beforeEach(async () => {
    app = uniqueName('pull');
    // A tag of its own in the loopback registry, gone from the engine after the push: the run must pull it.
    image = `127.0.0.1:5000/berth-test/busybox:${app}`;
    await docker('tag', TEST_IMAGE, image);
    await docker('push', '--quiet', image);
    await docker('rmi', image);
  });

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
    await removeContainersOf([app]);
    await docker('rmi', '--force', image).catch(() => undefined);
  });

  it('says PullingImage, naming the image, then runs', async () => {
    const dir = tempDir('berth-pull-');
    fs.mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir, await freePort());
    const { url } = berth;
    const events = watchRuns(url, app);
    try {
      const created = await json(`${url}/apps/`, {
        method: 'POST',
        body: JSON.stringify({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: app }, spec: { image, command: ['true'], network: 'none' } }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const asked = await json(`${url}/apps/${app}/run/`, { method: 'POST' });
      assert.equal(asked.status, 202, JSON.stringify(asked.body));
      const done = await waitFor('the run to succeed', async () => {
        const run = await runOf(url, app, asked.body.id);
        return run.status.phase === 'Succeeded' ? run : undefined;
      });
      assert.equal(done.status.pendingReason, undefined, 'the wait is over once it runs');
      await waitFor('the events to reach the end of the run', () => events.seen.some((s) => s.phase === 'Succeeded'));
      const said = events.seen.map((s) => (s.phase === 'Pending' ? `Pending:${s.pendingReason ?? '-'}` : s.phase)).filter((s, i, all) => s !== all[i - 1]);
      assert.deepEqual(said, ['Pending:-', 'Pending:PullingImage', 'Running', 'Succeeded']);
      assert.equal(events.seen.find((s) => s.pendingReason === 'PullingImage')?.pendingMessage, `pulling image "${image}"`);
      await docker('image', 'inspect', image);
    } finally {
      events.stop();
    }
  });
});
