import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readManifestFile } from '../../src/sources/manifest-file';

// dist/test/unit → the repository root.
const EXAMPLES = path.resolve(__dirname, '../../../examples');

describe('examples/', function () {
  const files = fs
    .readdirSync(EXAMPLES)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();

  it('holds manifests', () => {
    assert.ok(files.length >= 4, `found ${files.join(', ')}`);
  });

  for (const file of files) {
    it(`${file} parses and validates`, () => {
      const manifest = readManifestFile(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'));
      assert.deepEqual(manifest.errors, []);
      assert.ok(manifest.apps.length + manifest.runs.length > 0, 'declares something');
    });
  }

  it('declares every App its Runs name', () => {
    const all = files.map((f) => readManifestFile(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')));
    const apps = new Set(all.flatMap((m) => m.apps.map((a) => a.name)));
    for (const run of all.flatMap((m) => m.runs)) assert.ok(apps.has(run.app), `Run ${run.name} names App ${run.app}`);
  });
});
