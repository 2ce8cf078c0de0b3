import { EventEmitter } from 'node:events';
import assert from 'node:assert/strict';
import { uniqueName } from '../helpers/fixtures';
import { startTestApi, type TestApi } from '../helpers/api';

describe('API: errors and operations endpoints', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api.close();
  });

  it('answers malformed JSON with 400', async () => {
    const res = await api.call('POST', '/apps/', { body: '{"name": "x",' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'MalformedBody');
    assert.match(res.body.message, /^malformed JSON: /);
    assert.deepEqual(res.body.details, []);
  });

  it('answers malformed YAML with 400 naming line and column', async () => {
    const res = await api.call('POST', '/apps/', { body: 'name: a\n  image: [b\n', headers: { 'content-type': 'application/yaml' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'MalformedBody');
    assert.match(res.body.message, /^malformed YAML at line \d+, column \d+: /);
    assert.equal(typeof res.body.details[0].line, 'number');
  });

  it('answers a body that is not an object with 422', async () => {
    const res = await api.call('POST', '/apps/', { body: '[1, 2]' });
    assert.equal(res.status, 422);
    assert.equal(res.body.message, '(body): must be a JSON object');
  });

  it('answers unknown paths with a JSON 404', async () => {
    const res = await api.call('GET', '/nowhere/');
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { error: 'NotFound', message: 'path "/nowhere/" not found', details: [] });
  });

  it('answers a known path asked with the wrong method with 405 and Allow', async () => {
    let res = await api.call('DELETE', '/apps/');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST, HEAD, GET');
    assert.deepEqual(res.body, {
      error: 'MethodNotAllowed',
      message: 'method DELETE is not allowed on /apps/; allowed: POST, HEAD, GET',
      details: [],
    });
    res = await api.call('GET', '/apps/x/run/1/cancel/');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
    res = await api.call('POST', '/healthz');
    assert.equal(res.status, 405);
  });

  it('answers a method no route serves with a JSON 405 on a known path and a JSON 404 elsewhere, never 501', async () => {
    let res = await api.call('PROPFIND', '/healthz');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'HEAD, GET');
    assert.equal(res.body.error, 'MethodNotAllowed');
    res = await api.call('M-SEARCH', '/nowhere/');
    assert.equal(res.status, 404);
    assert.deepEqual(res.body, { error: 'NotFound', message: 'path "/nowhere/" not found', details: [] });
  });

  it('answers a body over 1 MiB with 413', async () => {
    const body = JSON.stringify({ name: uniqueName(), image: 'busybox', envs: { BIG: 'x'.repeat(1024 * 1024) } });
    const res = await api.call('POST', '/apps/', { body });
    assert.equal(res.status, 413);
    assert.deepEqual(res.body, { error: 'PayloadTooLarge', message: 'request body is larger than the limit of 1 MiB', details: [] });
  });

  it('answers a body of another type with 415', async () => {
    let res = await api.call('POST', '/apps/', { body: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 415);
    assert.deepEqual(res.body, {
      error: 'UnsupportedMediaType',
      message: 'unsupported Content-Type "application/x-www-form-urlencoded": send application/json or application/yaml',
      details: [],
    });
    res = await api.call('PUT', '/apps/x/', { body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 415);
  });

  it('hides server faults behind a logged 500 without details', async () => {
    const original = api.store.listApps;
    api.store.listApps = async () => {
      throw new Error('SQLITE_CORRUPT: secret internals');
    };
    try {
      const res = await api.call('GET', '/apps/');
      assert.equal(res.status, 500);
      assert.deepEqual(res.body, { error: 'Internal', message: 'internal error', details: [] });
      assert.ok(!res.text.includes('secret'));
    } finally {
      api.store.listApps = original;
    }
  });

  it('/healthz and /readyz answer when all is well', async () => {
    assert.deepEqual((await api.call('GET', '/healthz')).body, { status: 'ok' });
    const ready = await api.call('GET', '/readyz/');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', checks: [{ name: 'store', ready: true }] });
  });

  it('/readyz answers 503 naming each failing check and its reason', async () => {
    const failing = await startTestApi({
      readiness: [
        { name: 'store', check: async () => ({ ready: true }) },
        { name: 'docker', check: async () => ({ ready: false, reason: 'engine at unix:///nowhere.sock is unreachable' }) },
        { name: 'folder', check: async () => Promise.reject(new Error('first sync not finished')) },
      ],
    });
    try {
      const res = await failing.call('GET', '/readyz');
      assert.equal(res.status, 503);
      assert.equal(res.body.error, 'NotReady');
      assert.equal(res.body.message, 'not ready: docker (engine at unix:///nowhere.sock is unreachable); folder (first sync not finished)');
      assert.deepEqual(res.body.details, [
        { field: 'docker', reason: 'engine at unix:///nowhere.sock is unreachable' },
        { field: 'folder', reason: 'first sync not finished' },
      ]);
    } finally {
      await failing.close();
    }
  });

  it('/metrics answers Prometheus text', async () => {
    api.deps.metrics.registerMetric(new (await import('prom-client')).Counter({ name: 'berth_test_total', help: 'a test counter', registers: [] }));
    const res = await api.call('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(res.text, /# TYPE berth_test_total counter/);
  });

  it('/sources/ answers 404 without a folder and the report with one', async () => {
    const res = await api.call('GET', '/sources/');
    assert.equal(res.status, 404);
    assert.equal(res.body.message, 'no apps folder is being watched: start berth with --apps-dir pointing at a folder of App files');
    const folder = Object.assign(new EventEmitter(), { report: () => ({ files: [{ path: 'a.yaml', state: 'Synced' }] }) });
    const withFolder = await startTestApi({ folder });
    try {
      const report = await withFolder.call('GET', '/sources');
      assert.equal(report.status, 200);
      assert.deepEqual(report.body, { files: [{ path: 'a.yaml', state: 'Synced' }] });
    } finally {
      await withFolder.close();
    }
  });

  it('/openapi.json describes every endpoint in OpenAPI 3.1', async () => {
    const res = await api.call('GET', '/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.body.openapi, '3.1.0');
    const expected: Record<string, string[]> = {
      '/apps/': ['post', 'get'],
      '/apps/{app}/': ['get', 'put', 'patch', 'delete'],
      '/apps/{app}/run/': ['post', 'get'],
      '/apps/{app}/run/{run}/': ['get'],
      '/apps/{app}/run/{run}/cancel/': ['post'],
      '/apps/{app}/notifications/': ['get'],
      '/apps/{app}/run/{run}/logs/': ['get'],
      '/runs/': ['get'],
      '/runs/{run}/': ['get'],
      '/events/': ['get'],
      '/sources/': ['get'],
      '/healthz': ['get'],
      '/readyz': ['get'],
      '/metrics': ['get'],
      '/openapi.json': ['get'],
    };
    assert.deepEqual(Object.keys(res.body.paths).sort(), Object.keys(expected).sort());
    for (const [path, methods] of Object.entries(expected)) {
      for (const method of methods) assert.ok(res.body.paths[path][method], `${method} ${path}`);
    }
    // Every $ref points at a schema the document defines.
    for (const [, name] of res.text.matchAll(/"#\/components\/schemas\/([A-Za-z]+)"/g)) {
      assert.ok(res.body.components.schemas[name], name);
    }
    assert.ok(!res.text.includes('errorMessage'));
  });
});
