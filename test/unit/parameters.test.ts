import assert from 'node:assert/strict';
import { MAX_PARAMETER_VALUE_LENGTH, PATTERN_MATCH_TIMEOUT_MS, resolveParameters } from '../../src/model/parameters';
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
    assert.deepEqual(
      problems.map((p) => p.field),
      ['spec.parameters.0.name', 'spec.parameters.1.name'],
    );
    assert.match(problems[0].reason, /environment variable name/);
    assert.deepEqual(
      problemsOf(() => validateAppManifest(app([{ name: 'A' }, { name: 'A' }]))),
      [{ field: 'spec.parameters.1.name', reason: 'declares "A" a second time' }],
    );
  });

  it('refuses a pattern that does not compile, or is too long, naming the parameter', () => {
    const [broken] = problemsOf(() => validateAppManifest(app([{ name: 'A', pattern: '([a-z]' }])));
    assert.equal(broken.field, 'spec.parameters.0.pattern');
    assert.match(broken.reason, /^is not a valid regular expression: /);
    assert.deepEqual(
      problemsOf(() => validateAppManifest(app([{ name: 'A', pattern: 'a'.repeat(257) }]))),
      [{ field: 'spec.parameters.0.pattern', reason: 'must be a regular expression of 1 to 256 characters' }],
    );
  });

  it('takes backreferences and lookaround, as JavaScript reads them', () => {
    const parameters: AppParameter[] = [
      { name: 'TWICE', pattern: '(ab)\\1' },
      { name: 'NOT_TMP', pattern: '(?!tmp/).+' },
    ];
    assert.doesNotThrow(() => validateAppManifest(app(parameters)));
    assert.deepEqual(resolveParameters('report', parameters, { TWICE: 'abab', NOT_TMP: 'data/x' }), { TWICE: 'abab', NOT_TMP: 'data/x' });
    assert.deepEqual(
      problemsOf(() => resolveParameters('report', parameters, { TWICE: 'abba', NOT_TMP: 'tmp/x' })).map((p) => p.field),
      ['parameters.TWICE', 'parameters.NOT_TMP'],
    );
  });

  it('refuses pattern with enum, a default that breaks its rule, and required with a default', () => {
    assert.deepEqual(
      problemsOf(() => validateAppManifest(app([{ name: 'A', pattern: 'x', enum: ['x'] }]))),
      [{ field: 'spec.parameters.0', reason: 'must have a pattern or an enum, not both' }],
    );
    assert.deepEqual(
      problemsOf(() => validateAppManifest(app([{ name: 'A', enum: ['x', 'y'], default: 'z' }]))),
      [{ field: 'spec.parameters.0.default', reason: 'must be one of x, y; got "z"' }],
    );
    assert.deepEqual(
      problemsOf(() => validateAppManifest(app([{ name: 'A', required: true, default: 'z' }]))),
      [{ field: 'spec.parameters.0.default', reason: 'must not be set on a required parameter (a default would make it optional)' }],
    );
  });

  it('refuses unknown fields of a declaration', () => {
    assert.deepEqual(
      problemsOf(() => validateAppManifest(app([{ name: 'A', type: 'int' }]))),
      [{ field: 'spec.parameters.0.type', reason: 'only name, description, required, default, pattern and enum are supported' }],
    );
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
    assert.deepEqual(
      problemsOf(() => resolveParameters('report', declared, { DAYS: '1000', COLOR: 'red' })),
      [
        { field: 'parameters.COLOR', reason: 'is not a parameter of app "report" (its parameters are TARGET, DAYS, NOTE)' },
        { field: 'parameters.TARGET', reason: 'is required by app "report" (the environment to report on)' },
        { field: 'parameters.DAYS', reason: 'must match the pattern [0-9]{1,3} (the whole value); got "1000"' },
      ],
    );
    assert.deepEqual(
      problemsOf(() => resolveParameters('report', declared, { TARGET: 'prod' })),
      [{ field: 'parameters.TARGET', reason: 'must be one of staging, production; got "prod"' }],
    );
  });

  it('matches a pattern against the whole value', () => {
    assert.deepEqual(
      problemsOf(() => resolveParameters('report', declared, { TARGET: 'staging', DAYS: '7; rm -rf /' })).map((p) => p.field),
      ['parameters.DAYS'],
    );
  });

  it('refuses a value its pattern backtracks on for too long, within the match timeout, and matches the next value as usual', () => {
    // A backtracking engine tries every split of the a's of "aaa…a!" for (a+)+: 2^4095 paths, for ever.
    const hostile: AppParameter[] = [{ name: 'WORD', pattern: '(a+)+' }];
    const value = `${'a'.repeat(MAX_PARAMETER_VALUE_LENGTH - 1)}!`;
    const started = performance.now();
    const [problem] = problemsOf(() => resolveParameters('report', hostile, { WORD: value }));
    // The bound is PATTERN_MATCH_TIMEOUT_MS; the margin is for a loaded machine.
    assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
    assert.equal(problem.field, 'parameters.WORD');
    assert.match(problem.reason, new RegExp(`^could not be checked against the pattern \\(a\\+\\)\\+ within ${PATTERN_MATCH_TIMEOUT_MS} ms`));
    assert.deepEqual(resolveParameters('report', hostile, { WORD: 'a'.repeat(MAX_PARAMETER_VALUE_LENGTH) }), { WORD: 'a'.repeat(MAX_PARAMETER_VALUE_LENGTH) });
  });

  it('refuses any value for an App that declares none', () => {
    assert.deepEqual(
      problemsOf(() => resolveParameters('plain', undefined, { A: '1' })),
      [{ field: 'parameters.A', reason: 'is not a parameter of app "plain" (it declares none)' }],
    );
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
    const run = validateRunManifest({
      apiVersion: 'berth.dev/v1',
      kind: 'Run',
      metadata: { name: 'r1' },
      spec: { app: 'report', parameters: { TARGET: 'staging' } },
    });
    assert.deepEqual(run.overrides, { parameters: { TARGET: 'staging' } });
  });
});
