import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const ENV_TOKEN = 'env-token-3f1c9a7e52b04d6e8a1f0c2b9d7e4a65';

interface Exit {
  code: number | null;
  stderr: string;
}

/** Runs `berth serve …` and waits for it to exit (for the flags that must refuse to start). */
function serveUntilExit(args: string[], env: Record<string, string> = {}): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

describe('berth serve', function () {
  this.timeout(30_000);
  let child: ChildProcess | undefined;

  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  it('starts on the given port and SQLite file, answers /healthz, and exits 0 on SIGTERM within a few seconds', async () => {
    const port = await freePort();
    const db = path.join(tempDir(), 'nested', 'berth.sqlite');
    child = spawn(process.execPath, [MAIN, 'serve', '--port', String(port), '--db', db, '--log-level', 'silent'], { stdio: 'ignore' });
    const res = await waitFor('/healthz', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok));
    assert.ok(res);
    const created = await fetch(`http://127.0.0.1:${port}/apps/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'cli-app', image: 'busybox' }),
    });
    assert.equal(created.status, 201);

    // An open event stream must not hold the shutdown up.
    const events = await fetch(`http://127.0.0.1:${port}/events/`);
    assert.equal(events.status, 200);
    const started = Date.now();
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });

  it('reads its flags from BERTH_* environment twins', async () => {
    const port = await freePort();
    child = spawn(process.execPath, [MAIN, 'serve'], {
      env: { ...process.env, BERTH_PORT: String(port), BERTH_DB: path.join(tempDir(), 'b.sqlite'), BERTH_TOKEN: ENV_TOKEN, BERTH_LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
    await waitFor('/healthz', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok));
    assert.equal((await fetch(`http://127.0.0.1:${port}/apps/`)).status, 401);
    assert.equal((await fetch(`http://127.0.0.1:${port}/apps/`, { headers: { authorization: `Bearer ${ENV_TOKEN}` } })).status, 200);
    child.kill('SIGINT');
    assert.equal(await exited(child), 0);
  });

  it('refuses a bad port with one line naming the flag, exit 2', async () => {
    for (const port of ['0', '65536', 'http']) {
      const { code, stderr } = await serveUntilExit(['--port', port]);
      assert.equal(code, 2, port);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
      assert.match(stderr, /--port/);
    }
    const { code, stderr } = await serveUntilExit([], { BERTH_PORT: 'abc' });
    assert.equal(code, 2);
    assert.match(stderr, /--port.*BERTH_PORT/);
  });

  it('refuses an unknown flag and a bad --max-parallel, exit 2', async () => {
    let exit = await serveUntilExit(['--bogus']);
    assert.equal(exit.code, 2);
    assert.equal(exit.stderr.trim(), "berth: unknown option '--bogus'");
    exit = await serveUntilExit(['--max-parallel', '0']);
    assert.equal(exit.code, 2);
    assert.match(exit.stderr, /--max-parallel/);
  });

  it('refuses runtimes it does not know, and a default runtime it is not told to drive, exit 2', async () => {
    let exit = await serveUntilExit(['--runtimes', 'docker,nomad']);
    assert.equal(exit.code, 2);
    assert.match(
      exit.stderr.trim(),
      /^berth: option '--runtimes <list>' argument 'docker,nomad' is invalid\. must be a comma-separated list of docker, kubernetes\.$/,
    );
    exit = await serveUntilExit(['--runtime', 'kubernetes', '--runtimes', 'docker']);
    assert.equal(exit.code, 2);
    assert.equal(exit.stderr.trim(), 'berth: --runtimes docker: must include the default --runtime kubernetes');
    exit = await serveUntilExit(['--namespace', 'Not_A_Namespace']);
    assert.equal(exit.code, 2);
    assert.match(exit.stderr, /--namespace/);
  });

  it('refuses an unwritable database with one line naming it, exit 1', async () => {
    const { code, stderr } = await serveUntilExit(['--db', '/proc/forbidden/x.sqlite', '--port', String(await freePort())]);
    assert.equal(code, 1);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, /^berth: cannot use database file \/proc\/forbidden\/x\.sqlite/);
  });

  it('refuses an unreachable PostgreSQL with one line naming it (password hidden), exit 1', async () => {
    const { code, stderr } = await serveUntilExit(['--db', `postgres://berth:hunter2@127.0.0.1:${await freePort()}/db`]);
    assert.equal(code, 1);
    assert.match(stderr, /^berth: cannot reach database postgres:\/\/berth:\*\*\*@127\.0\.0\.1:\d+\/db: /);
    assert.ok(!stderr.includes('hunter2'));
  });

  it('refuses a non-loopback host without a token, unless --insecure-no-auth', async () => {
    const { code, stderr } = await serveUntilExit(['--host', '0.0.0.0']);
    assert.equal(code, 2);
    assert.equal(
      stderr.trim(),
      'berth: refusing to listen on 0.0.0.0 without --token: anyone who can reach it could run containers; ' +
        'set BERTH_TOKEN or --token-file (or --token), or pass --insecure-no-auth to accept that',
    );
    const port = await freePort();
    child = spawn(
      process.execPath,
      [MAIN, 'serve', '--host', '0.0.0.0', '--insecure-no-auth', '--port', String(port), '--db', path.join(tempDir(), 'b.sqlite'), '--log-level', 'silent'],
      { stdio: 'ignore' },
    );
    await waitFor('/healthz', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok));
    child.kill('SIGTERM');
    assert.equal(await exited(child), 0);
  });

  it('answers the Host names of --allowed-hosts (BERTH_ALLOWED_HOSTS) and refuses others; a bad list exits 2', async () => {
    const bad = await serveUntilExit(['--allowed-hosts', 'berth.svc,not a name']);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr.trim(),
      /^berth: option '--allowed-hosts <list>' argument 'berth.svc,not a name' is invalid\. must be "\*" or comma-separated host names/,
    );
    const port = await freePort();
    const apps = path.join(tempDir(), 'apps');
    child = spawn(
      process.execPath,
      [MAIN, 'serve', '--port', String(port), '--db', path.join(tempDir(), 'b.sqlite'), '--apps-dir', apps, '--log-level', 'silent'],
      {
        env: { ...process.env, BERTH_ALLOWED_HOSTS: 'berth.svc' },
        stdio: 'ignore',
      },
    );
    await waitFor('/healthz', () => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok));
    const status = (host: string) =>
      new Promise<number>((resolve, reject) =>
        http.get({ port, path: '/apps/', headers: { host }, setHost: false }, (res) => resolve(res.resume().statusCode ?? 0)).on('error', reject),
      );
    assert.equal(await status(`berth.svc:${port}`), 200);
    assert.equal(await status(`localhost:${port}`), 200);
    assert.equal(await status(`attacker.example:${port}`), 403);
  });

  it('refuses a port already in use, exit 1', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const { code, stderr } = await serveUntilExit(['--port', String(port), '--db', path.join(tempDir(), 'b.sqlite')]);
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`^berth: cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use`));
    } finally {
      server.close();
    }
  });
});
