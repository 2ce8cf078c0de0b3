import assert from 'node:assert/strict';
import { BadQueryError } from '../../src/errors';
import { parseFields } from '../../src/api/fields';

describe('?fields= paths', () => {
  it('accepts top-level fields, known second levels, and anything below a map', () => {
    assert.deepEqual(parseFields('id, metadata.name,metadata.labels.team,status', 'App'), ['id', 'metadata.name', 'metadata.labels.team', 'status']);
    assert.deepEqual(parseFields('app,status.phase,spec.template.image', 'Run'), ['app', 'status.phase', 'spec.template.image']);
  });

  it('refuses what an answer of that kind does not hold, naming every such path', () => {
    assert.throws(
      () => parseFields('status.phase,envs', 'Run'),
      (err: unknown) => {
        assert.ok(err instanceof BadQueryError);
        assert.equal(err.status, 400);
        assert.match(err.message, /^fields: "envs" is not a field of a Run/);
        return true;
      },
    );
    assert.throws(() => parseFields('', 'App'), /"" is not a field of an App/);
    assert.throws(() => parseFields('__proto__,constructor', 'App'), /"__proto__", "constructor" are not fields/);
  });
});
