/**
 * `berth get apps -o wide` against a real `berth serve`: the schedule
 * columns read from the App's spec and the scheduler's status.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Berth, exited, freePort, json, serve } from '../helpers/berth-process';
import { cli, shown } from '../helpers/cli';
import { TEST_IMAGE, tempDir, uniqueName } from '../helpers/fixtures';
import { waitFor } from '../helpers/wait';

const TOKEN = 'cli-wide-token-7d3e9a1c5b8f2046e1c7a3d9b5f0c248';

/** A table's rows as {COLUMN: value}, cut at the header's column starts (values may hold single spaces). */
function parseTable(text: string): Record<string, string>[] {
  const [header, ...lines] = text.trimEnd().split('\n');
  const starts = [...header.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ name: m[0], at: m.index ?? 0 }));
  return lines.map((line) => Object.fromEntries(starts.map(({ name, at }, i) => [name, line.slice(at, starts[i + 1]?.at ?? line.length).trim()])));
}

describe('berth get apps -o wide', function () {
  this.timeout(60_000);
  let berth: Berth;
  const env = () => ({ BERTH_SERVER: berth.url, BERTH_TOKEN: TOKEN });
  const api = (p: string, init: RequestInit = {}) => json(berth.url + p, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers ?? {}) } });
  const create = async (name: string, spec: Record<string, unknown>): Promise<void> => {
    const created = await api('/apps/', {
      method: 'POST',
      body: JSON.stringify({
        apiVersion: 'berth.dev/v1',
        kind: 'App',
        metadata: { name, labels: { suite: 'cli-wide' } },
        spec: { image: TEST_IMAGE, ...spec },
      }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
  };

  before(async () => {
    const dir = tempDir('berth-cli-wide-');
    fs.mkdirSync(path.join(dir, 'apps'));
    berth = await serve(dir, await freePort(), [], { BERTH_TOKEN: TOKEN });
  });
  after(async () => {
    berth.child.kill('SIGTERM');
    await exited(berth.child);
  });

  it('adds RUNTIME, SCHEDULE, NEXT RUN and LAST RUN beside IMAGE', async () => {
    const nightly = uniqueName('wide');
    const paused = uniqueName('wide');
    const plain = uniqueName('wide');
    // Due at 03:00 in Berlin: far enough away that no run is made while the test looks.
    await create(nightly, { command: ['sh', '-c', 'echo nightly'], runtime: 'docker', schedule: { cron: '0 3 * * *', timeZone: 'Europe/Berlin' } });
    await create(paused, { command: ['true'], schedule: { cron: '*/5 * * * *', suspend: true } });
    await create(plain, { command: ['sh', '-c', "echo it's here"] });
    await waitFor('the scheduler to record both schedules', async () => {
      const [a, b] = await Promise.all([api(`/apps/${nightly}/`), api(`/apps/${paused}/`)]);
      return Boolean(a.body.status.schedule?.nextScheduleTime && b.body.status.schedule?.lastScheduleTime);
    });

    const res = await cli(['get', 'apps', '-l', 'suite=cli-wide', '-o', 'wide'], { env: env() });
    assert.equal(res.code, 0, shown(res));
    assert.match(res.stdout, /^NAME\s+IMAGE\s+SOURCE\s+AGE\s+RUNTIME\s+SCHEDULE\s+NEXT RUN\s+LAST RUN\s+COMMAND\s+LABELS\n/);
    const rows = Object.fromEntries(parseTable(res.stdout).map((row) => [row.NAME, row]));

    assert.equal(rows[nightly].IMAGE, TEST_IMAGE);
    assert.equal(rows[nightly].RUNTIME, 'docker');
    assert.equal(rows[nightly].SCHEDULE, '0 3 * * * (Europe/Berlin)');
    // The next 03:00 in Berlin is less than a day away, the last one less than a day ago.
    assert.match(rows[nightly]['NEXT RUN'], /^in (\d+h)?(\d+m)?(\d+s)?$/, shown(res));
    assert.match(rows[nightly]['LAST RUN'], /^(\d+h)?(\d+m)?(\d+s)? ago$/, shown(res));
    const next = (await api(`/apps/${nightly}/`)).body.status.schedule.nextScheduleTime as string;
    const hours = Number(/^in (\d+)h/.exec(rows[nightly]['NEXT RUN'])?.[1] ?? 0);
    const left = Math.floor((Date.parse(next) - Date.now()) / 3_600_000);
    // The CLI read the clock a moment before this test did.
    assert.ok(hours === left || hours === left + 1, `NEXT RUN ${rows[nightly]['NEXT RUN']} counts down to status.schedule.nextScheduleTime ${next}`);

    assert.equal(rows[paused].SCHEDULE, '*/5 * * * *');
    assert.equal(rows[paused]['NEXT RUN'], '<suspended>');
    assert.equal(rows[paused].RUNTIME, '<default>');

    assert.equal(rows[plain].SCHEDULE, '<none>');
    assert.equal(rows[plain]['NEXT RUN'], '<none>');
    assert.equal(rows[plain]['LAST RUN'], '<none>');
    // As a shell reads it back: quoted, and the quote inside ended, escaped and begun again.
    assert.equal(rows[plain].COMMAND, "sh -c 'echo it'\\''s here'");
    assert.equal(rows[plain].LABELS, 'suite=cli-wide');
  });
});
