/**
 * `berth run`, `logs`, `cancel`, `get`, `describe` and `delete` against a
 * real `berth serve` on real Docker: exit codes from the container, output
 * streamed as it is written, watches fed by /events/, Ctrl-C.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Berth, exited, freePort, json, serve } from '../helpers/berth-process';
import { CLI, cli, cliEnv, shown, startCli } from '../helpers/cli';
import { removeContainersOf } from '../helpers/containers';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

const TOKEN = 'cli-runs-token-5a8c1e7f3b9d2046c8e1f7a3b5d9c024';
/** A run that prints, then waits until it is stopped; `trap` makes it stop at once on SIGTERM. */
const LONG = `trap 'exit 143' TERM; echo started; while true; do sleep 0.1; done`;

describe('berth run, logs, cancel, get, describe, delete', function () {
  this.timeout(90_000);
  let berth: Berth;
  let app: string;
  const apps: string[] = [];
  const env = () => ({ BERTH_SERVER: berth.url, BERTH_TOKEN: TOKEN });
  const api = (p: string, init: RequestInit = {}) => json(berth.url + p, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });

  before(async () => {
    const dir = tempDir('berth-cli-runs-');
    fs.mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir, await freePort(), [], { BERTH_TOKEN: TOKEN });
  });
  after(async () => {
    berth.child.kill('SIGTERM');
    await exited(berth.child);
    await removeContainersOf(apps);
  });

  beforeEach(async () => {
    app = uniqueName('cli');
    apps.push(app);
    const created = await api('/apps/', {
      method: 'POST',
      body: JSON.stringify({
        apiVersion: 'berth.dev/v1',
        kind: 'App',
        metadata: { name: app },
        spec: { image: TEST_IMAGE, command: ['sh', '-c', 'echo hello $WHO; exit 3'], env: { WHO: 'world' } },
      }),
    });
    assert.equal(created.status, 201);
  });

  it("run --wait exits with the container's exit code; 0 when it succeeds", async () => {
    const failed = await cli(['run', app, '--wait', '--name', `${app}-a`], { env: env() });
    assert.equal(failed.code, 3, shown(failed));
    assert.equal(failed.stdout, `run/${app}-a created\n`);
    assert.equal(failed.stderr, `berth: run "${app}-a" failed with exit code 3\n`);

    const ok = await cli(['run', app, '--wait', '--command', 'sh -c "exit 0"'], { env: env() });
    assert.equal(ok.code, 0, shown(ok));
    assert.equal(ok.stderr, '');
  });

  it('run --follow prints the output as it is written, with --env and a command after --, and exits with the code', async () => {
    const follow = startCli(['run', app, '--follow', '-e', 'WHO=you', '--', 'sh', '-c', 'echo first $WHO; sleep 2; echo second; exit 5'], { env: env() });
    await waitFor('the first line while the run goes on', () => follow.stdout().includes('first you\n'));
    assert.doesNotMatch(follow.stdout(), /second/, 'the first line came before the run ended');
    const res = await follow.result;
    assert.equal(res.code, 5, shown(res));
    assert.match(res.stdout, /^run\/\S+ created\nfirst you\nsecond\n$/);
  });

  it("logs prints a finished run's kept output, --tail its last lines, -f a running one until it ends", async () => {
    assert.equal((await cli(['run', app, '--wait', '--name', `${app}-l`, '--command', 'sh -c "echo one; echo two; echo three"'], { env: env() })).code, 0);
    const all = await cli(['logs', `${app}-l`], { env: env() });
    assert.equal(all.stdout, 'one\ntwo\nthree\n', shown(all));
    const tail = await cli(['logs', `${app}-l`, '--tail', '1'], { env: env() });
    assert.equal(tail.stdout, 'three\n', shown(tail));

    await cli(['run', app, '--name', `${app}-f`, '--command', 'sh -c "echo up; sleep 2; echo down"'], { env: env() });
    const follow = await cli(['logs', '-f', `${app}-f`], { env: env() });
    assert.equal(follow.code, 0, shown(follow));
    assert.equal(follow.stdout, 'up\ndown\n');
    assert.equal((await api(`/runs/${app}-f/`)).body.status.phase, 'Succeeded', 'logs -f ended with the run');
  });

  it('cancel stops a running run, and a run --wait on it exits 1 naming the reason', async () => {
    const name = `${app}-c`;
    const waiting = startCli(['run', app, '--wait', '--name', name, '--', 'sh', '-c', LONG], { env: env() });
    await waitFor('the run to be Running', async () => (await api(`/runs/${name}/`)).body?.status?.phase === 'Running');
    const cancel = await cli(['cancel', name], { env: env() });
    assert.equal(cancel.code, 0, shown(cancel));
    assert.equal(cancel.stdout, `run/${name} cancelled\n`);
    const res = await waiting.result;
    assert.equal(res.code, 1, shown(res));
    assert.equal(res.stderr, `berth: run "${name}" Cancelled: cancelled through the API\n`);

    const again = await cli(['cancel', name], { env: env() });
    assert.equal(again.code, 1, shown(again));
    assert.equal(again.stderr, `berth: run "${name}" is already Cancelled; only Pending or Running runs can be cancelled\n`);
  });

  it("get runs: a table with the columns a user scans, names, one object as the API's object form", async () => {
    await cli(['run', app, '--wait', '--name', `${app}-g`], { env: env() });
    const table = await cli(['get', 'runs', '--app', app], { env: env() });
    assert.equal(table.code, 0, shown(table));
    const [header, row, ...rest] = table.stdout.trimEnd().split('\n');
    assert.match(header, /^NAME\s+APP\s+PHASE\s+REASON\s+EXIT\s+ATTEMPTS\s+DURATION\s+AGE$/);
    assert.match(row, new RegExp(`^${app}-g\\s+${app}\\s+Failed\\s+Error\\s+3\\s+1\\s+\\d+s\\s+\\d+s$`));
    assert.equal(rest.length, 0);
    assert.equal(header.indexOf('PHASE'), row.indexOf('Failed'), 'columns line up');

    const names = await cli(['get', 'runs', '--app', app, '--phase', 'Failed', '-o', 'name'], { env: env() });
    assert.equal(names.stdout, `run/${app}-g\n`);
    const none = await cli(['get', 'runs', '--app', app, '--phase', 'Running'], { env: env() });
    assert.equal(none.stdout, '');
    assert.equal(none.stderr, 'No runs found.\n');

    const one = JSON.parse((await cli(['get', 'run', `${app}-g`, '-o', 'json'], { env: env() })).stdout);
    assert.deepEqual(Object.keys(one), ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
    assert.equal(one.status.exitCode, 3);

    const apps = await cli(['get', 'apps', app, '-o', 'wide'], { env: env() });
    assert.match(apps.stdout, /^NAME\s+IMAGE\s+SOURCE\s+AGE\s+RUNTIME\s+SCHEDULE\s+NEXT RUN\s+LAST RUN\s+COMMAND\s+LABELS$/m);
    assert.match(apps.stdout, new RegExp(`^${app}\\s+${TEST_IMAGE.replace(/[./]/g, '\\$&')}\\s+api\\s+`, 'm'));
  });

  it('get -w prints the list, then each change from /events/ as it happens', async () => {
    const watch = startCli(['get', 'runs', '--app', app, '-w'], { env: env() });
    try {
      await waitFor('the header', () => watch.stdout().startsWith('NAME'));
      await cli(['run', app, '--name', `${app}-w`], { env: env() });
      await waitFor('the run to show up Failed in the watch', () => new RegExp(`^${app}-w\\s+${app}\\s+Failed\\s+Error\\s+3`, 'm').test(watch.stdout()));
      assert.match(watch.stdout(), new RegExp(`^${app}-w\\s+${app}\\s+Pending`, 'm'));
      await cli(['delete', 'app', app], { env: env() });
      await waitFor('the deletion in the watch', () => watch.stdout().includes(`${app}-w (deleted)`));
    } finally {
      watch.child.kill('SIGTERM');
      await watch.result;
    }
  });

  it("describe shows an App's spec and last runs, and a run's status and attempts", async () => {
    await cli(['run', app, '--wait', '--name', `${app}-d`], { env: env() });
    const described = await cli(['describe', 'app', app], { env: env() });
    assert.equal(described.code, 0, shown(described));
    assert.match(described.stdout, new RegExp(`^Name:\\s+${app}$`, 'm'));
    assert.match(described.stdout, /^Source:\s+api$/m);
    assert.match(described.stdout, /^Spec:\n  image: berth-test\/busybox:latest$/m);
    assert.match(described.stdout, new RegExp(`^Last runs \\(1 of 1\\):\\n\\s+NAME.*\\n\\s+${app}-d\\s+Failed\\s+Error\\s+3`, 'm'));

    const run = await cli(['describe', 'run', `${app}-d`], { env: env() });
    assert.match(run.stdout, /^Phase:\s+Failed$/m);
    assert.match(run.stdout, /^Exit code:\s+3$/m);
    assert.match(run.stdout, /^History:\n\s+#\s+STARTED\s+FINISHED\s+EXIT\s+REASON\s+MESSAGE\n\s+1\s+\S+\s+\S+\s+3\s+Error/m);
  });

  it('delete app removes it; what is gone is "not found" in one line, exit 1', async () => {
    const res = await cli(['delete', 'app', app], { env: env() });
    assert.equal(res.code, 0, shown(res));
    assert.equal(res.stdout, `app/${app} deleted\n`);
    const gone = await cli(['get', 'app', app], { env: env() });
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr, `berth: app "${app}" not found\n`);
    assert.equal(gone.stdout, '');
  });

  it('Ctrl-C without a terminal detaches, saying so, and the run goes on', async () => {
    const name = `${app}-i`;
    const follow = startCli(['run', app, '--follow', '--name', name, '--', 'sh', '-c', LONG], { env: env() });
    await waitFor("the run's output", () => follow.stdout().includes('started'));
    follow.child.kill('SIGINT');
    const res = await follow.result;
    assert.equal(res.code, 130, shown(res));
    assert.match(res.stderr, new RegExp(`^berth: detached \\(no terminal to ask whether to cancel it\\); run ${name} goes on`, 'm'));
    assert.equal((await api(`/runs/${name}/`)).body.status.phase, 'Running');
    assert.equal((await cli(['cancel', name], { env: env() })).code, 0);
  });

  it('Ctrl-C on a terminal asks before cancelling; yes cancels the run and exits 1', async () => {
    const name = `${app}-t`;
    // script(1) gives the client a pseudo-terminal; ^C typed there is SIGINT to it, as at a keyboard. exec makes the
    // client script's own child: a shell between them would die of the same SIGINT, and script would report that.
    const command = ['exec', process.execPath, CLI, 'run', app, '--follow', '--name', name, '--', 'sh', '-c', `"${LONG}"`].join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: cliEnv(env()), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout!.on('data', (chunk) => (screen += chunk));
    const code = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await waitFor("the run's output on the terminal", () => screen.includes('started'));
      child.stdin!.write('\x03');
      await waitFor('the question', () => screen.includes(`cancel run ${name}? [y/N]`));
      child.stdin!.write('y\r');
      assert.equal(await code, 1, screen);
      assert.match(screen, new RegExp(`berth: run "${name}" Cancelled`));
      assert.equal((await api(`/runs/${name}/`)).body.status.phase, 'Cancelled');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
