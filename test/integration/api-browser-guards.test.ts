import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestApi, type TestApi } from '../helpers/api';
import { uniqueName } from '../helpers/fixtures';

interface RawAnswer {
  status: number;
  body: { error?: string; message?: string };
}

/** A request over real HTTP with exactly these headers (fetch would not let a test choose Host). */
function raw(api: TestApi, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawAnswer> {
  const url = new URL(api.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers: { host: url.host, ...headers }, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text.startsWith('{') ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('API: what a browser may not do', () => {
  let api: TestApi;
  let app: string;
  let port: string;
  const runs = async (): Promise<number> => (await api.store.listRuns({})).total;

  beforeEach(async () => {
    api = await startTestApi({ listenHost: '127.0.0.1', allowedHosts: ['berth.berth.svc', '.corp.example'] });
    port = new URL(api.url).port;
    app = uniqueName('guarded');
    assert.equal((await api.call('POST', '/apps/', { body: { name: app, image: 'busybox:1.36' } })).status, 201);
  });
  afterEach(async () => {
    await api.close();
  });

  describe('Host', () => {
    it('refuses a name it does not serve (DNS rebinding) with 403 naming the Host and the flag, and changes nothing', async () => {
      const host = `rebound.attacker.example:${port}`;
      for (const [method, path] of [
        ['GET', '/apps/'],
        ['POST', `/apps/${app}/run/`],
        ['GET', '/events/'],
      ]) {
        const res = await raw(api, method, path, { host });
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.deepEqual(res.body, {
          error: 'Forbidden',
          message: `Host "${host}" is not a name this server answers for; add it with --allowed-hosts (BERTH_ALLOWED_HOSTS), or "*" to answer any`,
          details: [{ field: 'Host', reason: 'is not an allowed host name' }],
        });
      }
      assert.equal(await runs(), 0);
    });

    it('serves loopback names, IP addresses, and the names and domains it is given', async () => {
      const served = ['127.0.0.1', 'localhost', 'LOCALHOST.', 'ui.localhost', '[::1]', '10.1.2.3', 'berth.berth.svc', 'corp.example', 'jobs.corp.example'];
      for (const name of served) assert.equal((await raw(api, 'GET', '/apps/', { host: `${name}:${port}` })).status, 200, name);
      for (const name of ['evilcorp.example', 'berth.berth.svc.attacker.example', 'localhost.attacker.example']) {
        assert.equal((await raw(api, 'GET', '/apps/', { host: `${name}:${port}` })).status, 403, name);
      }
    });

    it('serves any name with "*"', async () => {
      const open = await startTestApi({ listenHost: '127.0.0.1', allowedHosts: ['*'] });
      try {
        assert.equal((await raw(open, 'GET', '/apps/', { host: 'anything.example' })).status, 200);
      } finally {
        await open.close();
      }
    });
  });

  describe('Origin', () => {
    it('refuses another site on every method, body-less POSTs of run and cancel included, and changes nothing', async () => {
      const origins = ['http://evil.example', `http://localhost:${Number(port) + 1}`, 'null'];
      for (const origin of origins) {
        const res = await raw(api, 'POST', `/apps/${app}/run/`, { origin });
        assert.equal(res.status, 403, origin);
        assert.equal(res.body.error, 'Forbidden');
        assert.equal(
          res.body.message,
          `cross-origin request refused: Origin "${origin}" is not this server (127.0.0.1:${port}); berth answers browsers only from its own pages`,
        );
      }
      assert.equal(await runs(), 0);
      const run = await api.call('POST', `/apps/${app}/run/`);
      assert.equal(run.status, 202);
      const cancel = await raw(api, 'POST', `/apps/${app}/run/${run.body.id}/cancel/`, { origin: 'http://evil.example' });
      assert.equal(cancel.status, 403);
      assert.equal((await api.store.mustGetRun(run.body.id)).status.cancelRequested, undefined);
      for (const method of ['GET', 'OPTIONS', 'DELETE']) {
        assert.equal((await raw(api, method, `/apps/${app}/`, { origin: 'http://evil.example' })).status, 403, method);
      }
      assert.ok(await api.store.getApp(app));
    });

    it('serves its own pages, and clients that send no Origin', async () => {
      assert.equal((await raw(api, 'POST', `/apps/${app}/run/`, { origin: `http://127.0.0.1:${port}` })).status, 202);
      assert.equal((await raw(api, 'POST', `/apps/${app}/run/`, { origin: `https://berth.berth.svc`, host: 'berth.berth.svc' })).status, 202);
      assert.equal((await raw(api, 'POST', `/apps/${app}/run/`)).status, 202);
      assert.equal(await runs(), 3);
    });
  });

  describe('Content-Type of writes', () => {
    it('refuses form and text types on a write even with no body, 415, and starts nothing', async () => {
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const res = await raw(api, 'POST', `/apps/${app}/run/`, { 'content-type': type });
        assert.equal(res.status, 415, type);
        assert.equal(res.body.error, 'UnsupportedMediaType');
        assert.equal(
          res.body.message,
          `unsupported Content-Type "${type.split(';')[0]}": send application/json or application/yaml, or no Content-Type with no body`,
        );
        const withBody = await raw(api, 'POST', `/apps/${app}/run/`, { 'content-type': type }, 'a=b');
        assert.equal(withBody.status, 415, type);
        assert.equal(withBody.body.message, `unsupported Content-Type "${type.split(';')[0]}": send application/json or application/yaml`);
      }
      assert.equal((await raw(api, 'DELETE', `/apps/${app}/`, { 'content-type': 'text/plain' })).status, 415);
      assert.equal(await runs(), 0);
      assert.ok(await api.store.getApp(app));
    });

    it('takes JSON or YAML, and a body-less write with no Content-Type', async () => {
      assert.equal((await raw(api, 'POST', `/apps/${app}/run/`, { 'content-type': 'application/json' })).status, 202);
      assert.equal((await raw(api, 'POST', `/apps/${app}/run/`, { 'content-type': 'application/yaml' }, 'env: {A: b}\n')).status, 202);
      assert.equal((await raw(api, 'POST', `/apps/${app}/run/`, {})).status, 202);
      const missing = await raw(api, 'POST', `/apps/${app}/run/`, {}, '{}');
      assert.equal(missing.status, 415);
      assert.equal(missing.body.message, 'a request body needs a Content-Type: application/json or application/yaml');
      assert.equal(await runs(), 3);
    });
  });
});
