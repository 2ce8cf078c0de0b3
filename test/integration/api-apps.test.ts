import assert from 'node:assert/strict';
import { appSpec, uniqueName } from '../helpers/fixtures';
import { startTestApi, type TestApi } from '../helpers/api';

describe('API: Apps', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api.close();
  });

  const seed = (name: string, extra: Record<string, unknown> = {}) => ({ name, image: 'busybox:1.36', ...extra });
  const manifest = (name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({
    apiVersion: 'berth.dev/v1',
    kind: 'App',
    metadata: { name, labels },
    spec: { image: 'busybox:1.36', ...spec },
  });

  describe('POST /apps/', () => {
    it('creates from the seed body, splitting a string command as a shell would', async () => {
      const name = uniqueName('seed');
      const res = await api.call('POST', '/apps/', {
        body: seed(name, { command: "sh -c 'echo hi; exit 3'", envs: { WHO: 'world' } }),
      });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('location'), `/apps/${name}/`);
      assert.equal(res.headers.get('etag'), '"1"');
      assert.equal(typeof res.body.id, 'number');
      assert.equal(res.body.name, name);
      assert.equal(res.body.image, 'busybox:1.36');
      assert.deepEqual(res.body.command, ['sh', '-c', 'echo hi; exit 3']);
      assert.deepEqual(res.body.envs, { WHO: 'world' });
      assert.equal(res.body.apiVersion, 'berth.dev/v1');
      assert.equal(res.body.kind, 'App');
      assert.equal(res.body.metadata.name, name);
      assert.equal(res.body.metadata.resourceVersion, '1');
      assert.equal(res.body.spec.concurrencyPolicy, 'Allow');
      assert.deepEqual(res.body.status, { source: 'api' });
    });

    it('accepts the seed list form of envs', async () => {
      const res = await api.call('POST', '/apps', { body: seed(uniqueName('envs'), { envs: ['A=1', 'B=x=y'] }) });
      assert.equal(res.status, 201);
      assert.deepEqual(res.body.envs, { A: '1', B: 'x=y' });
    });

    it('creates from a JSON manifest', async () => {
      const name = uniqueName('man');
      const res = await api.call('POST', '/apps/', { body: manifest(name, { retries: 2, env: { A: 'b' } }, { team: 'data' }) });
      assert.equal(res.status, 201);
      assert.deepEqual(res.body.metadata.labels, { team: 'data' });
      assert.equal(res.body.spec.retries, 2);
      assert.deepEqual(res.body.envs, { A: 'b' });
    });

    it('creates from a YAML manifest', async () => {
      const name = uniqueName('yaml');
      const yaml = `apiVersion: berth.dev/v1\nkind: App\nmetadata:\n  name: ${name}\n  labels: {team: ml}\nspec:\n  image: busybox:1.36\n  command: echo hello $WHO\n  env: {WHO: yaml}\n`;
      const res = await api.call('POST', '/apps/', { body: yaml, headers: { 'content-type': 'application/yaml' } });
      assert.equal(res.status, 201);
      assert.deepEqual(res.body.command, ['echo', 'hello', '$WHO']);
      assert.deepEqual(res.body.metadata.labels, { team: 'ml' });
    });

    it('accepts text/yaml and application/x-yaml too', async () => {
      for (const type of ['text/yaml', 'application/x-yaml']) {
        const res = await api.call('POST', '/apps/', { body: `name: ${uniqueName('y')}\nimage: busybox\n`, headers: { 'content-type': type } });
        assert.equal(res.status, 201, type);
      }
    });

    it('refuses a duplicate name with 409', async () => {
      const name = uniqueName('dup');
      assert.equal((await api.call('POST', '/apps/', { body: seed(name) })).status, 201);
      const res = await api.call('POST', '/apps/', { body: manifest(name) });
      assert.equal(res.status, 409);
      assert.deepEqual(res.body, { error: 'Conflict', message: `app "${name}" already exists`, details: [] });
    });

    it('names the field and the rule when the body is invalid', async () => {
      let res = await api.call('POST', '/apps/', { body: { name: 'Bad_Name', image: 'busybox' } });
      assert.equal(res.status, 422);
      assert.equal(res.body.error, 'Invalid');
      assert.equal(res.body.message, 'name: must be a DNS-1123 label: lower-case letters, digits and "-", starting and ending with a letter or digit');
      assert.equal(res.body.details[0].field, 'name');

      res = await api.call('POST', '/apps/', { body: { name: uniqueName() } });
      assert.equal(res.status, 422);
      assert.equal(res.body.message, 'image: is required');

      res = await api.call('POST', '/apps/', { body: manifest(uniqueName(), { foo: 1 }) });
      assert.equal(res.status, 422);
      assert.equal(res.body.message, 'spec.foo: is not a known field');

      res = await api.call('POST', '/apps/', { body: manifest(uniqueName(), { retries: -1 }) });
      assert.equal(res.body.message, 'spec.retries: must be an integer from 0 to 100');
      assert.deepEqual(res.body.details, [{ field: 'spec.retries', reason: 'must be an integer from 0 to 100' }]);
    });

    it('names the field of an invalid YAML manifest', async () => {
      const yaml = `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: ${uniqueName()}}\nspec:\n  image: busybox\n  retries: many\n`;
      const res = await api.call('POST', '/apps/', { body: yaml, headers: { 'content-type': 'application/yaml' } });
      assert.equal(res.status, 422);
      assert.equal(res.body.details[0].field, 'spec.retries');
    });
  });

  describe('GET /apps/ and /apps/{id}/', () => {
    it('reads one App by id or name, with and without the trailing slash', async () => {
      const name = uniqueName('get');
      const created = (await api.call('POST', '/apps/', { body: seed(name) })).body;
      for (const path of [`/apps/${created.id}/`, `/apps/${created.id}`, `/apps/${name}/`, `/apps/${name}`]) {
        const res = await api.call('GET', path);
        assert.equal(res.status, 200, path);
        assert.equal(res.body.metadata.uid, created.metadata.uid);
        assert.equal(res.headers.get('etag'), '"1"');
      }
      const missing = await api.call('GET', '/apps/no-such-app/');
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.body, { error: 'NotFound', message: 'app "no-such-app" not found', details: [] });
    });

    it('lists as a JSON array with the total in X-Total-Count, paginated', async () => {
      const team = uniqueName('team');
      const names = [];
      for (let i = 0; i < 5; i++) {
        const name = uniqueName('page');
        names.push(name);
        await api.call('POST', '/apps/', { body: manifest(name, {}, { team }) });
      }
      const all = await api.call('GET', `/apps/?labelSelector=team=${team}`);
      assert.equal(all.status, 200);
      assert.ok(Array.isArray(all.body));
      assert.deepEqual(
        all.body.map((a: { name: string }) => a.name),
        names,
      );
      assert.equal(all.headers.get('x-total-count'), '5');

      const page = await api.call('GET', `/apps?labelSelector=team%3D${team}&limit=2&offset=2`);
      assert.deepEqual(
        page.body.map((a: { name: string }) => a.name),
        names.slice(2, 4),
      );
      assert.equal(page.headers.get('x-total-count'), '5');

      const unfiltered = await api.call('GET', '/apps/?limit=1');
      assert.equal(unfiltered.body.length, 1);
      assert.ok(Number(unfiltered.headers.get('x-total-count')) >= 5);
    });

    it('lists each App as it is now, however often the same page was answered before (pages are kept by their Apps)', async () => {
      const team = uniqueName('team');
      const names = [uniqueName('kept'), uniqueName('kept'), uniqueName('kept')];
      for (const name of names) await api.call('POST', '/apps/', { body: manifest(name, {}, { team }) });
      const page = async () => {
        const res = await api.call('GET', `/apps/?labelSelector=team=${team}&limit=10`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
        return res.body as { name: string; image: string; metadata: { labels: Record<string, string> } }[];
      };
      assert.deepEqual(
        (await page()).map((a) => a.name),
        names,
      );
      assert.deepEqual(await page(), await page());
      const summary = async (view: string) => (await api.call('GET', `/apps/?labelSelector=team=${team}&limit=10&${view}`)).body as Record<string, unknown>[];
      assert.deepEqual(await summary('view=summary'), await summary('view=summary'));
      assert.deepEqual(
        (await summary('fields=name')).map((a) => Object.keys(a)),
        [['name'], ['name'], ['name']],
      );

      await api.call('PATCH', `/apps/${names[1]}/`, { body: { image: 'busybox:1.37' } });
      assert.deepEqual(
        (await page()).map((a) => a.image),
        ['busybox:1.36', 'busybox:1.37', 'busybox:1.36'],
      );
      assert.deepEqual(
        (await summary('view=summary')).map((a) => (a.spec as { image: string }).image),
        ['busybox:1.36', 'busybox:1.37', 'busybox:1.36'],
      );
      assert.deepEqual(
        (await summary('fields=name,spec.image')).map((a) => a.spec),
        [{ image: 'busybox:1.36' }, { image: 'busybox:1.37' }, { image: 'busybox:1.36' }],
      );
      await api.call('PATCH', `/apps/${names[0]}/`, { body: { metadata: { labels: { extra: 'yes' } } } });
      assert.deepEqual((await page())[0].metadata.labels, { team, extra: 'yes' });
      assert.equal((await api.call('DELETE', `/apps/${names[2]}/`)).status, 204);
      assert.deepEqual(
        (await page()).map((a) => a.name),
        names.slice(0, 2),
      );
      const added = uniqueName('kept');
      await api.call('POST', '/apps/', { body: manifest(added, {}, { team }) });
      assert.deepEqual(
        (await page()).map((a) => a.name),
        [...names.slice(0, 2), added],
      );
    });

    it('selects by several labels at once', async () => {
      const team = uniqueName('team');
      await api.call('POST', '/apps/', { body: manifest(uniqueName(), {}, { team, tier: 'batch' }) });
      const both = uniqueName('both');
      await api.call('POST', '/apps/', { body: manifest(both, {}, { team, tier: 'web' }) });
      const res = await api.call('GET', `/apps/?labelSelector=team=${team},tier==web`);
      assert.deepEqual(
        res.body.map((a: { name: string }) => a.name),
        [both],
      );
    });

    it('refuses bad paging and selectors with 422 naming the parameter', async () => {
      let res = await api.call('GET', '/apps/?limit=1001');
      assert.equal(res.status, 422);
      assert.equal(res.body.message, 'limit: must be an integer from 0 to 1000');
      res = await api.call('GET', '/apps/?limit=abc&offset=-1');
      assert.equal(res.status, 422);
      assert.equal(res.body.message, 'invalid query: limit: must be an integer from 0 to 1000; offset: must be an integer of at least 0');
      res = await api.call('GET', '/apps/?labelSelector=team!=data');
      assert.equal(res.status, 422);
      assert.equal(res.body.message, 'labelSelector: "team!=data" is not supported: only equality selectors "key=value[,key=value…]" are');
      res = await api.call('GET', '/apps/?labelSelector=team');
      assert.equal(res.status, 422);
      assert.equal(res.body.details[0].field, 'labelSelector');
    });
  });

  describe('PUT, PATCH, DELETE /apps/{id}/', () => {
    it('PUT with the seed body keeps the fields it does not give', async () => {
      const name = uniqueName('put');
      await api.call('POST', '/apps/', { body: seed(name, { command: ['echo', 'a'], envs: { A: '1' } }) });
      const res = await api.call('PUT', `/apps/${name}/`, { body: { image: 'busybox:1.37' } });
      assert.equal(res.status, 200);
      assert.equal(res.body.image, 'busybox:1.37');
      assert.deepEqual(res.body.command, ['echo', 'a']);
      assert.deepEqual(res.body.envs, { A: '1' });
      assert.equal(res.body.metadata.generation, 2);
      assert.equal(res.body.metadata.resourceVersion, '2');
    });

    it('PUT with a manifest replaces the spec and labels', async () => {
      const name = uniqueName('put');
      await api.call('POST', '/apps/', { body: manifest(name, { retries: 3, env: { A: '1' } }, { team: 'x' }) });
      const res = await api.call('PUT', `/apps/${name}`, { body: manifest(name, { timeoutSeconds: 60 }) });
      assert.equal(res.status, 200);
      assert.equal(res.body.spec.retries, 0);
      assert.equal(res.body.spec.timeoutSeconds, 60);
      assert.deepEqual(res.body.envs, {});
      assert.deepEqual(res.body.metadata.labels, {});
    });

    it('PUT accepts a GET answer sent back whole', async () => {
      const name = uniqueName('roundtrip');
      const created = (await api.call('POST', '/apps/', { body: seed(name) })).body;
      created.spec.retries = 1;
      const res = await api.call('PUT', `/apps/${name}/`, { body: created });
      assert.equal(res.status, 200);
      assert.equal(res.body.spec.retries, 1);
    });

    it('PUT refuses a rename', async () => {
      const name = uniqueName('rename');
      await api.call('POST', '/apps/', { body: seed(name) });
      const res = await api.call('PUT', `/apps/${name}/`, { body: manifest('other-name') });
      assert.equal(res.status, 422);
      assert.equal(res.body.message, `metadata.name: cannot be changed (the App is "${name}"); create a new App instead`);
    });

    it('PATCH merges a manifest patch: objects merge, null deletes', async () => {
      const name = uniqueName('patch');
      await api.call('POST', '/apps/', { body: manifest(name, { env: { A: '1', B: '2' }, timeoutSeconds: 5 }, { team: 'x' }) });
      const res = await api.call('PATCH', `/apps/${name}/`, {
        body: { metadata: { labels: { tier: 'batch' } }, spec: { env: { B: null, C: '3' }, timeoutSeconds: null } },
        headers: { 'content-type': 'application/merge-patch+json' },
      });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.metadata.labels, { team: 'x', tier: 'batch' });
      assert.deepEqual(res.body.envs, { A: '1', C: '3' });
      assert.equal(res.body.spec.timeoutSeconds, undefined);
    });

    it('PATCH with seed fields replaces those fields', async () => {
      const name = uniqueName('patch');
      await api.call('POST', '/apps/', { body: seed(name, { envs: { A: '1' } }) });
      const res = await api.call('PATCH', `/apps/${name}`, { body: { command: 'echo patched' } });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.command, ['echo', 'patched']);
      assert.deepEqual(res.body.envs, { A: '1' });
      const invalid = await api.call('PATCH', `/apps/${name}`, { body: { spec: { retries: 'x' } } });
      assert.equal(invalid.status, 422);
      assert.equal(invalid.body.message, 'spec.retries: must be an integer from 0 to 100');
    });

    it('refuses a stale resourceVersion with 409, from If-Match or from the body', async () => {
      const name = uniqueName('stale');
      await api.call('POST', '/apps/', { body: seed(name) });
      const ok = await api.call('PUT', `/apps/${name}/`, { body: { image: 'busybox:1.37' }, headers: { 'if-match': '"1"' } });
      assert.equal(ok.status, 200);
      const stale = await api.call('PUT', `/apps/${name}/`, { body: { image: 'busybox:1.38' }, headers: { 'if-match': '"1"' } });
      assert.equal(stale.status, 409);
      assert.equal(stale.body.message, `app "${name}" was modified: resourceVersion 1 is stale (current is 2); read it again and retry`);
      const body = manifest(name) as ReturnType<typeof manifest> & { metadata: { resourceVersion?: string } };
      body.metadata.resourceVersion = '1';
      assert.equal((await api.call('PUT', `/apps/${name}/`, { body })).status, 409);
      assert.equal((await api.call('PATCH', `/apps/${name}/`, { body: { metadata: { resourceVersion: '1' } } })).status, 409);
      assert.equal((await api.call('DELETE', `/apps/${name}/`, { headers: { 'if-match': '1' } })).status, 409);
      assert.equal((await api.call('DELETE', `/apps/${name}/`, { headers: { 'if-match': '"2"' } })).status, 204);
    });

    it('DELETE answers 204 and removes the App and its runs', async () => {
      const name = uniqueName('del');
      const app = (await api.call('POST', '/apps/', { body: seed(name) })).body;
      const run = (await api.call('POST', `/apps/${name}/run/`)).body;
      const res = await api.call('DELETE', `/apps/${app.id}/`);
      assert.equal(res.status, 204);
      assert.equal(res.text, '');
      assert.equal((await api.call('GET', `/apps/${name}/`)).status, 404);
      assert.equal((await api.call('GET', `/runs/${run.id}/`)).status, 404);
      assert.equal((await api.call('DELETE', `/apps/${name}/`)).status, 404);
    });
  });

  describe('Apps owned by a file', () => {
    it('refuses PUT, PATCH and DELETE with 409 naming the file, and POST of the same name', async () => {
      const name = uniqueName('owned');
      await api.store.createApp({ name, spec: appSpec(), source: 'file:team/a.yaml' });
      const message = `app "${name}" is managed by file apps/team/a.yaml; change the file instead`;
      for (const [method, body] of [
        ['PUT', { image: 'busybox:1.37' }],
        ['PATCH', { spec: { retries: 1 } }],
        ['DELETE', undefined],
      ] as const) {
        const res = await api.call(method, `/apps/${name}/`, { body });
        assert.equal(res.status, 409, method);
        assert.deepEqual(res.body, { error: 'Conflict', message, details: [] });
      }
      const post = await api.call('POST', '/apps/', { body: seed(name) });
      assert.equal(post.status, 409);
      assert.equal((await api.call('GET', `/apps/${name}/`)).body.status.source, 'file:team/a.yaml');
    });
  });
});
