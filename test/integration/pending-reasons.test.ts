/**
 * "Why is it waiting?": a Pending run's `status.pendingReason`, message and
 * place in the line, as a client watching `/events/` sees them, on
 * `berth serve` as a process with a real Docker engine (or none).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { Berth, exited, freePort, json, runOf, serve } from '../helpers/berth-process';
import { waitFor } from '../helpers/wait';
import { removeContainersOf } from '../helpers/containers';

/** A run as `/events/` sent it. */
interface RunEvent {
  type: string;
  id: number;
  status: { phase: string; pendingReason?: string; pendingMessage?: string; queuePosition?: number };
}

/** Everything `/events/?kind=Run&app=…` sends, as it arrives; `stop()` closes the stream. */
function watchRuns(url: string, app: string): { seen: RunEvent[]; stop: () => void } {
  const seen: RunEvent[] = [];
  const abort = new AbortController();
  void (async () => {
    const res = await fetch(`${url}/events/?kind=Run&app=${app}`, { signal: abort.signal });
    let text = '';
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      const blocks = text.split('\n\n');
      text = blocks.pop()!;
      for (const block of blocks) {
        const type = /^event: (\w+)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type && data) seen.push({ type, ...(JSON.parse(data) as Omit<RunEvent, 'type'>) });
      }
    }
  })().catch(() => undefined);
  return { seen, stop: () => abort.abort() };
}

/** What the events said about one run, in order, one entry per change of its wait (or phase). */
function waitsOf(seen: RunEvent[], id: number): string[] {
  const said = seen
    .filter((event) => event.id === id)
    .map(({ status }) =>
      status.phase === 'Pending' ? `${status.pendingReason ?? '-'}${status.queuePosition ? `#${status.queuePosition}` : ''}` : status.phase,
    );
  return said.filter((entry, i) => entry !== said[i - 1]);
}

describe('why a run is waiting (berth serve, /events/)', function () {
  this.timeout(120_000);
  let dir: string;
  let berth: Berth | undefined;
  let app: string;

  beforeEach(() => {
    dir = tempDir('berth-pending-');
    fs.mkdirSync(path.join(dir, 'apps'));
    app = uniqueName('pending');
  });

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
    await removeContainersOf([app]);
  });

  async function createApp(url: string, spec: Record<string, unknown>): Promise<void> {
    const res = await json(`${url}/apps/`, {
      method: 'POST',
      body: JSON.stringify({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: app }, spec: { image: TEST_IMAGE, ...spec } }),
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }

  const ask = async (url: string): Promise<number> => {
    const res = await json(`${url}/apps/${app}/run/`, { method: 'POST' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id;
  };

  const inPhase = (url: string, id: number, phase: string) =>
    waitFor(`run ${id} to be ${phase}`, async () => {
      const run = await runOf(url, app, id);
      return run.status.phase === phase ? run : undefined;
    });

  // Exits at once on SIGTERM, so a stop does not wait out the grace period.
  const LONG = ['sh', '-c', "trap 'exit 0' TERM; sleep 60 & wait"];

  it('MaxParallel with places in line that move up as runs ahead finish, then Running', async () => {
    berth = await serve(dir, await freePort(), ['--max-parallel', '1']);
    const { url } = berth;
    const events = watchRuns(url, app);
    try {
      await createApp(url, { command: LONG });
      const first = await ask(url);
      await inPhase(url, first, 'Running');
      const second = await ask(url);
      const third = await ask(url);
      const waiting = await waitFor('the third run to learn its place', async () => {
        const run = await runOf(url, app, third);
        return run.status.queuePosition === 2 ? run : undefined;
      });
      assert.equal(waiting.status.pendingReason, 'MaxParallel');
      assert.equal(waiting.status.pendingMessage, 'waiting for a free slot (number 2 in line): at most 1 runs run at once (--max-parallel)');
      assert.equal((await runOf(url, app, second)).status.queuePosition, 1);

      assert.equal((await json(`${url}/apps/${app}/run/${first}/cancel/`, { method: 'POST' })).status, 202);
      const started = await inPhase(url, second, 'Running');
      assert.equal(started.status.pendingReason, undefined);
      assert.equal(started.status.queuePosition, undefined);
      await waitFor('the events to say the third run moved up', () => waitsOf(events.seen, third).includes('MaxParallel#1'));
      assert.deepEqual(waitsOf(events.seen, second).slice(-2), ['MaxParallel#1', 'Running']);
      assert.deepEqual(waitsOf(events.seen, third), ['-', 'MaxParallel#2', 'MaxParallel#1']);
    } finally {
      events.stop();
    }
  });

  it('ConcurrencyPolicy while a Replace App’s older run stops, then Running', async () => {
    berth = await serve(dir, await freePort());
    const { url } = berth;
    const events = watchRuns(url, app);
    try {
      await createApp(url, { command: LONG, concurrencyPolicy: 'Replace' });
      const older = await ask(url);
      await inPhase(url, older, 'Running');
      const newer = await ask(url);
      await inPhase(url, newer, 'Running');
      assert.equal((await runOf(url, app, older)).status.phase, 'Cancelled');
      await waitFor('the events to tell the newer run’s wait', () => waitsOf(events.seen, newer).includes('Running'));
      const said = events.seen.filter((event) => event.id === newer && event.status.pendingReason === 'ConcurrencyPolicy');
      assert.ok(said.length > 0, `no ConcurrencyPolicy event: ${JSON.stringify(waitsOf(events.seen, newer))}`);
      assert.match(said[0].status.pendingMessage ?? '', /^waiting for ".+" to stop \(concurrencyPolicy Replace\)$/);
      assert.deepEqual(waitsOf(events.seen, newer).slice(-2), ['ConcurrencyPolicy', 'Running']);
    } finally {
      events.stop();
    }
  });

  it('RuntimeUnavailable while the Docker engine cannot be reached', async () => {
    const socket = path.join(dir, 'closed.sock');
    berth = await serve(dir, await freePort(), ['--docker-host', `unix://${socket}`], {}, '/healthz');
    const { url } = berth;
    const events = watchRuns(url, app);
    try {
      await createApp(url, { command: ['true'] });
      const id = await ask(url);
      const event = await waitFor('the events to say the runtime is unavailable', () =>
        events.seen.find((e) => e.id === id && e.status.pendingReason === 'RuntimeUnavailable'),
      );
      assert.equal(event.status.phase, 'Pending');
      assert.ok(event.status.pendingMessage?.includes(socket), event.status.pendingMessage);
      assert.equal(event.status.queuePosition, undefined);
    } finally {
      events.stop();
    }
  });
});
