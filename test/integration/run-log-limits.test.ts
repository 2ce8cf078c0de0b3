import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Controller } from '../../src/controller/controller';
import { requestRun } from '../../src/controller/run-requests';
import { DockerExecutor } from '../../src/executors/docker';
import { Runtimes } from '../../src/executors/runtimes';
import { createLogger } from '../../src/log';
import { createMetrics, createRegistry } from '../../src/metrics';
import { isTerminal } from '../../src/model/types';
import type { Store } from '../../src/store/store';
import { exited, freePort, json, runOf, serve, type Berth } from '../helpers/berth-process';
import { appSpec, tempDir, tempSqliteStore, TEST_IMAGE, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';
import { removeContainersOf } from '../helpers/containers';

const MiB = 1024 * 1024;

/** A container printing `bytes` of 'x' on one line (Docker splits it into 16 KiB log entries), then `end` on a line of its own. */
function chattyCommand(bytes: number, end: string): string[] {
  return ['sh', '-c', `head -c ${bytes} /dev/zero | tr '\\000' x; printf '\\n${end}\\n'`];
}

/** The last `limit` bytes of what chattyCommand prints. */
function expectedTail(limit: number, end: string): string {
  const last = `\n${end}\n`;
  return 'x'.repeat(limit - last.length) + last;
}

/** A process's resident memory now and at its peak, from /proc. */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

describe('run output far beyond --log-limit', function () {
  this.timeout(180_000);
  let app: string;
  let berth: Berth | undefined;

  beforeEach(() => {
    app = uniqueName('chatty');
  });

  afterEach(async () => {
    if (berth) {
      berth.child.kill('SIGKILL');
      await exited(berth.child);
      berth = undefined;
    }
    // berth, killed, may have been removing one already: removeContainersOf waits for it to be gone.
    await removeContainersOf([app]);
  });

  it('streams 200 MB of output with bounded memory and stores exactly the last --log-limit bytes', async () => {
    const printed = 200_000_000;
    const end = `END-${app}`;
    const dir = tempDir();
    mkdirSync(path.join(dir, 'apps'));
    // Docker keeps all of it (its json-file rotation would otherwise drop most before berth reads): berth itself must
    // stream the 200 MB, and the dropped-bytes count is then exact.
    berth = await serve(dir, await freePort(), ['--log-limit', '1Mi', '--log-max-size', '256Mi', '--log-max-file', '1']);
    const pid = berth.child.pid!;
    await json(`${berth.url}/apps/`, { method: 'POST', body: JSON.stringify({ name: app, image: TEST_IMAGE, command: chattyCommand(printed, end) }) });
    const before = await memoryOf(pid);
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    const run = await waitFor(
      'the chatty run to finish',
      async () => {
        const now = await runOf(berth!.url, app, asked.body.id);
        return isTerminal(now.status.phase) ? now : undefined;
      },
      { timeoutMs: 150_000 },
    );
    assert.equal(run.status.phase, 'Succeeded');

    const after = await memoryOf(pid);
    const growth = after.peak - before.rss;
    console.log(
      `      berth RSS ${(before.rss / MiB).toFixed(0)} MiB before, peak ${(after.peak / MiB).toFixed(0)} MiB (+${(growth / MiB).toFixed(0)} MiB) for ${printed / 1e6} MB of output`,
    );
    assert.ok(growth < 100 * MiB, `berth's resident memory grew by ${(growth / MiB).toFixed(0)} MiB while copying the output`);

    const res = await fetch(`${berth.url}/apps/${app}/run/${asked.body.id}/logs/`);
    const stored = await res.text();
    assert.equal(Buffer.byteLength(stored), MiB);
    assert.ok(stored === expectedTail(MiB, end), `the stored log is the last 1 MiB of the output (ends ${JSON.stringify(stored.slice(-40))})`);
    assert.equal(res.headers.get('x-berth-dropped-bytes'), String(printed + end.length + 2 - MiB));
  });

  it("keeps the exact tail when the engine's own tail leaves out the start of a long log of short lines", async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir, await freePort(), ['--log-limit', '16Ki']);
    await json(`${berth.url}/apps/`, { method: 'POST', body: JSON.stringify({ name: app, image: TEST_IMAGE, command: ['seq', '1', '100000'] }) });
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST' });
    await waitFor('the run to succeed', async () => (await runOf(berth!.url, app, asked.body.id)).status.phase === 'Succeeded', { timeoutMs: 60_000 });
    const printed = Buffer.from(Array.from({ length: 100_000 }, (_, i) => `${i + 1}\n`).join(''));
    const stored = await (await fetch(`${berth.url}/apps/${app}/run/${asked.body.id}/logs/`)).text();
    assert.equal(stored, printed.subarray(printed.length - 16 * 1024).toString());
  });
});

describe('a run whose output takes longer to copy than its deadline', function () {
  this.timeout(120_000);
  let store: Store;
  let app: string;
  let stop: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    ({ store } = await tempSqliteStore());
    app = uniqueName('slowlog');
  });

  afterEach(async () => {
    await stop?.();
    stop = undefined;
    // berth, killed, may have been removing one already: removeContainersOf waits for it to be gone.
    await removeContainersOf([app]);
    await store.close();
  });

  it('records the exit and keeps what it read, noted as incomplete, instead of retrying the copy for ever', async () => {
    const registry = createRegistry();
    const controller = new Controller({
      store,
      runtimes: new Runtimes([new DockerExecutor()], 'docker'),
      logger: createLogger('silent'),
      metrics: createMetrics(registry),
      ownsWorkload: (workload) => workload.appName === app,
      // 100 MB in 16 KiB entries cannot reach berth within 50 ms.
      logReadTimeoutMs: 50,
    });
    const abort = new AbortController();
    const done = controller.start(abort.signal);
    stop = async () => {
      abort.abort();
      await done;
    };
    const created = await store.createApp({ name: app, spec: appSpec({ command: chattyCommand(100_000_000, 'END') }), source: 'api' });
    const { run } = await requestRun(store, created, {});
    const finished = await waitFor(
      'the run to finish',
      async () => {
        const now = await store.mustGetRun(run.id);
        return isTerminal(now.status.phase) ? now : undefined;
      },
      { timeoutMs: 90_000 },
    );
    assert.equal(finished.status.phase, 'Succeeded');
    assert.equal(finished.status.exitCode, 0);

    const logs = await store.getLogs(run.id);
    assert.ok(logs, 'the partial output is stored');
    const lastLine = logs.content.slice(logs.content.lastIndexOf('\n', logs.content.length - 2) + 1);
    assert.match(
      lastLine,
      /^--- berth: output incomplete: reading the output took longer than 50 ms; the copy stops after \d+ bytes \(workload berth-run-[\w-]+\) ---\n$/,
    );
    assert.ok(!logs.content.includes('END'), 'the copy stopped before the end of the output');
    assert.match(await registry.metrics(), /^berth_run_log_copies_incomplete_total\{runtime="docker"\} 1$/m);
  });
});
