import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from '../helpers/api';
import { uniqueName } from '../helpers/fixtures';
import { appYaml, useFolderSource, writeFile } from '../helpers/folder';
import { waitFor } from '../helpers/wait';

const YAML = { 'content-type': 'application/yaml' };

/** An App manifest whose env holds a ~1 MB anchored value and `uses` aliases of it: under 1 MiB of text. */
function aliasedEnvYaml(name: string, uses: number, valueBytes = 1_000_000 - 120 - uses * 16): string {
  const aliases = Array.from({ length: uses }, (_, i) => `    B${i}: *big\n`).join('');
  return `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: ${name}}\nspec:\n  image: busybox:1.36\n  env:\n    A: &big "${'x'.repeat(valueBytes)}"\n${aliases}`;
}

/** The "billion laughs": each level lists the one before ten times. */
function laughsYaml(name: string): string {
  const levels = ['    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (const [prev, next] of [
    ['a', 'b'],
    ['b', 'c'],
    ['c', 'd'],
    ['d', 'e'],
    ['e', 'f'],
    ['f', 'g'],
  ]) {
    levels.push(`    ${next}: &${next} [${Array(10).fill(`*${prev}`).join(',')}]`);
  }
  return `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: ${name}}\nspec:\n  image: busybox:1.36\n  kubernetes:\n    annotations:\n${levels.join('\n')}\n`;
}

describe('API: size limits on what a body may become', () => {
  let api: TestApi;
  beforeEach(async () => {
    api = await startTestApi();
  });
  afterEach(async () => {
    await api.close();
  });

  it('refuses a YAML body whose aliases expand a 1 MB text a hundred-fold, with 413 naming the limit, and stores nothing', async () => {
    const name = uniqueName('aliased');
    const body = aliasedEnvYaml(name, 99);
    assert.ok(body.length < 1024 * 1024, `the body is ${body.length} bytes`);
    const res = await api.call('POST', '/apps/', { body, headers: YAML });
    assert.equal(res.status, 413);
    assert.equal(res.body.error, 'PayloadTooLarge');
    assert.equal(res.body.message, 'YAML body refused: the document is larger than 2097152 bytes (2 MiB) as JSON with its aliases expanded');
    assert.equal(await api.store.getApp(name), null);
  });

  it('refuses an exponential alias expansion with 413, not 500', async () => {
    const name = uniqueName('laughs');
    const res = await api.call('POST', '/apps/', { body: laughsYaml(name), headers: YAML });
    assert.equal(res.status, 413);
    assert.equal(res.body.message, 'YAML body refused: the document uses aliases too often: at most 100 alias expansions are allowed');
    assert.equal(await api.store.getApp(name), null);
  });

  it('still accepts a few aliases that expand a little', async () => {
    const name = uniqueName('shared');
    const body = `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: ${name}}\nspec:\n  image: busybox:1.36\n  command: &cmd [sh, -c, "echo $A"]\n  env: {A: &v hello, B: *v}\n`;
    const res = await api.call('POST', '/apps/', { body, headers: YAML });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(res.body.spec.env, { A: 'hello', B: 'hello' });
  });

  it('refuses a spec over 256 KiB as JSON, naming its size and the limit', async () => {
    const name = uniqueName('big');
    const env = { A: 'a'.repeat(100_000), B: 'b'.repeat(100_000), C: 'c'.repeat(100_000) };
    const res = await api.call('POST', '/apps/', { body: { name, image: 'busybox:1.36', envs: env } });
    assert.equal(res.status, 422);
    assert.match(res.body.message, /^spec: is 300\d{3} bytes as JSON; at most 262144 \(256 KiB\) are allowed$/);
    assert.deepEqual(
      res.body.details.map((d: { field: string }) => d.field),
      ['spec'],
    );
    const manifest = { apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name }, spec: { image: 'busybox:1.36', env } };
    assert.equal((await api.call('POST', '/apps/', { body: manifest })).status, 422);
    assert.equal(await api.store.getApp(name), null);
  });

  it('refuses more than 1024 env entries and more than 4096 command words, in either form', async () => {
    const name = uniqueName('many');
    const env = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`V${i}`, '1']));
    const manifest = { apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name }, spec: { image: 'busybox:1.36', env } };
    const tooManyVars = await api.call('POST', '/apps/', { body: manifest });
    assert.equal(tooManyVars.status, 422);
    assert.equal(tooManyVars.body.message, 'spec.env: must have at most 1024 variables');
    const seedForm = await api.call('POST', '/apps/', { body: { name, image: 'busybox:1.36', envs: env } });
    assert.equal(seedForm.status, 422);
    assert.match(seedForm.body.message, /envs: must have at most 1024 variables/);

    const words = Array(4097).fill('x');
    for (const command of [words, words.join(' ')]) {
      const res = await api.call('POST', '/apps/', { body: { name, image: 'busybox:1.36', command } });
      assert.equal(res.status, 422);
      assert.equal(res.body.message, 'command: has 4097 words; at most 4096 are allowed');
    }
    const longWord = await api.call('POST', '/apps/', { body: { name, image: 'busybox:1.36', command: ['echo', 'x'.repeat(131073)] } });
    assert.equal(longWord.status, 422);
    assert.equal(longWord.body.message, 'command: word 2 is longer than 131072 bytes, the most one argument may be');
    assert.equal(await api.store.getApp(name), null);
  });

  it('refuses run overrides over 256 KiB, and creates no run', async () => {
    const name = uniqueName('over');
    assert.equal((await api.call('POST', '/apps/', { body: { name, image: 'busybox:1.36' } })).status, 201);
    const env = { A: 'a'.repeat(131_000), B: 'b'.repeat(131_000), C: 'c'.repeat(10_000) };
    const res = await api.call('POST', `/apps/${name}/run/`, { body: { env } });
    assert.equal(res.status, 422);
    assert.match(res.body.message, /^\(body\): is 272\d{3} bytes as JSON; at most 262144 \(256 KiB\) are allowed$/);
    assert.equal((await api.store.listRuns({})).total, 0);
  });
});

describe('FolderSource: a file with an alias bomb', () => {
  const folder = useFolderSource();

  it('is held with a clear error of its own while the other files apply', async () => {
    const [good, bomb, laughs] = [uniqueName('good'), uniqueName('bomb'), uniqueName('laughs')];
    writeFile(folder.dir, 'good.yaml', appYaml(good));
    writeFile(folder.dir, 'bomb.yaml', aliasedEnvYaml(bomb, 99));
    writeFile(folder.dir, 'laughs.yaml', laughsYaml(laughs));
    await folder.start();
    assert.ok(await folder.store.getApp(good));
    assert.deepEqual(folder.fileReport('bomb.yaml')?.errors, [
      { field: '(document)', reason: 'is larger than 2097152 bytes (2 MiB) as JSON with its aliases expanded', line: 1, column: 1 },
    ]);
    assert.deepEqual(folder.fileReport('laughs.yaml')?.errors, [
      { field: '(document)', reason: 'uses aliases too often: at most 100 alias expansions are allowed', line: 1, column: 1 },
    ]);
    assert.equal(await folder.store.getApp(bomb), null);
    assert.equal(await folder.store.getApp(laughs), null);

    // The source keeps going: a later edit of another file applies.
    writeFile(folder.dir, 'good.yaml', appYaml(good, { image: 'busybox:1.37' }));
    await waitFor('the edit to apply', async () => (await folder.store.getApp(good))?.spec.image === 'busybox:1.37');
  });
});
