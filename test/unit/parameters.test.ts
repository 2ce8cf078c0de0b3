import assert from 'node:assert/strict';
import { MAX_PARAMETER_VALUE_LENGTH, resolveParameters } from '../../src/model/parameters';
import { validateAppManifest, validateRunManifest, validateRunRequest } from '../../src/model/validate';
import type { AppParameter } from '../../src/model/types';
import { problemsOf } from '../helpers/validation';

const app = (parameters: unknown) => ({
  apiVersion: 'berth.dev/v1',
  kind: 'App',
  metadata: { name: 'report' },
  spec: { image: 'busybox:1.36', parameters },
});

const declared: AppParameter[] = [
  { name: 'TARGET', description: 'the environment to report on', required: true, enum: ['staging', 'production'] },
  { name: 'DAYS', default: '7', pattern: '[0-9]{1,3}' },
  { name: 'NOTE' },
];

describe('App spec.parameters', () => {
  it('accepts declarations and keeps them as given', () => {
    const spec = validateAppManifest(app(declared)).spec;
    assert.deepEqual(spec.parameters, declared);
  });

  it('refuses names that are not environment variable names, and duplicates', () => {
    const problems = problemsOf(() => validateAppManifest(app([{ name: '1X' }, { name: 'A-B' }])));
    assert.deepEqual(problems.map((p) => p.field), ['spec.parameters.0.name', 'spec.parameters.1.name']);
    assert.match(problems[0].reason, /environment variable name/);
    assert.deepEqual(problemsOf(() => validateAppManifest(app([{ name: 'A' }, { name: 'A' }]))), [
      { field: 'spec.parameters.1.name', reason: 'declares "A" a second time' },
    ]);
  });

  it('refuses a pattern that does not compile, or is too long, naming the parameter', () => {
    const [broken] = problemsOf(() => validateAppManifest(app([{ name: 'A', pattern: '([a-z]' }])));
    assert.equal(broken.field, 'spec.parameters.0.pattern');
    assert.match(broken.reason, /^is not a valid regular expression: /);
    assert.deepEqual(problemsOf(() => validateAppManifest(app([{ name: 'A', pattern: 'a'.repeat(257) }]))), [
      { field: 'spec.parameters.0.pattern', reason: 'must be a regular expression of 1 to 256 characters' },
    ]);
  });

  it('refuses a pattern RE2 cannot match in linear time (backreferences, lookaround), naming the parameter', () => {
    for (const pattern of ['(a)\\1', 'a(?=b)', '(?<!x)y']) {
      const problems = problemsOf(() => validateAppManifest(app([{ name: 'A', pattern }])));
      assert.equal(problems.length, 1, pattern);
      assert.equal(problems[0].field, 'spec.parameters.0.pattern');
      assert.match(problems[0].reason, /^is not supported by RE2, the linear-time engine berth matches with \(no backreferences or lookaround\): /);
    }
  });

  it('refuses pattern with enum, a default that breaks its rule, and required with a default', () => {
    assert.deepEqual(problemsOf(() => validateAppManifest(app([{ name: 'A', pattern: 'x', enum: ['x'] }]))), [
      { field: 'spec.parameters.0', reason: 'must have a pattern or an enum, not both' },
    ]);
    assert.deepEqual(problemsOf(() => validateAppManifest(app([{ name: 'A', enum: ['x', 'y'], default: 'z' }]))), [
      { field: 'spec.parameters.0.default', reason: 'must be one of x, y; got "z"' },
    ]);
    assert.deepEqual(problemsOf(() => validateAppManifest(app([{ name: 'A', required: true, default: 'z' }]))), [
      { field: 'spec.parameters.0.default', reason: 'must not be set on a required parameter (a default would make it optional)' },
    ]);
  });

  it('refuses unknown fields of a declaration', () => {
    assert.deepEqual(problemsOf(() => validateAppManifest(app([{ name: 'A', type: 'int' }]))), [
      { field: 'spec.parameters.0.type', reason: 'only name, description, required, default, pattern and enum are supported' },
    ]);
  });
});

describe('resolveParameters', () => {
  it('applies defaults and leaves out optional parameters with none', () => {
    assert.deepEqual(resolveParameters('report', declared, { TARGET: 'staging' }), { TARGET: 'staging', DAYS: '7' });
    assert.deepEqual(resolveParameters('report', declared, { TARGET: 'production', DAYS: '30', NOTE: 'x y' }), {
      TARGET: 'production',
      DAYS: '30',
      NOTE: 'x y',
    });
  });

  it('names each bad value: unknown, missing required, not matching, not in the enum', () => {
    assert.deepEqual(problemsOf(() => resolveParameters('report', declared, { DAYS: '1000', COLOR: 'red' })), [
      { field: 'parameters.COLOR', reason: 'is not a parameter of app "report" (its parameters are TARGET, DAYS, NOTE)' },
      { field: 'parameters.TARGET', reason: 'is required by app "report" (the environment to report on)' },
      { field: 'parameters.DAYS', reason: 'must match the pattern [0-9]{1,3} (the whole value); got "1000"' },
    ]);
    assert.deepEqual(problemsOf(() => resolveParameters('report', declared, { TARGET: 'prod' })), [
      { field: 'parameters.TARGET', reason: 'must be one of staging, production; got "prod"' },
    ]);
  });

  it('matches a pattern against the whole value', () => {
    assert.deepEqual(problemsOf(() => resolveParameters('report', declared, { TARGET: 'staging', DAYS: '7; rm -rf /' })).map((p) => p.field), [
      'parameters.DAYS',
    ]);
  });

  it('matches a catastrophic pattern against a hostile value of the longest length in linear time', () => {
    // On a backtracking engine, (a+)+ against "aaa…a!" tries every split of the a's: 2^4095 paths.
    const hostile: AppParameter[] = [{ name: 'WORD', pattern: '(a+)+' }];
    const value = `${'a'.repeat(MAX_PARAMETER_VALUE_LENGTH - 1)}!`;
    const started = performance.now();
    const [problem] = problemsOf(() => resolveParameters('report', hostile, { WORD: value }));
    assert.ok(performance.now() - started < 100, `took ${performance.now() - started} ms`);
    assert.equal(problem.field, 'parameters.WORD');
    assert.deepEqual(resolveParameters('report', hostile, { WORD: 'a'.repeat(MAX_PARAMETER_VALUE_LENGTH) }), { WORD: 'a'.repeat(MAX_PARAMETER_VALUE_LENGTH) });
  });

  it('refuses any value for an App that declares none', () => {
    assert.deepEqual(problemsOf(() => resolveParameters('plain', undefined, { A: '1' })), [
      { field: 'parameters.A', reason: 'is not a parameter of app "plain" (it declares none)' },
    ]);
    assert.deepEqual(resolveParameters('plain', undefined, undefined), {});
  });
});

describe('parameters in run requests and kind: Run documents', () => {
  it('reads them from a run request body, strings only', () => {
    assert.deepEqual(validateRunRequest({ parameters: { TARGET: 'staging' } }).overrides, { parameters: { TARGET: 'staging' } });
    const [problem] = problemsOf(() => validateRunRequest({ parameters: { DAYS: 7 } }));
    assert.equal(problem.field, 'parameters.DAYS');
    assert.match(problem.reason, /^must be a string/);
  });

  it('reads them from spec.parameters of a Run document', () => {
    const run = validateRunManifest({ apiVersion: 'berth.dev/v1', kind: 'Run', metadata: { name: 'r1' }, spec: { app: 'report', parameters: { TARGET: 'staging' } } });
    assert.deepEqual(run.overrides, { parameters: { TARGET: 'staging' } });
  });
});
