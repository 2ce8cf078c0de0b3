import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from '../helpers/api';

const TOKEN = 's3cret-token-6b0e2f94c1d87a35e9f04b6c2d1a8e73';

describe('API: bearer token', () => {
  describe('with --token', () => {
    let api: TestApi;
    before(async () => {
      api = await startTestApi({ token: TOKEN });
    });
    after(async () => {
      await api.close();
    });

    it('lets the probes through without a token: /healthz, and /readyz with its verdict but not its reasons', async () => {
      assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
      const anonymous = await fetch(`${api.url}/readyz`);
      assert.equal(anonymous.status, 200);
      assert.deepEqual(await anonymous.json(), { status: 'ready' });
      const authed = await api.call('GET', '/readyz');
      assert.equal(authed.status, 200);
      assert.deepEqual(
        (authed.body as { checks: { name: string }[] }).checks.map((c) => c.name),
        ['store'],
      );
    });

    it('tells an anonymous /readyz only that it is not ready, and a caller with the token why', async () => {
      const failing = await startTestApi({
        token: TOKEN,
        readiness: [{ name: 'runtime', check: async () => ({ ready: false, reason: 'docker engine at unix:///x.sock is unreachable' }) }],
      });
      try {
        const anonymous = await fetch(`${failing.url}/readyz`);
        assert.equal(anonymous.status, 503);
        assert.doesNotMatch(await anonymous.text(), /x\.sock/);
        const authed = await failing.call('GET', '/readyz');
        assert.equal(authed.status, 503);
        assert.match(JSON.stringify(authed.body), /x\.sock is unreachable/);
      } finally {
        await failing.close();
      }
    });

    it('refuses a request without a token with 401 and WWW-Authenticate', async () => {
      for (const path of ['/apps/', '/metrics', '/openapi.json', '/nowhere']) {
        const res = await fetch(api.url + path);
        assert.equal(res.status, 401, path);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="berth"');
        assert.deepEqual(await res.json(), {
          error: 'Unauthorized',
          message: 'missing bearer token: send "Authorization: Bearer <token>"',
          details: [],
        });
      }
    });

    it('refuses a wrong token, of any length', async () => {
      for (const token of [TOKEN.slice(0, -1) + 'X', 'x', `${TOKEN}-and-more`]) {
        const res = await fetch(`${api.url}/apps/`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 401, token);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="berth", error="invalid_token"');
        assert.equal(((await res.json()) as { message: string }).message, 'invalid bearer token');
      }
      const basic = await fetch(`${api.url}/apps/`, { headers: { authorization: 'Basic czNjcmV0LXRva2Vu' } });
      assert.equal(basic.status, 401);
    });

    it('serves a request with the right token', async () => {
      const res = await api.call('POST', '/apps/', { body: { name: 'authed', image: 'busybox' } });
      assert.equal(res.status, 201);
      assert.equal((await api.call('GET', '/apps/authed/')).status, 200);
    });

    it('checks the token before reading a body', async () => {
      const res = await fetch(`${api.url}/apps/`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
      assert.equal(res.status, 401);
    });
  });

  describe('without --token', () => {
    it('serves every endpoint without a token', async () => {
      const api = await startTestApi();
      try {
        for (const path of ['/apps/', '/readyz', '/runs/']) assert.equal((await fetch(api.url + path)).status, 200, path);
      } finally {
        await api.close();
      }
    });
  });
});
