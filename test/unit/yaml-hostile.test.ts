import assert from 'node:assert/strict';
import { MalformedBodyError, PayloadTooLargeError } from '../../src/errors';
import { parseYamlBody, parseYamlDocuments } from '../../src/model/yaml';
import { readManifestFile } from '../../src/sources/manifest-file';

/** Nested block sequences, each one space deeper than the last: `depth` levels in about depth²/2 bytes. */
function deepBlocks(depth: number): string {
  return Array.from({ length: depth }, (_, i) => `${' '.repeat(i)}- `).join('\n') + 'x\n';
}

describe('YAML that would take the parser down', function () {
  it('refuses an alias inside its own anchor (an endless document) as too large, in a body and in a file', () => {
    for (const text of ['a: &a {b: *a}\n', '&a [*a]\n']) {
      assert.throws(
        () => parseYamlBody(text),
        (err: unknown) => err instanceof PayloadTooLargeError && /refers to itself/.test(err.message),
      );
      const file = readManifestFile(text);
      assert.deepEqual(
        file.errors.map((e) => [e.field, e.line]),
        [['(document)', 1]],
      );
      assert.match(file.errors[0].reason, /refers to itself/);
    }
  });

  it('refuses collections nested deeper than 64, flow or block, before parsing them, naming the line', () => {
    const started = Date.now();
    for (const text of [
      '['.repeat(500_000) + ']'.repeat(500_000),
      '{a: '.repeat(200_000) + '1' + '}'.repeat(200_000),
      deepBlocks(1400),
      '- '.repeat(100_000) + 'x\n',
    ]) {
      assert.throws(
        () => parseYamlBody(text),
        (err: unknown) => err instanceof MalformedBodyError && /nests collections more than 64 deep/.test(err.message) && /line \d+/.test(err.message),
      );
    }
    // Each would take seconds to parse, and a second deep parse after a first aborted the process (V8 ran out of memory compiling a RegExp).
    assert.ok(Date.now() - started < 2000, `refusing took ${Date.now() - started} ms`);
  });

  it('refuses a sequence or a mapping as a key, naming its line, without a warning on stderr', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): number => warnings.push(warning.message);
    process.on('warning', onWarning);
    try {
      for (const text of ['a: 1\n? [complex, key]\n: 2\n', 'a: 1\n{b: c}: 2\n']) {
        const { documents, errors } = parseYamlDocuments(text);
        assert.deepEqual(documents, []);
        assert.deepEqual(
          errors.map((e) => [e.reason, e.line]),
          [['a mapping key must be a scalar, not a sequence or a mapping', 2]],
        );
        assert.throws(
          () => parseYamlBody(text),
          (err: unknown) => err instanceof MalformedBodyError && /mapping key must be a scalar/.test(err.message),
        );
      }
      await new Promise(setImmediate); // process warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings, []);
  });

  it('still reads collections nested as deep as the limit', () => {
    const { documents, errors } = parseYamlDocuments(`${'['.repeat(64)}${']'.repeat(64)}\n`);
    assert.deepEqual(errors, []);
    assert.equal(documents.length, 1);
    assert.equal(parseYamlDocuments(deepBlocks(64)).errors.length, 0);
    // Brackets in quoted or block scalars are text, not nesting.
    assert.equal(parseYamlDocuments(`a: "${'['.repeat(100)}"\nb: |\n  ${'{'.repeat(100)}\n`).errors.length, 0);
  });
});
