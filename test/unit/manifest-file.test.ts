import assert from 'node:assert/strict';
import { readManifestFile } from '../../src/sources/manifest-file';
import { isIgnored, isManifestPath } from '../../src/sources/paths';

describe('readManifestFile', function () {
  it('returns Apps and Runs with their positions, skipping empty documents', () => {
    const manifest = readManifestFile(
      [
        '# comments only',
        '---',
        'apiVersion: berth.dev/v1',
        'kind: App',
        'metadata: {name: a}',
        'spec: {image: busybox:1.36, command: echo hi}',
        '---',
        'apiVersion: berth.dev/v1',
        'kind: Run',
        'metadata: {name: a-1}',
        'spec: {app: a}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(manifest.errors, []);
    assert.deepEqual(
      manifest.apps.map((a) => [a.name, a.document, a.line, a.spec.command]),
      [['a', 0, 3, ['echo', 'hi']]],
    );
    assert.deepEqual(
      manifest.runs.map((r) => [r.name, r.app, r.document, r.line]),
      [['a-1', 'a', 1, 8]],
    );
  });

  it('reports a name declared twice in one file on the second document', () => {
    const doc = 'apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: a}\nspec: {image: busybox}\n';
    const manifest = readManifestFile(`${doc}---\n${doc}`);
    assert.deepEqual(manifest.errors, [
      { document: 1, kind: 'App', name: 'a', field: 'metadata.name', reason: 'App "a" is declared twice in this file', line: 8, column: 18 },
    ]);
  });

  it('reports a document that is not a mapping', () => {
    const manifest = readManifestFile('- just\n- a list\n');
    assert.deepEqual(
      manifest.errors.map((e) => [e.document, e.field, e.line]),
      [[0, '(document)', 1]],
    );
  });
});

describe('manifest paths', function () {
  it('takes .yaml and .yml files, anywhere but in dot-folders', () => {
    assert.ok(isManifestPath('a.yaml'));
    assert.ok(isManifestPath('team/b.yml'));
    assert.ok(isManifestPath('team/C.YAML'));
    assert.ok(!isManifestPath('a.json'));
    assert.ok(!isManifestPath('.git/a.yaml'));
    assert.ok(!isManifestPath('..data/a.yaml'));
    assert.ok(!isManifestPath('.a.yaml.swp'));
    assert.ok(!isManifestPath('a.yaml~'));
  });

  it('ignores dot-folders and editor files but not ordinary folders', () => {
    assert.ok(!isIgnored('team'));
    assert.ok(!isIgnored(''));
    assert.ok(isIgnored('.git'));
    assert.ok(isIgnored('.#a.yaml'));
    assert.ok(isIgnored('4913'));
  });
});
