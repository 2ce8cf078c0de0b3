/** The API's list bodies (src/api/present.ts): made once per page of unchanged Apps, and kept within a bound. */
import assert from 'node:assert/strict';
import { presentApp, presentAppsJson } from '../../src/api/present';
import { API_VERSION } from '../../src/model/types';
import type { StoredApp } from '../../src/store/types';
import { appSpec } from '../helpers/fixtures';

describe('presentAppsJson', () => {
  let next = 1_000_000;
  /** A frozen App, as the store keeps them; `padding` bytes of env make its JSON large. */
  const keptApp = (padding = 0): StoredApp => {
    const id = next++;
    const app: StoredApp = {
      id,
      apiVersion: API_VERSION,
      kind: 'App',
      metadata: { name: `app-${id}`, labels: {}, uid: `uid-${id}`, generation: 1, resourceVersion: '1', creationTimestamp: '2026-11-29T00:00:00.000Z' },
      spec: appSpec({ env: { PADDING: 'x'.repeat(padding) } }),
      status: { source: 'api' },
    };
    return Object.freeze(app);
  };

  it('answers a page of the same Apps with the same body, and a page with a changed App anew', () => {
    const apps = [keptApp(), keptApp(), keptApp()];
    const body = presentAppsJson(apps);
    assert.deepEqual(JSON.parse(body.toString()), JSON.parse(JSON.stringify(apps.map(presentApp))));
    assert.equal(presentAppsJson([...apps]), body);
    const changed = [apps[0], keptApp(), apps[2]];
    assert.notEqual(presentAppsJson(changed), body);
    assert.equal(JSON.parse(presentAppsJson(changed).toString())[1].id, changed[1].id);
  });

  it('keeps pages within its bound in bytes, giving up the least recently answered first', () => {
    const first = [keptApp(), keptApp()];
    const body = presentAppsJson(first);
    // 200 pages of about 100 KB: well past the 16 MB kept.
    for (let i = 0; i < 200; i++) presentAppsJson([keptApp(100_000)]);
    const again = presentAppsJson(first);
    assert.notEqual(again, body);
    assert.deepEqual(again, body);
    assert.equal(presentAppsJson(first), again);
  });
});
