import assert from 'node:assert/strict';
import { uniqueName } from '../helpers/fixtures';
import { startTestApi, type TestApi } from '../helpers/api';

describe('API: partial lists (?fields=, ?view=summary)', () => {
  let api: TestApi;
  let team: string;
  let app: string;
  before(async () => {
    api = await startTestApi();
    team = uniqueName('team');
    app = uniqueName('fields');
    const created = await api.call('POST', '/apps/', {
      body: { apiVersion: 'berth.dev/v1', kind: 'App', metadata: { name: app, labels: { team } }, spec: { image: 'busybox:1.36', command: ['echo', 'hi'] } },
    });
    assert.equal(created.status, 201);
    assert.equal((await api.call('POST', `/apps/${app}/run/`)).status, 202);
  });
  after(async () => {
    await api.close();
  });

  it('answers only the asked-for paths of each App, in the same nesting', async () => {
    const res = await api.call('GET', `/apps/?labelSelector=team%3D${team}&fields=metadata.name,metadata.labels.team,spec.image,id`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-total-count'), '1');
    assert.equal(res.body.length, 1);
    const [item] = res.body;
    assert.deepEqual(Object.keys(item).sort(), ['id', 'metadata', 'spec']);
    assert.equal(typeof item.id, 'number');
    assert.deepEqual(item.metadata, { name: app, labels: { team } });
    assert.deepEqual(item.spec, { image: 'busybox:1.36' });
  });

  it('answers names and phases of runs, under an App and across Apps', async () => {
    for (const path of [`/apps/${app}/run/?fields=metadata.name,status.phase`, `/runs/?app=${app}&fields=metadata.name,status.phase`]) {
      const res = await api.call('GET', path);
      assert.equal(res.status, 200, path);
      assert.equal(res.body.length, 1, path);
      assert.deepEqual(Object.keys(res.body[0]), ['metadata', 'status'], path);
      assert.equal(res.body[0].status.phase, 'Pending', path);
      assert.deepEqual(Object.keys(res.body[0].metadata), ['name'], path);
    }
  });

  it('answers the summary view: who each object is and where it stands', async () => {
    const apps = await api.call('GET', `/apps/?labelSelector=team%3D${team}&view=summary`);
    assert.equal(apps.status, 200);
    assert.deepEqual(Object.keys(apps.body[0]).sort(), ['id', 'metadata', 'name', 'spec', 'status']);
    assert.equal(apps.body[0].name, app);
    assert.deepEqual(apps.body[0].spec, { image: 'busybox:1.36' });
    assert.deepEqual(apps.body[0].status, { source: 'api' });
    const runs = await api.call('GET', `/apps/${app}/run/?view=summary`);
    assert.equal(runs.status, 200);
    assert.equal(runs.body[0].app, app);
    assert.equal(runs.body[0].status.phase, 'Pending');
    assert.equal(runs.body[0].spec, undefined);
  });

  it('answers the whole seed-compatible object without either, and with view=full', async () => {
    const plain = await api.call('GET', `/apps/?labelSelector=team%3D${team}`);
    const full = await api.call('GET', `/apps/?labelSelector=team%3D${team}&view=full`);
    assert.deepEqual(full.body, plain.body);
    for (const key of ['id', 'name', 'image', 'envs', 'command', 'apiVersion', 'kind', 'metadata', 'spec', 'status']) {
      assert.ok(key in plain.body[0], key);
    }
  });

  it('refuses unknown fields with 400 naming each of them', async () => {
    const res = await api.call('GET', '/apps/?fields=metadata.name,status.phse,nope');
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'BadRequest');
    assert.match(res.body.message, /"status\.phse", "nope" are not fields of an App/);
    assert.deepEqual(
      res.body.details.map((d: { field: string }) => d.field),
      ['fields'],
    );
    const runs = await api.call('GET', '/runs/?fields=status.phase,spec.image');
    assert.equal(runs.status, 400);
    assert.match(runs.body.message, /"spec\.image" is not a field of a Run/);
  });

  it('refuses an unknown view, an empty path, and fields with view=summary, with 400', async () => {
    const view = await api.call('GET', '/apps/?view=table');
    assert.equal(view.status, 400);
    assert.match(view.body.message, /^view: "table" is not a view; use full or summary/);
    const empty = await api.call('GET', '/apps/?fields=metadata..name');
    assert.equal(empty.status, 400);
    assert.match(empty.body.message, /"metadata\.\.name" is not a field/);
    const both = await api.call('GET', '/apps/?fields=metadata.name&view=summary');
    assert.equal(both.status, 400);
    assert.match(both.body.message, /cannot be combined with view=summary/);
  });
});
