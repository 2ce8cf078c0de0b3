import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { exited, freePort } from '../helpers/berth-process';
import { tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
/** A long query string (within Node's 16 KiB of headers) makes each request's log line about 12 KB: a few hundred outgrow the pipe and the bound. */
const PAD = 'x'.repeat(12_000);
/** How long berth may take to exit after SIGTERM: its request grace, its log flush deadline, and slack. */
const EXIT_DEADLINE_MS = 9000;

interface LoggingBerth {
  child: ChildProcess;
  url: string;
}

/** `berth serve` logging every request; its stdout is a pipe that this test reads only when `read` says so. */
async function serveLogging(read: boolean): Promise<LoggingBerth & { output: () => string }> {
  const dir = tempDir();
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [MAIN, 'serve', '--port', String(port), '--db', path.join(dir, 'berth.sqlite'), '--apps-dir', path.join(dir, 'apps'), '--log-level', 'info'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  // Unread, the pipe fills: Node's socket takes its high-water mark (16 KiB) and stops reading, the kernel holds 64 KiB more.
  if (read) child.stdout!.on('data', (chunk) => (output += chunk));
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`berth on ${url} to answer`, async () => {
    if (child.exitCode !== null) throw new Error(`berth exited ${child.exitCode}: ${stderr}`);
    return (await fetch(`${url}/healthz`)).ok;
  });
  return { child, url, output: () => output };
}

/** `count` requests, `parallel` at a time, each logged as one line carrying `marker`. */
async function drive(url: string, marker: string, count: number, parallel = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const res = await fetch(`${url}/apps/?marker=${marker}-${i}&pad=${PAD}`);
      assert.equal(res.status < 500, true, `request ${i} answered ${res.status}`);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

async function droppedLines(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = /^berth_log_lines_dropped_total (\d+)$/m.exec(text)?.[1];
  assert.ok(value !== undefined, 'berth_log_lines_dropped_total is on /metrics');
  return Number(value);
}

/** Resolves with the exit code, or rejects when the child has not exited within `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`berth did not exit within ${ms} ms of SIGTERM`)), ms);
    void exited(child).then(() => {
      clearTimeout(timer);
      resolve(child.exitCode);
    });
  });
}

/** Rounds of ~1.2 MB of log lines until the pipe and the 4 MiB bound are full; how many requests it took. */
async function fillUntilDropping(url: string, marker: string): Promise<number> {
  let sent = 0;
  await waitFor(
    'log lines to be dropped',
    async () => {
      await drive(url, `${marker}-${sent}`, 100);
      sent += 100;
      return (await droppedLines(url)) > 0;
    },
    { timeoutMs: 30_000 },
  );
  return sent;
}

describe('berth logging with a slow or absent reader of stdout', function () {
  this.timeout(60_000);
  let berth: LoggingBerth | undefined;

  afterEach(async () => {
    if (berth && berth.child.exitCode === null && berth.child.signalCode === null) {
      berth.child.kill('SIGKILL');
      await exited(berth.child);
    }
    berth?.child.stdout?.destroy();
    berth = undefined;
  });

  it('keeps serving, counts the lines it drops, and exits on SIGTERM when nobody reads its stdout', async () => {
    berth = await serveLogging(false);
    const { url, child } = berth;
    const sent = await fillUntilDropping(url, uniqueName('stalled'));
    const dropped = await droppedLines(url);
    assert.ok(dropped > 0 && dropped < sent, `dropped ${dropped} of ${sent} request lines`);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);

    const signalled = Date.now();
    child.kill('SIGTERM');
    assert.equal(await exitWithin(child, EXIT_DEADLINE_MS), 0);
    assert.ok(Date.now() - signalled < EXIT_DEADLINE_MS);
  });

  it('says how many lines it dropped once a stalled reader catches up', async () => {
    berth = await serveLogging(false);
    const { url, child } = berth;
    const marker = uniqueName('resumed');
    await fillUntilDropping(url, marker);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    const note = await waitFor('the line reporting the dropped lines', () =>
      output
        .split('\n')
        .filter((line) => line.includes('"droppedLines"'))
        .map((line) => JSON.parse(line) as { level: number; droppedLines: number; msg: string })
        .at(0),
    );
    assert.equal(note.level, 40);
    assert.equal(note.droppedLines, await droppedLines(url));
    // The lines written before the stall and after it are whole JSON lines.
    const requests = output.split('\n').filter((line) => line.includes(marker));
    assert.ok(requests.length > 0);
    for (const line of requests) assert.equal(JSON.parse(line).msg, 'request');
  });

  it('loses no line while its stdout is read, and writes the last ones before it exits', async () => {
    const reading = await serveLogging(true);
    berth = reading;
    const marker = uniqueName('read');
    const count = 400;
    await drive(reading.url, marker, count);
    assert.equal(await droppedLines(reading.url), 0);
    reading.child.kill('SIGTERM');
    assert.equal(await exitWithin(reading.child, EXIT_DEADLINE_MS), 0);
    // Every byte the child wrote has been read once its stdout ends.
    await waitFor('stdout to end', () => reading.child.stdout!.readableEnded);
    const lines = reading
      .output()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { msg: string; url?: string });
    const seen = new Set(lines.filter((line) => line.msg === 'request' && line.url?.includes(marker)).map((line) => /marker=([^&]+)/.exec(line.url!)![1]));
    assert.equal(seen.size, count);
    assert.equal(lines.at(-1)?.msg, 'stopped');
  });
});
