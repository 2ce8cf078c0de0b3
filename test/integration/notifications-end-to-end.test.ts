/**
 * Notifications end to end: `berth serve` as a process, a real Docker engine,
 * webhook receivers on 127.0.0.1, and the API's answers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { Berth, exited, freePort, json, runOf, serve } from '../helpers/berth-process';
import { removeContainersOf } from '../helpers/containers';
import { signatureIsValid, startReceiver, type Receiver } from '../helpers/notification-receiver';
import { waitFor } from '../helpers/wait';

const SECRET = 'end-to-end-webhook-secret';

describe('notifications (berth serve, Docker, real receivers)', function () {
  this.timeout(180_000);
  let dir: string;
  let berth: Berth;
  let app: string;
  const receivers: Receiver[] = [];

  before(async () => {
    dir = tempDir('berth-notify-');
    fs.mkdirSync(path.join(dir, 'apps'));
    fs.writeFileSync(path.join(dir, 'hook-secret'), `${SECRET}\n`);
    berth = await serve(dir, await freePort(), [], { BERTH_PUBLIC_URL: 'https://berth.example', BERTH_E2E_HOOK_SECRET: SECRET });
  });

  after(async () => {
    berth.child.kill('SIGTERM');
    await exited(berth.child);
  });

  beforeEach(() => {
    app = uniqueName('notify');
  });

  afterEach(async () => {
    for (const receiver of receivers.splice(0)) await receiver.close();
    await removeContainersOf([app]);
  });

  const receiver = async (statuses?: (number | 'hang')[]) => {
    const made = await startReceiver(statuses);
    receivers.push(made);
    return made;
  };

  const createApp = (spec: Record<string, unknown>) =>
    json(`${berth.url}/apps/`, {
      method: 'POST',
      // No network: the runs need none, and the engine's bridge is not there on every test machine.
      body: JSON.stringify({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: app }, spec: { image: TEST_IMAGE, network: 'none', ...spec } }),
    });

  /** Asks for a run exiting with `code` and waits for its end. */
  async function finishedRun(code: number): Promise<any> {
    const asked = await json(`${berth.url}/apps/${app}/run/`, { method: 'POST', body: JSON.stringify({ env: { CODE: String(code) } }) });
    assert.equal(asked.status, 202, JSON.stringify(asked.body));
    return waitFor(
      `run ${asked.body.id} to end`,
      async () => {
        const run = await runOf(berth.url, app, asked.body.id);
        return ['Succeeded', 'Failed'].includes(run.status.phase) && run;
      },
      { timeoutMs: 60_000 },
    );
  }

  const notifications = async () => (await json(`${berth.url}/apps/${app}/notifications/`)).body as any[];

  it('Failed fires once, after the last retry, signed; the next success is Recovered; both are listed', async () => {
    const hook = await receiver();
    const created = await createApp({
      command: ['sh', '-c', 'exit $CODE'],
      retries: 2,
      notify: [{ url: hook.url, on: ['Failed', 'Recovered'], secretRef: { file: path.join(dir, 'hook-secret') } }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    const failed = await finishedRun(3);
    assert.equal(failed.status.phase, 'Failed');
    assert.equal(failed.status.attempts, 3, JSON.stringify(failed.status));
    await waitFor('the Failed notification delivered', async () => (await notifications())[0]?.state === 'Delivered');
    assert.equal(hook.received.length, 1, 'one notification for three attempts');
    const [request] = hook.received;
    assert.ok(signatureIsValid(request, SECRET), 'signed with the secret from the file');
    assert.equal(request.body.event, 'Failed');
    assert.equal(request.body.run.name, failed.metadata.name);
    assert.equal(request.body.run.exitCode, 3, JSON.stringify(failed.status));
    assert.equal(request.body.run.attempts, 3);
    assert.equal(request.body.link, `https://berth.example/apps/${app}/run/${failed.metadata.name}/`);

    const recovered = await finishedRun(0);
    assert.equal(recovered.status.phase, 'Succeeded');
    await waitFor('Recovered', () => hook.received.length === 2);
    assert.equal(hook.received[1].body.event, 'Recovered');
    assert.equal(hook.received[1].body.consecutiveFailures, 1);
    const listed = await waitFor('both Delivered', async () => {
      const rows = await notifications();
      return rows.length === 2 && rows.every((n) => n.state === 'Delivered') ? rows : undefined;
    });
    assert.deepEqual(
      listed.map((n: { event: string; run: string }) => [n.event, n.run]),
      [
        ['Recovered', recovered.metadata.name],
        ['Failed', failed.metadata.name],
      ],
    );
  });

  it('a receiver answering 500 then 200 gets the retry, and both attempts are listed', async () => {
    const hook = await receiver([500, 200]);
    assert.equal(
      (await createApp({ command: ['sh', '-c', 'exit $CODE'], notify: [{ url: hook.url, on: ['Succeeded'], secretRef: { env: 'BERTH_E2E_HOOK_SECRET' } }] }))
        .status,
      201,
    );
    await finishedRun(0);
    const [delivered] = await waitFor('Delivered on the second attempt', async () => {
      const rows = await notifications();
      return rows[0]?.state === 'Delivered' ? rows : undefined;
    });
    assert.deepEqual(
      delivered.attempts.map((a: { status: number }) => a.status),
      [500, 200],
    );
    assert.equal(delivered.attempts[0].error, 'the receiver answered 500');
    assert.ok(hook.received.every((r) => signatureIsValid(r, SECRET)));
  });

  it('a receiver that never answers does not delay runs', async () => {
    const silent = await receiver(['hang']);
    assert.equal((await createApp({ command: ['sh', '-c', 'exit $CODE'], notify: [{ url: silent.url, on: ['Succeeded', 'Failed'] }] })).status, 201);
    const durations: number[] = [];
    for (const code of [0, 1, 0, 1, 0]) {
      const run = await finishedRun(code);
      durations.push(Date.parse(run.status.finishedAt) - Date.parse(run.metadata.creationTimestamp));
    }
    // Every request is still hanging (the notifier's timeout is 10 s), and no run waited for one.
    await waitFor('the receiver to be called', () => silent.received.length >= 4);
    assert.ok(Math.max(...durations) < 10_000, `run durations ${durations.join(', ')} ms`);
    console.log(`      run durations with a receiver that never answers: ${durations.join(', ')} ms`);
  });

  it('refuses a bad webhook with 422 naming the field, and never shows a secret', async () => {
    const refused = async (notify: unknown, field: RegExp) => {
      const answer = await createApp({ notify });
      assert.equal(answer.status, 422, JSON.stringify(answer.body));
      assert.match(answer.body.message, field);
    };
    await refused([{ url: 'not a url', on: ['Failed'] }], /spec\.notify\[0\]\.url: "not a url" is not a URL/);
    await refused([{ url: 'ftp://example.com/x', on: ['Failed'] }], /spec\.notify\[0\]\.url: must use http or https, not ftp/);
    await refused([{ url: 'https://user:pw@example.com/x', on: ['Failed'] }], /spec\.notify\[0\]\.url: must not carry a user or password/);
    await refused([{ url: 'https://example.com/x', on: ['Exploded'] }], /spec\.notify.*on.*must be one of Failed, Succeeded, Recovered, Missed/);
    await refused([{ url: 'https://example.com/x', on: [] }], /spec\.notify.*on.*must list at least one event/);
    await refused([{ url: 'https://example.com/x', on: ['Failed'], after: 0 }], /spec\.notify.*after.*must be an integer from 1 to 100/);
    await refused([{ url: 'https://example.com/x', on: ['Failed'], secret: 'hunter2' }], /spec\.notify.*secret.*secretRef/);
    await refused(
      [{ url: 'https://example.com/x', on: ['Failed'], secretRef: { env: 'A', file: '/b' } }],
      /spec\.notify\[0\]\.secretRef: must name exactly one of env and file/,
    );
    assert.equal((await json(`${berth.url}/apps/${app}/`)).status, 404, 'nothing was created');
    const created = await createApp({ notify: [{ url: 'https://example.com/x', on: ['Failed'], secretRef: { env: 'BERTH_E2E_HOOK_SECRET' } }] });
    assert.equal(created.status, 201);
    assert.ok(!JSON.stringify((await json(`${berth.url}/apps/${app}/`)).body).includes(SECRET));
  });
});
