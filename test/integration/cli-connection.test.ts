/**
 * Where the client talks to and how it says what went wrong: tokens,
 * contexts, a server that is down, paged lists, colour, completion.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Berth, exited, freePort, json, serve } from '../helpers/berth-process';
import { CLI, cli, cliEnv, shown } from '../helpers/cli';
import { tempDir, uniqueName } from '../helpers/fixtures';

const TOKEN = 'cli-conn-token-0b7e4d2a9c6f1e83d5a07c4b2e9f6d18';

describe('berth client: server, token, contexts, errors', function () {
  this.timeout(60_000);
  let berth: Berth;

  before(async () => {
    const dir = tempDir('berth-cli-conn-');
    fs.mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir, await freePort(), [], { BERTH_TOKEN: TOKEN });
  });
  after(async () => {
    berth.child.kill('SIGTERM');
    await exited(berth.child);
  });

  it('without a token, or with a wrong one, says so in one line and exits 4', async () => {
    const none = await cli(['get', 'apps'], { env: { BERTH_SERVER: berth.url } });
    assert.equal(none.code, 4, shown(none));
    assert.equal(none.stderr, `berth: ${berth.url}: unauthorized: it needs a token: give --token, BERTH_TOKEN or a context with one\n`);

    const wrong = await cli(['get', 'apps', '--server', berth.url, '--token', 'x'.repeat(40)]);
    assert.equal(wrong.code, 4, shown(wrong));
    assert.equal(wrong.stderr, `berth: ${berth.url}: unauthorized: the token was refused\n`);
  });

  it('a server that is not there: "cannot reach …: connection refused", exit 3', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const res = await cli(['get', 'runs'], { env: { BERTH_SERVER: url, BERTH_TOKEN: TOKEN } });
    assert.equal(res.code, 3, shown(res));
    assert.equal(res.stderr, `berth: cannot reach ${url}: connection refused\n`);
    assert.equal(res.stdout, '');
  });

  it('a server address that is not a URL is a usage error (exit 2), and so is an unknown flag', async () => {
    const res = await cli(['get', 'apps', '--server', 'localhost:8000']);
    assert.equal(res.code, 2, shown(res));
    assert.equal(res.stderr, 'berth: server "localhost:8000" must be an http:// or https:// URL\n');
    const flag = await cli(['get', 'apps', '--frobnicate']);
    assert.equal(flag.code, 2, shown(flag));
    assert.match(flag.stderr, /^berth: unknown option '--frobnicate'/);
  });

  it("version prints the client's and the server's", async () => {
    const version = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')).version;
    const res = await cli(['version'], { env: { BERTH_SERVER: berth.url, BERTH_TOKEN: TOKEN } });
    assert.equal(res.code, 0, shown(res));
    assert.equal(res.stdout, `Client: ${version}\nServer: ${version} (${berth.url})\n`);
  });

  it("contexts: set-context, use-context and get-contexts in BERTH_CONFIG; the context's token is used, and kept private", async () => {
    const config = path.join(tempDir('berth-config-'), 'nested', 'config.yaml');
    const env = { BERTH_CONFIG: config };
    const tokenFile = path.join(tempDir(), 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);

    const add = await cli(['config', 'set-context', 'local', '--server', `${berth.url}/`, '--token', TOKEN], { env });
    assert.equal(add.code, 0, shown(add));
    assert.equal(fs.statSync(config).mode & 0o777, 0o600);
    await cli(['config', 'set-context', 'elsewhere', '--server', 'http://127.0.0.1:1', '--token-file', tokenFile], { env });

    const list = await cli(['config', 'get-contexts'], { env });
    const lines = list.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3, shown(list));
    assert.match(lines[0], /^CURRENT\s+NAME\s+SERVER\s+AUTH$/);
    assert.match(lines[1], new RegExp(`^\\*\\s+local\\s+${berth.url}\\s+token$`));
    assert.match(lines[2], new RegExp(`^\\s+elsewhere\\s+http://127.0.0.1:1\\s+tokenFile ${tokenFile}$`));
    assert.equal(lines[1].indexOf(berth.url), lines[0].indexOf('SERVER'));
    const saved = (await import('yaml')).parse(fs.readFileSync(config, 'utf8'));
    assert.deepEqual(saved.contexts[1], { name: 'elsewhere', server: 'http://127.0.0.1:1', tokenFile }, 'a token file is read at each use, not copied');

    const name = uniqueName('ctx');
    await json(`${berth.url}/apps/`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ name, image: 'busybox:1.36' }) });
    const get = await cli(['get', 'apps', name, '-o', 'name'], { env });
    assert.equal(get.stdout, `app/${name}\n`, shown(get));

    // The context's token goes only to the context's server: one named by hand gets none.
    const other = await cli(['get', 'apps', '--server', `http://localhost:${new URL(berth.url).port}`], { env });
    assert.equal(other.code, 4, shown(other));
    assert.match(other.stderr, /it needs a token/);

    const use = await cli(['config', 'use-context', 'elsewhere'], { env });
    assert.equal(use.stdout, 'Switched to context "elsewhere".\n');
    assert.equal((await cli(['config', 'current-context'], { env })).stdout, 'elsewhere\n');
    const unknown = await cli(['config', 'use-context', 'nowhere'], { env });
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, `berth: no context "nowhere" in ${config} (it has local, elsewhere)\n`);
    const picked = await cli(['get', 'apps', '--context', 'local', name, '-o', 'name'], { env });
    assert.equal(picked.stdout, `app/${name}\n`, shown(picked));
  });

  it("lists page through the server's pages (100 by default) to the end", async () => {
    const label = uniqueName('page');
    for (let i = 0; i < 120; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          json(`${berth.url}/apps/`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}` },
            body: JSON.stringify({
              apiVersion: 'berth.dev/v1',
              kind: 'App',
              metadata: { name: `${label}-${i + j}`, labels: { set: label } },
              spec: { image: 'busybox:1.36' },
            }),
          }),
        ),
      );
    }
    const res = await cli(['get', 'apps', '-l', `set=${label}`, '-o', 'name'], { env: { BERTH_SERVER: berth.url, BERTH_TOKEN: TOKEN } });
    assert.equal(res.code, 0, shown(res));
    assert.equal(res.stdout.trim().split('\n').length, 120);
  });

  it('colour only on a terminal, and never with NO_COLOR', async () => {
    const name = uniqueName('colour');
    await json(`${berth.url}/apps/`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ name, image: 'busybox:1.36' }) });
    await json(`${berth.url}/apps/${name}/run/`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    const onTerminal = (extra: Record<string, string | undefined>) =>
      spawnSync('script', ['-qec', `${process.execPath} ${CLI} get runs --app ${name}`, '/dev/null'], {
        env: cliEnv({ BERTH_SERVER: berth.url, BERTH_TOKEN: TOKEN, ...extra }),
        encoding: 'utf8',
      }).stdout;
    assert.match(onTerminal({ NO_COLOR: undefined }), /\x1b\[\d+m(Pending|Running|Failed)\x1b\[0m/);
    assert.doesNotMatch(onTerminal({ NO_COLOR: '1' }), /\x1b\[/);
    const piped = await cli(['get', 'runs', '--app', name], { env: { BERTH_SERVER: berth.url, BERTH_TOKEN: TOKEN, NO_COLOR: undefined } });
    assert.doesNotMatch(piped.stdout, /\x1b\[/);
  });

  it('completion prints bash and zsh scripts the shells accept', async () => {
    const bash = await cli(['completion', 'bash']);
    assert.equal(bash.code, 0, shown(bash));
    assert.match(bash.stdout, /^complete -F _berth berth$/m);
    const file = path.join(tempDir(), 'berth.bash');
    fs.writeFileSync(file, bash.stdout);
    // The script parses, and completing "berth ge" offers get.
    const completed = spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(berth ge); COMP_CWORD=1; _berth; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    assert.equal(completed.status, 0, completed.stderr);
    assert.equal(completed.stdout.trim(), 'get');
    const resources = spawnSync('bash', ['-c', `source ${file}; COMP_WORDS=(berth get r); COMP_CWORD=2; _berth; echo "\${COMPREPLY[@]}"`], {
      encoding: 'utf8',
    });
    assert.equal(resources.stdout.trim(), 'runs');

    const zsh = await cli(['completion', 'zsh']);
    assert.equal(zsh.code, 0, shown(zsh));
    assert.match(zsh.stdout, /^#compdef berth$/m);
    const hasZsh = spawnSync('zsh', ['-c', 'true']).status === 0;
    if (hasZsh) {
      const zfile = path.join(tempDir(), '_berth');
      fs.writeFileSync(zfile, zsh.stdout);
      assert.equal(spawnSync('zsh', ['-n', zfile]).status, 0);
    }
    const bad = await cli(['completion', 'fish']);
    assert.equal(bad.code, 2);
  });
});
