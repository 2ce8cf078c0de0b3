import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startTestApi } from '../helpers/api';
import { exited, freePort, serve, type Berth } from '../helpers/berth-process';
import { tempDir } from '../helpers/fixtures';

const MAIN = path.resolve(__dirname, '../../src/cli/main.js');
const TOKEN = 'a8f3c61e0b9d47d2b5e7c4a1f0d36e92';

/** A folder for a `berth serve` child: its store, and an apps folder (one that is missing is waited for, not ready). */
function berthDir(): string {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'apps'));
  return dir;
}

/** Runs `berth serve …` expecting it to refuse to start; resolves with its exit code and stderr. */
function refused(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    delete clean.BERTH_TOKEN;
    delete clean.BERTH_TOKEN_FILE;
    const child = spawn(process.execPath, [MAIN, 'serve', '--db', path.join(tempDir(), 'b.sqlite'), ...args], {
      env: { ...clean, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('berth serve: the API token', function () {
  this.timeout(30_000);
  let berth: Berth | undefined;

  afterEach(async () => {
    if (berth && berth.child.exitCode === null) {
      berth.child.kill('SIGTERM');
      await exited(berth.child);
    }
    berth = undefined;
  });

  const status = async (token?: string): Promise<number> =>
    (await fetch(`${berth!.url}/apps/`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).status;

  it('refuses a short or well-known token with one line naming where it came from, exit 2', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['--token', 'change-me'], {}, 'berth: --token is 9 characters long; use at least 32 random characters, e.g. from "openssl rand -hex 32"'],
      [[], { BERTH_TOKEN: 'secret' }, 'berth: BERTH_TOKEN is 6 characters long; use at least 32 random characters, e.g. from "openssl rand -hex 32"'],
      [
        [],
        { BERTH_TOKEN: 'change-me-change-me-change-me-change-me' },
        'berth: BERTH_TOKEN looks like a placeholder, not a secret; use at least 32 random characters, e.g. from "openssl rand -hex 32"',
      ],
      [['--token', 'a'.repeat(40)], {}, 'berth: --token repeats a few characters; use at least 32 random characters, e.g. from "openssl rand -hex 32"'],
    ];
    for (const [args, env, line] of cases) {
      const { code, stderr } = await refused(['--port', String(await freePort()), ...args], env);
      assert.equal(code, 2, line);
      assert.equal(stderr.trim(), line);
    }
  });

  it('reads the token from --token-file and BERTH_TOKEN_FILE (its first line), without a warning', async () => {
    const dir = berthDir();
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, `${TOKEN}\n`);
    berth = await serve(dir, await freePort(), ['--token-file', file]);
    assert.equal(await status(), 401);
    assert.equal(await status(TOKEN), 200);
    berth.child.kill('SIGTERM');
    await exited(berth.child);

    berth = await serve(berthDir(), await freePort(), [], { BERTH_TOKEN_FILE: file });
    assert.equal(await status(TOKEN), 200);
    assert.doesNotMatch(berth.output(), /visible to other users/);
  });

  it('refuses a token file it cannot read, an empty one, a weak one, and two sources of the token', async () => {
    const dir = tempDir();
    const missing = path.join(dir, 'missing');
    let exit = await refused(['--token-file', missing]);
    assert.equal(exit.code, 2);
    assert.equal(exit.stderr.trim(), `berth: --token-file ${missing}: cannot read it (ENOENT)`);
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '\n');
    exit = await refused(['--token-file', empty]);
    assert.equal(exit.stderr.trim(), `berth: --token-file ${empty}: the file is empty`);
    const weak = path.join(dir, 'weak');
    fs.writeFileSync(weak, 'password\n');
    exit = await refused(['--token-file', weak]);
    assert.equal(exit.code, 2);
    assert.match(exit.stderr.trim(), new RegExp(`^berth: the token in ${weak} is 8 characters long;`));
    exit = await refused(['--token-file', weak], { BERTH_TOKEN: TOKEN });
    assert.equal(exit.code, 2);
    assert.equal(exit.stderr.trim(), 'berth: --token and --token-file (or BERTH_TOKEN and BERTH_TOKEN_FILE) both give the token: keep one');
  });

  it('still takes --token on the command line, warning that other users can read it; BERTH_TOKEN gives no warning', async () => {
    berth = await serve(berthDir(), await freePort(), ['--token', TOKEN]);
    assert.equal(await status(TOKEN), 200);
    const warning = berth
      .output()
      .split('\n')
      .find((line) => line.includes('visible to other users'));
    assert.ok(warning, berth.output());
    assert.equal(
      JSON.parse(warning).msg,
      'the token given with --token is visible to other users of this machine (ps, /proc); prefer BERTH_TOKEN or --token-file',
    );
    assert.equal(JSON.parse(warning).level, 40);
    berth.child.kill('SIGTERM');
    await exited(berth.child);

    berth = await serve(berthDir(), await freePort(), [], { BERTH_TOKEN: TOKEN });
    assert.equal(await status(TOKEN), 200);
    assert.doesNotMatch(berth.output(), /visible to other users/);
  });

  it('refuses a weak token given to the API directly, before it serves', async () => {
    await assert.rejects(startTestApi({ token: 'change-me' }), { message: /^the API token is 9 characters long; use at least 32/ });
  });
});
