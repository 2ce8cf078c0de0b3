/**
 * The server as `berth serve` builds it (startServer), with a real Docker
 * engine: what a client that sends slowly, stays idle or follows logs can
 * hold, and that answers which stream keep streaming past every timeout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { createLogger } from '../../src/log';
import { startServer, type RunningServer } from '../../src/server';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';
import { removeContainersOf } from '../helpers/containers';

/** Opens a connection, writes `text`, and resolves with what came back and how long the server took to close it. */
function heldConnection(port: number, text: string): { closed: Promise<{ ms: number; answer: string }> } {
  const socket = net.connect(port, '127.0.0.1');
  const started = Date.now();
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => (answer += chunk));
  socket.write(text);
  const closed = new Promise<{ ms: number; answer: string }>((resolve, reject) => {
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for 10 s; it answered: ${answer}`));
    }, 10_000);
    socket.on('close', () => {
      clearTimeout(deadline);
      resolve({ ms: Date.now() - started, answer });
    });
  });
  return { closed };
}

/** Reads a streamed answer: `until(check)` reads on until the text so far passes `check`, and returns it. */
function streamText(res: Response): { until(check: (text: string) => boolean): Promise<string> } {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  return {
    async until(check) {
      while (!check(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before the text expected: ${text}`);
        text += value;
      }
      return text;
    },
  };
}

describe('server: timeouts and followers', function () {
  this.timeout(60_000);
  let server: RunningServer;
  let app: string;

  beforeEach(async () => {
    const dir = tempDir();
    app = uniqueName('limits');
    server = await startServer({
      port: 0,
      host: '127.0.0.1',
      db: path.join(dir, 'berth.sqlite'),
      appsDir: path.join(dir, 'apps'),
      createAppsDir: true,
      maxParallel: 2,
      runtime: 'docker',
      keepContainers: false,
      logLevel: 'silent',
      logger: createLogger('silent'),
      httpTimeouts: { headersMs: 400, requestMs: 800, keepAliveMs: 400 },
      limits: { logFollowers: 1 },
    });
  });

  afterEach(async () => {
    await server.stop();
    await removeContainersOf([app]);
  });

  it('closes connections that send headers or a body too slowly, or stay idle, while an event stream keeps streaming', async () => {
    const events = new AbortController();
    const stream = await fetch(`${server.url}/events/?kind=App`, { signal: events.signal });
    assert.equal(stream.status, 200);
    try {
      const slowHeaders = heldConnection(server.port, 'GET /apps/ HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      const slowBody = heldConnection(
        server.port,
        'POST /apps/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na',
      );
      const idle = heldConnection(server.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const [headers, body, keptAlive] = await Promise.all([slowHeaders.closed, slowBody.closed, idle.closed]);
      assert.ok(headers.ms < 3000, `slow headers held ${headers.ms} ms`);
      assert.match(headers.answer, /^HTTP\/1\.1 408 /);
      assert.ok(body.ms < 4000, `slow body held ${body.ms} ms`);
      assert.match(body.answer, /^HTTP\/1\.1 408 /);
      assert.match(keptAlive.answer, /^HTTP\/1\.1 200 /);
      assert.ok(keptAlive.ms < 3000, `idle keep-alive held ${keptAlive.ms} ms`);

      // Every timeout has passed; the stream still carries what happens now.
      const created = await fetch(`${server.url}/apps/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: app, image: TEST_IMAGE }),
      });
      assert.equal(created.status, 201);
      await streamText(stream).until((text) => text.includes(`"name":"${app}"`));
    } finally {
      events.abort();
    }
  });

  it("follows a live run's logs past the request timeout, and refuses a follower beyond the cap with 503 until one leaves", async () => {
    const spec = {
      apiVersion: 'berth.dev/v1',
      kind: 'App',
      metadata: { name: app },
      spec: { image: TEST_IMAGE, command: ['sh', '-c', 'while true; do echo tick; sleep 0.2; done'] },
    };
    assert.equal(
      (await fetch(`${server.url}/apps/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) })).status,
      201,
    );
    const run = (await (await fetch(`${server.url}/apps/${app}/run/`, { method: 'POST' })).json()) as { id: number };
    const logs = `${server.url}/apps/${app}/run/${run.id}/logs/?follow=1`;
    await waitFor('the run to be running', async () => (await server.store.mustGetRun(run.id)).status.phase === 'Running');

    const first = new AbortController();
    const followed = await fetch(logs, { signal: first.signal });
    assert.equal(followed.status, 200);
    // A tick every 200 ms: six new ones take longer than the 800 ms request timeout.
    const output = streamText(followed);
    const count = (text: string): number => text.split('tick').length - 1;
    const before = count(await output.until((text) => count(text) > 0));
    const started = Date.now();
    const ticks = await output.until((text) => count(text) >= before + 6);
    assert.ok(Date.now() - started > 800, `six ticks in ${Date.now() - started} ms`);
    assert.match(ticks, /^(tick\n)+/);

    const refused = await fetch(logs);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.equal(
      ((await refused.json()) as { message: string }).message,
      'this server has 1 followed logs open, the most it allows (--max-log-followers 1); try again later',
    );

    first.abort();
    const second = new AbortController();
    try {
      const again = await waitFor('a follower slot to be free', async () => {
        const res = await fetch(logs, { signal: second.signal });
        if (res.status === 200) return res;
        await res.body?.cancel();
        return undefined;
      });
      await streamText(again).until((text) => text.includes('tick'));
    } finally {
      second.abort();
    }
    assert.equal((await fetch(`${server.url}/apps/${app}/run/${run.id}/cancel/`, { method: 'POST' })).status, 202);
  });
});
