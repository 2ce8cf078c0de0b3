/**
 * `berth apply` and `berth diff` against a real `berth serve`: folders of
 * manifests, created / configured / unchanged, dry runs, prune, and the
 * exit codes CI gates on.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Berth, exited, freePort, json, serve } from '../helpers/berth-process';
import { cli, shown } from '../helpers/cli';
import { removeContainersOf } from '../helpers/containers';
import { TEST_IMAGE, tempDir, uniqueName as anyName } from '../helpers/fixtures';

const TOKEN = 'cli-apply-token-7d2e9c41b8a05f36e1d4c7b2a9f08e53';

describe('berth apply and berth diff', function () {
  this.timeout(60_000);
  let berth: Berth;
  let serverDir: string;
  const made = new Set<string>();
  const uniqueName = (prefix: string): string => {
    const name = anyName(prefix);
    made.add(name);
    return name;
  };
  const env = () => ({ BERTH_SERVER: berth.url, BERTH_TOKEN: TOKEN });
  const api = (p: string, init: RequestInit = {}) => json(berth.url + p, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });

  before(async () => {
    serverDir = tempDir('berth-cli-apply-');
    fs.mkdirSync(path.join(serverDir, 'apps'));
    berth = await serve(serverDir, await freePort(), ['--token-file', writeToken()]);
  });
  after(async () => {
    berth.child.kill('SIGTERM');
    await exited(berth.child);
    await removeContainersOf(made);
  });

  function writeToken(): string {
    const file = path.join(tempDir(), 'token');
    fs.writeFileSync(file, TOKEN + '\n');
    return file;
  }

  const appDoc = (name: string, extra = '') =>
    [
      'apiVersion: berth.dev/v1',
      'kind: App',
      `metadata: {name: ${name}, labels: {team: data}}`,
      'spec:',
      `  image: ${TEST_IMAGE}`,
      `  command: sh -c 'echo hi $WHO'`,
      '  env: {WHO: world}',
      extra,
    ]
      .filter(Boolean)
      .join('\n');

  /** A folder with one App at the top, and an App and a Run in a two-document file below. */
  function folder(a: string, b: string, run: string): string {
    const dir = tempDir('berth-manifests-');
    fs.mkdirSync(path.join(dir, 'team'));
    fs.writeFileSync(path.join(dir, 'a.yaml'), appDoc(a));
    fs.writeFileSync(path.join(dir, 'team', 'b.yml'), `${appDoc(b)}\n---\napiVersion: berth.dev/v1\nkind: Run\nmetadata: {name: ${run}}\nspec: {app: ${b}}\n`);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a manifest');
    fs.writeFileSync(path.join(dir, '.hidden.yaml'), 'kind: Nonsense');
    return dir;
  }

  it('applies a folder recursively, then again as unchanged, and a changed spec as configured', async () => {
    const [a, b, run] = [uniqueName('apply'), uniqueName('apply'), uniqueName('once')];
    const dir = folder(a, b, run);

    const first = await cli(['apply', '-f', dir], { env: env() });
    assert.equal(first.code, 0, shown(first));
    assert.deepEqual(first.stdout.trim().split('\n').sort(), [`app/${a} created`, `app/${b} created`, `run/${run} created`].sort());
    assert.equal((await api(`/apps/${b}/`)).body.spec.env.WHO, 'world');
    assert.equal((await api(`/runs/${run}/`)).body.app, b);

    const again = await cli(['apply', '-f', dir], { env: env() });
    assert.equal(again.code, 0, shown(again));
    assert.deepEqual(again.stdout.trim().split('\n').sort(), [`app/${a} unchanged`, `app/${b} unchanged`, `run/${run} unchanged`].sort());
    assert.equal((await api(`/apps/${a}/`)).body.metadata.resourceVersion, '1', 'an unchanged App is not written');
    assert.equal((await api(`/runs/?app=${b}`)).body.length, 1, 'a Run document runs once');

    fs.writeFileSync(path.join(dir, 'a.yaml'), appDoc(a, '  retries: 2'));
    const changed = await cli(['apply', '-f', dir], { env: env() });
    assert.equal(changed.code, 0, shown(changed));
    assert.match(changed.stdout, new RegExp(`^app/${a} configured$`, 'm'));
    assert.match(changed.stdout, new RegExp(`^app/${b} unchanged$`, 'm'));
    assert.equal((await api(`/apps/${a}/`)).body.spec.retries, 2);
  });

  it('--dry-run checks with the server and changes nothing', async () => {
    const [a, b, run] = [uniqueName('dry'), uniqueName('dry'), uniqueName('once')];
    const res = await cli(['apply', '--dry-run', '-f', folder(a, b, run)], { env: env() });
    assert.equal(res.code, 0, shown(res));
    assert.match(res.stdout, new RegExp(`^app/${a} created \\(server dry run\\)$`, 'm'));
    assert.equal((await api(`/apps/${a}/`)).status, 404);
    assert.equal((await api(`/runs/${run}/`)).status, 404);
  });

  it('reads manifests from stdin with -f -', async () => {
    const name = uniqueName('stdin');
    const res = await cli(['apply', '-f', '-'], { env: env(), input: appDoc(name) });
    assert.equal(res.code, 0, shown(res));
    assert.equal(res.stdout, `app/${name} created\n`);
  });

  it('applies nothing when the server refuses one document, naming the file, the object and the field', async () => {
    const [good, bad] = [uniqueName('good'), uniqueName('bad')];
    const dir = tempDir('berth-manifests-');
    fs.writeFileSync(path.join(dir, 'good.yaml'), appDoc(good));
    fs.writeFileSync(path.join(dir, 'bad.yaml'), appDoc(bad, '  retries: -1'));
    const res = await cli(['apply', '-f', dir], { env: env() });
    assert.equal(res.code, 1, shown(res));
    assert.match(
      res.stderr,
      new RegExp(`^berth: ${escapeRegExp(path.join(dir, 'bad.yaml'))}: app/${bad}: spec.retries: must be an integer from 0 to 100$`, 'm'),
    );
    assert.match(res.stderr, /^berth: 1 of 2 documents refused; nothing was applied$/m);
    assert.equal(res.stdout, '');
    assert.equal((await api(`/apps/${good}/`)).status, 404);
  });

  it('a file that does not parse is a usage error at file:line:column, and nothing is sent', async () => {
    const dir = tempDir('berth-manifests-');
    const file = path.join(dir, 'broken.yaml');
    fs.writeFileSync(file, 'apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: x\nspec: {}\n');
    const res = await cli(['apply', '-f', file], { env: env() });
    assert.equal(res.code, 2, shown(res));
    assert.match(res.stderr, new RegExp(`^berth: ${escapeRegExp(file)}:\\d+:\\d+: `, 'm'));

    const missing = await cli(['apply', '-f', path.join(dir, 'nope.yaml')], { env: env() });
    assert.equal(missing.code, 2, shown(missing));
    assert.equal(missing.stderr, `berth: cannot read ${path.join(dir, 'nope.yaml')}: no such file or directory\n`);
  });

  it('diff exits 0 with nothing to show, 1 with a unified diff of the spec, and 2 or more on error', async () => {
    const [a, b, run] = [uniqueName('diff'), uniqueName('diff'), uniqueName('once')];
    const dir = folder(a, b, run);
    assert.equal((await cli(['apply', '-f', dir], { env: env() })).code, 0);

    const same = await cli(['diff', '-f', dir], { env: env() });
    assert.equal(same.code, 0, shown(same));
    assert.equal(same.stdout, '');

    fs.writeFileSync(path.join(dir, 'a.yaml'), appDoc(a).replace('WHO: world', 'WHO: there'));
    const changed = await cli(['diff', '-f', dir], { env: env() });
    assert.equal(changed.code, 1, shown(changed));
    assert.match(changed.stdout, new RegExp(`^--- app/${a} \\(live\\)$`, 'm'));
    assert.match(changed.stdout, /^@@ -\d+,\d+ \+\d+,\d+ @@$/m);
    assert.match(changed.stdout, /^-    WHO: world$/m);
    assert.match(changed.stdout, /^\+    WHO: there$/m);
    assert.doesNotMatch(changed.stdout, new RegExp(`app/${b}`), 'an unchanged App is not shown');
    assert.equal((await api(`/apps/${a}/`)).body.spec.env.WHO, 'world', 'diff changes nothing');

    fs.writeFileSync(path.join(dir, 'a.yaml'), appDoc(a, '  retries: many'));
    const refused = await cli(['diff', '-f', dir], { env: env() });
    assert.equal(refused.code, 2, shown(refused));
    assert.match(refused.stderr, /spec\.retries: must be an integer/);

    const down = await cli(['diff', '-f', dir], { env: { ...env(), BERTH_SERVER: `http://127.0.0.1:${await freePort()}` } });
    assert.equal(down.code, 3, shown(down));
  });

  it('--prune deletes the API-made Apps the files do not declare, never those a file in the apps folder owns', async () => {
    const label = uniqueName('prune');
    const [kept, stray] = [uniqueName('kept'), uniqueName('stray')];
    const fileOwned = uniqueName('owned');
    const dir = tempDir('berth-manifests-');
    fs.writeFileSync(path.join(dir, 'kept.yaml'), appDoc(kept).replace('team: data', `set: ${label}`));
    for (const [name, labels] of [
      [stray, { set: label }],
      [uniqueName('other'), { set: 'another' }],
    ] as const) {
      assert.equal(
        (
          await api('/apps/', {
            method: 'POST',
            body: JSON.stringify({ apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name, labels }, spec: { image: TEST_IMAGE } }),
          })
        ).status,
        201,
      );
    }
    fs.writeFileSync(path.join(serverDir, 'apps', `${fileOwned}.yaml`), appDoc(fileOwned).replace('team: data', `set: ${label}`));
    await waitForApp(fileOwned);

    const diff = await cli(['diff', '--prune', '-l', `set=${label}`, '-f', dir], { env: env() });
    assert.equal(diff.code, 1, shown(diff));
    assert.match(diff.stdout, new RegExp(`^--- app/${stray} \\(live\\)\\n\\+\\+\\+ app/${stray} \\(pruned\\)$`, 'm'));
    assert.doesNotMatch(diff.stdout, new RegExp(fileOwned));

    const res = await cli(['apply', '--prune', '-l', `set=${label}`, '-f', dir], { env: env() });
    assert.equal(res.code, 0, shown(res));
    assert.deepEqual(res.stdout.trim().split('\n'), [`app/${kept} created`, `app/${stray} pruned`]);
    assert.equal((await api(`/apps/${stray}/`)).status, 404);
    assert.equal((await api(`/apps/${fileOwned}/`)).status, 200);
  });

  it("sources lists the apps folder file by file with errors at file:line:column, and describe names an App's file and its errors", async () => {
    const owned = uniqueName('src');
    const file = `${owned}.yaml`;
    fs.writeFileSync(path.join(serverDir, 'apps', file), appDoc(owned));
    await waitForApp(owned);
    fs.writeFileSync(path.join(serverDir, 'apps', file), appDoc(owned, '  retries: -1'));
    const { waitFor } = await import('../helpers/wait');
    const sources = await waitFor('the file held in error', async () => {
      const res = await cli(['sources'], { env: env() });
      return new RegExp(`^${file}\\s+Error\\s+app/${owned}`, 'm').test(res.stdout) ? res : undefined;
    });
    assert.equal(sources.code, 0, shown(sources));
    assert.match(sources.stdout, /^Folder: .*\(ready\)$/m);
    assert.match(sources.stdout, new RegExp(`^  ${file}:8:12: app/${owned} spec\\.retries: must be an integer from 0 to 100$`, 'm'));

    const described = await cli(['describe', 'app', owned], { env: env() });
    assert.equal(described.code, 0, shown(described));
    assert.match(described.stdout, new RegExp(`^Source:\\s+file:${file} \\(Error\\)$`, 'm'));
    assert.match(described.stdout, new RegExp(`^Sync errors:\\n  ${file}:8:12: spec\\.retries: must be an integer from 0 to 100$`, 'm'));
    assert.match(described.stdout, /change it there/);
  });

  async function waitForApp(name: string): Promise<void> {
    const { waitFor } = await import('../helpers/wait');
    await waitFor(`app ${name} from the apps folder`, async () => (await api(`/apps/${name}/`)).status === 200);
  }
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
