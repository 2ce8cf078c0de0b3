import assert from 'node:assert/strict';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { startTestApi, type TestApi } from '../helpers/api';
import { uniqueName } from '../helpers/fixtures';

/** A POST with exactly these bytes and headers (fetch would decode nothing, but also would not let a test send a false encoding). */
function post(
  api: TestApi,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; body: { error?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${api.url}${path}`, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('API: compressed request bodies', () => {
  let api: TestApi;
  beforeEach(async () => {
    api = await startTestApi();
  });
  afterEach(async () => {
    await api.close();
  });

  it('reads a gzip body, and answers 400 naming the encoding when a body is not what its Content-Encoding says', async () => {
    const name = uniqueName('gzipped');
    const good = await post(
      api,
      '/apps/',
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      gzipSync(JSON.stringify({ name, image: 'busybox:1.36' })),
    );
    assert.equal(good.status, 201);

    for (const encoding of ['br', 'gzip', 'deflate']) {
      const bad = await post(
        api,
        '/apps/',
        { 'content-type': 'application/json', 'content-encoding': encoding },
        Buffer.from(JSON.stringify({ name: uniqueName('plain'), image: 'busybox:1.36' })),
      );
      assert.equal(bad.status, 400, `${encoding}: ${JSON.stringify(bad.body)}`);
      assert.equal(bad.body.error, 'MalformedBody');
      assert.match(bad.body.message!, new RegExp(`is not valid ${encoding}`));
    }
    assert.equal((await api.store.listApps({})).total, 1);
    assert.equal((await api.call('GET', '/healthz')).status, 200);
  });
});
