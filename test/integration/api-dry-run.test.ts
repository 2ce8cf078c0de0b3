import assert from 'node:assert/strict';
import { startTestApi, type TestApi } from '../helpers/api';
import { uniqueName } from '../helpers/fixtures';

describe('API: ?dryRun=1 on App writes', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api.close();
  });

  const manifest = (name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = {}) => ({
    apiVersion: 'berth.dev/v1',
    kind: 'App',
    metadata: { name, labels },
    spec: { image: 'busybox:1.36', ...spec },
  });

  it('POST answers the App as it would be created, with defaults filled in, and creates nothing', async () => {
    const name = uniqueName('dry');
    const res = await api.call('POST', '/apps/?dryRun=1', { body: manifest(name, { command: 'echo hi' }, { team: 'data' }) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('location'), null);
    assert.deepEqual(res.body.metadata, { name, labels: { team: 'data' } });
    assert.deepEqual(res.body.spec.command, ['echo', 'hi']);
    assert.equal(res.body.spec.concurrencyPolicy, 'Allow');
    assert.deepEqual(res.body.status, { source: 'api' });
    assert.equal((await api.call('GET', `/apps/${name}/`)).status, 404);
  });

  it('POST refuses what a real create would: an invalid spec (422) and a taken name (409)', async () => {
    const invalid = await api.call('POST', '/apps/?dryRun=1', { body: manifest(uniqueName('dry'), { retries: -1 }) });
    assert.equal(invalid.status, 422);
    assert.equal(invalid.body.details[0].field, 'spec.retries');

    const name = uniqueName('dry');
    assert.equal((await api.call('POST', '/apps/', { body: manifest(name) })).status, 201);
    const taken = await api.call('POST', '/apps/?dryRun=1', { body: manifest(name) });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.message, `app "${name}" already exists`);
  });

  it('PUT answers the App as the replace would leave it and changes nothing', async () => {
    const name = uniqueName('dry');
    const created = await api.call('POST', '/apps/', { body: manifest(name, { retries: 1 }) });
    const res = await api.call('PUT', `/apps/${name}/?dryRun=1`, { body: manifest(name, { retries: 3 }, { tier: 'batch' }) });
    assert.equal(res.status, 200);
    assert.equal(res.body.spec.retries, 3);
    assert.deepEqual(res.body.metadata.labels, { tier: 'batch' });
    assert.equal(res.body.metadata.generation, 2);
    assert.equal(res.body.metadata.resourceVersion, created.body.metadata.resourceVersion);

    const after = await api.call('GET', `/apps/${name}/`);
    assert.equal(after.body.spec.retries, 1);
    assert.deepEqual(after.body.metadata, created.body.metadata);
  });

  it('PUT with the same spec keeps the generation, so a client can tell "unchanged"', async () => {
    const name = uniqueName('dry');
    await api.call('POST', '/apps/', { body: manifest(name, { command: ['sh', '-c', 'echo a'] }) });
    const res = await api.call('PUT', `/apps/${name}/?dryRun=1`, { body: manifest(name, { command: "sh -c 'echo a'" }) });
    assert.equal(res.status, 200);
    assert.equal(res.body.metadata.generation, 1);
  });

  it('PUT and PATCH refuse a stale If-Match and a file-owned App as the real writes do', async () => {
    const name = uniqueName('dry');
    await api.call('POST', '/apps/', { body: manifest(name) });
    const stale = await api.call('PUT', `/apps/${name}/?dryRun=1`, { body: manifest(name), headers: { 'if-match': '"7"' } });
    assert.equal(stale.status, 409);
    assert.match(stale.body.message, /resourceVersion 7 is stale/);

    const owned = uniqueName('owned');
    await api.store.createApp({ name: owned, labels: {}, spec: (await api.call('GET', `/apps/${name}/`)).body.spec, source: 'file:owned.yaml' });
    const patch = await api.call('PATCH', `/apps/${owned}/?dryRun=1`, { body: { spec: { retries: 2 } } });
    assert.equal(patch.status, 409);
    assert.match(patch.body.message, /managed by file/);
  });
});
