/** The store's kept Apps (src/store/app-cache.ts): read again when their version moves, evicted least recently read first. */
import assert from 'node:assert/strict';
import { AppCache, type AppVersion } from '../../src/store/app-cache';
import type { AppRow } from '../../src/store/models';
import { appSpec } from '../helpers/fixtures';

describe('AppCache', () => {
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  /** The database as the cache sees it: each App's version, and the ids each read of whole rows asked for. */
  const database = () => {
    const versions = new Map<number, { resourceVersion: number; schedule: string | null }>();
    const asked: number[][] = [];
    const page = (ids: number[]): AppVersion[] => ids.map((id) => [id, versions.get(id)!.resourceVersion, versions.get(id)!.schedule]);
    const readRows = async (ids: number[]) => {
      asked.push(ids);
      return ids.map(
        (id) =>
          ({
            id,
            name: `app-${id}`,
            uid: `uid-${id}`,
            generation: 1,
            resourceVersion: versions.get(id)!.resourceVersion,
            labels: {},
            spec: appSpec({ schedule: { cron: '* * * * *' } as never }),
            status: { source: 'api' },
            scheduleStatus: versions.get(id)!.schedule,
            createdAt: '2026-11-29 00:00:00.000 +00:00',
          }) as unknown as AppRow,
      );
    };
    for (const id of range(1, 20)) versions.set(id, { resourceVersion: 1, schedule: null });
    return { versions, asked, page, readRows };
  };

  it('reads whole only the Apps whose resourceVersion or schedule status moved, and keeps the others as the same frozen objects', async () => {
    const db = database();
    const cache = new AppCache();
    const first = await cache.read(db.page(range(1, 5)), db.readRows);
    assert.deepEqual(db.asked, [range(1, 5)]);
    assert.ok(first.every((app) => Object.isFrozen(app) && Object.isFrozen(app.spec)));

    db.versions.set(2, { resourceVersion: 2, schedule: null });
    db.versions.set(4, { resourceVersion: 1, schedule: '{"lastScheduleTime":"2026-11-29T00:00:00.000Z"}' });
    const second = await cache.read(db.page(range(1, 5)), db.readRows);
    assert.deepEqual(db.asked[1], [2, 4]);
    assert.deepEqual(
      second.map((app) => app === first[second.indexOf(app)]),
      [true, false, true, false, true],
    );
    assert.equal(second[1].metadata.resourceVersion, '2');
    assert.equal(second[3].status.schedule?.lastScheduleTime, '2026-11-29T00:00:00.000Z');
  });

  it('keeps at most its capacity (with a tenth of slack), giving up the least recently read', async () => {
    const db = database();
    const cache = new AppCache(10);
    await cache.read(db.page(range(1, 10)), db.readRows);
    await cache.read(db.page(range(11, 20)), db.readRows);
    // 20 kept is over 11: down to 10, the ten read last.
    await cache.read(db.page(range(11, 20)), db.readRows);
    assert.deepEqual(db.asked, [range(1, 10), range(11, 20)]);
    await cache.read(db.page(range(1, 10)), db.readRows);
    assert.deepEqual(db.asked[2], range(1, 10));
    // Now 1–10 were read last, and 11–20 went.
    await cache.read(db.page(range(11, 20)), db.readRows);
    assert.deepEqual(db.asked[3], range(11, 20));
  });

  it('leaves out an App deleted between the page and the read of its row', async () => {
    const db = database();
    const cache = new AppCache();
    const page = db.page([1, 2, 3]);
    const apps = await cache.read(page, async (ids) => (await db.readRows(ids)).filter((row) => row.id !== 2));
    assert.deepEqual(
      apps.map((app) => app.id),
      [1, 3],
    );
  });
});
