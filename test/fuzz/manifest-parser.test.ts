import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { BerthError } from '../../src/errors';
import { DEFAULT_CONTAINMENT } from '../../src/model/containment';
import { RuntimeName } from '../../src/model/types';
import { parseYamlBody } from '../../src/model/yaml';
import { readManifestFile } from '../../src/sources/manifest-file';
import { announceSeed, fuzzParameters } from './settings';
import { hostileYaml, manifestDocuments } from './values';

/** Any text, in the shapes a manifest file or a YAML body takes. */
const manifestText = fc.oneof(
  { weight: 3, arbitrary: manifestDocuments.map((docs) => docs.map((doc) => stringify(doc)).join('---\n')) },
  { weight: 2, arbitrary: hostileYaml },
  { weight: 1, arbitrary: manifestDocuments.map((docs) => JSON.stringify(docs[0])) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }) },
);

const admission = { containment: DEFAULT_CONTAINMENT, defaultRuntime: RuntimeName.docker };

/**
 * The folder parser (src/sources/manifest-file.ts over src/model/yaml.ts):
 * whatever a file holds, it answers with declarations or errors that name a
 * line and column, and never throws; a YAML body is a value or a BerthError.
 */
describe('fuzz: the folder parser', function () {
  this.timeout(0);

  it('reads any file into declarations or located errors, never throwing', () => {
    const parameters = fuzzParameters<[string]>(500, 100_000);
    announceSeed('readManifestFile', parameters);
    fc.assert(
      fc.property(manifestText, (text) => {
        const file = readManifestFile(text, admission);
        for (const error of file.errors) {
          assert.ok(typeof error.reason === 'string' && error.reason !== '', `an error without a reason: ${JSON.stringify(error)}`);
          assert.ok(Number.isInteger(error.line) && error.line! >= 1, `an error without a line: ${JSON.stringify(error)}`);
          assert.ok(Number.isInteger(error.column) && error.column! >= 1, `an error without a column: ${JSON.stringify(error)}`);
        }
        for (const app of [...file.apps, ...file.runs]) {
          assert.ok(Number.isInteger(app.line) && app.line >= 1);
        }
      }),
      parameters,
    );
  });

  it('reads any YAML body into a value or a BerthError', () => {
    const parameters = fuzzParameters<[string]>(300, 100_000);
    announceSeed('parseYamlBody', parameters);
    fc.assert(
      fc.property(manifestText, (text) => {
        try {
          parseYamlBody(text);
        } catch (err) {
          assert.ok(err instanceof BerthError && err.status < 500, `parseYamlBody threw ${(err as Error)?.stack}`);
        }
      }),
      parameters,
    );
  });
});
