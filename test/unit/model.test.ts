import assert from 'node:assert/strict';
import { MalformedBodyError } from '../../src/errors';
import { splitCommand } from '../../src/model/command';
import { appFromBody, mergePatch, validateAppManifest, validateRunManifest, validateRunRequest } from '../../src/model/validate';
import { parseYamlBody, parseYamlDocuments } from '../../src/model/yaml';
import type { App } from '../../src/model/types';
import { problemsOf } from '../helpers/validation';

const manifest = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'hello' }) => ({
  apiVersion: 'berth.dev/v1',
  kind: 'App',
  metadata,
  spec,
});

describe('splitCommand (shell-like, no expansion)', () => {
  it('keeps a quoted script as one word', () => {
    assert.deepEqual(splitCommand("sh -c 'echo hi; exit 3'"), ['sh', '-c', 'echo hi; exit 3']);
  });
  it('handles double quotes, escapes and leaves variables for the container shell', () => {
    assert.deepEqual(splitCommand('echo "a \\"b\\"" c\\ d ${WHO}x $HOME'), ['echo', 'a "b"', 'c d', '${WHO}x', '$HOME']);
  });
  it('keeps empty quoted words and collapses runs of blanks', () => {
    assert.deepEqual(splitCommand("  a   ''  b\t"), ['a', '', 'b']);
  });
  it('refuses an unclosed quote, naming the field', () => {
    assert.throws(() => splitCommand("sh -c 'oops", 'spec.command'), {
      name: 'ValidationError',
      message: 'spec.command: has an unclosed single quote',
    });
  });
});

describe('App validation', () => {
  it('accepts the seed body and splits a string command', () => {
    const input = appFromBody({ name: 'hello', image: 'busybox:1.36', command: "sh -c 'echo hi; exit 3'", envs: { WHO: 'x' } });
    assert.equal(input.name, 'hello');
    assert.deepEqual(input.spec.command, ['sh', '-c', 'echo hi; exit 3']);
    assert.deepEqual(input.spec.env, { WHO: 'x' });
    assert.equal(input.spec.concurrencyPolicy, 'Allow');
    assert.equal(input.spec.imagePullPolicy, 'IfNotPresent');
  });

  it('accepts seed envs as a list of NAME=value', () => {
    const input = appFromBody({ name: 'hello', image: 'busybox', envs: ['A=1', 'B=x=y'] });
    assert.deepEqual(input.spec.env, { A: '1', B: 'x=y' });
  });

  it('merges a partial seed body into the current App', () => {
    const current = {
      metadata: { name: 'hello', labels: { a: 'b' } },
      spec: appFromBody({ name: 'hello', image: 'busybox', envs: { A: '1' } }).spec,
    } as unknown as App;
    const input = appFromBody({ image: 'busybox:1.37' }, current);
    assert.equal(input.spec.image, 'busybox:1.37');
    assert.deepEqual(input.spec.env, { A: '1' });
    assert.deepEqual(input.labels, { a: 'b' });
  });

  it('names every offending field of a seed body', () => {
    const problems = problemsOf(() => appFromBody({ name: 'Hello_', image: 'Not An Image', extra: 1 }));
    assert.deepEqual(problems.map((p) => p.field).sort(), ['extra', 'image', 'name']);
    assert.match(problems.find((p) => p.field === 'name')!.reason, /DNS-1123 label/);
    assert.equal(problems.find((p) => p.field === 'extra')!.reason, 'is not a known field');
  });

  it('refuses an all-digit name, which the API would read as an id', () => {
    assert.deepEqual(
      problemsOf(() => appFromBody({ name: '123', image: 'busybox' })),
      [{ field: 'name', reason: 'must not be only digits (the API reads those as an id)' }],
    );
  });

  it('requires name and image in a seed body', () => {
    assert.deepEqual(
      problemsOf(() => appFromBody({})).map((p) => `${p.field}: ${p.reason}`),
      ['name: is required', 'image: is required'],
    );
  });

  it('validates a manifest with ranges, enums, quantities and unknown fields', () => {
    const problems = problemsOf(() =>
      validateAppManifest(manifest({ image: 'busybox', retries: 101, concurrencyPolicy: 'Sometimes', resources: { memory: 'lots', cpu: '-1' }, bogus: true })),
    );
    const byField = Object.fromEntries(problems.map((p) => [p.field, p.reason]));
    assert.equal(byField['spec.retries'], 'must be an integer from 0 to 100');
    assert.equal(byField['spec.concurrencyPolicy'], 'must be one of Allow, Forbid, Replace');
    assert.match(byField['spec.resources.memory'], /must be a positive number of bytes/);
    assert.match(byField['spec.resources.cpu'], /must be a positive number of CPUs/);
    assert.equal(byField['spec.bogus'], 'is not a known field');
  });

  it('refuses non-string env values and bad env names', () => {
    const problems = problemsOf(() => validateAppManifest(manifest({ image: 'busybox', env: { PORT: 8080, '1BAD': 'x' } })));
    assert.ok(problems.some((p) => p.field === 'spec.env.PORT' && /must be a string/.test(p.reason)));
    assert.ok(problems.some((p) => p.field === 'spec.env.1BAD' && /variable names/.test(p.reason)));
  });

  it('accepts registry references with ports, paths, tags and digests', () => {
    for (const image of ['busybox', 'busybox:1.36', '127.0.0.1:5000/berth-test/busybox:latest', 'ghcr.io/org/tool@sha256:' + 'a'.repeat(64)]) {
      assert.equal(validateAppManifest(manifest({ image })).spec.image, image);
    }
  });

  it('keeps resourceVersion as a precondition and normalises quantities to strings', () => {
    const input = validateAppManifest(manifest({ image: 'busybox', resources: { cpu: 0.5, memory: '256Mi' } }, { name: 'x', resourceVersion: 3 }));
    assert.equal(input.resourceVersion, '3');
    assert.deepEqual(input.spec.resources, { cpu: '0.5', memory: '256Mi' });
  });

  it('refuses flat fields that disagree with the manifest they accompany', () => {
    const problems = problemsOf(() => appFromBody({ ...manifest({ image: 'busybox' }), image: 'other' }));
    assert.deepEqual(problems, [{ field: 'image', reason: 'conflicts with spec.image "busybox"' }]);
  });
});

describe('spec.kubernetes', () => {
  const pod = {
    serviceAccountName: 'batch-runner',
    nodeSelector: { 'kubernetes.io/os': 'linux' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'batch', effect: 'NoSchedule' }],
    imagePullSecrets: ['registry-creds'],
    labels: { team: 'data' },
    annotations: { 'example.com/cost-centre': '42' },
  };

  it('is kept on an App that runs on kubernetes, or on the server default', () => {
    assert.deepEqual(validateAppManifest(manifest({ image: 'busybox', runtime: 'kubernetes', kubernetes: pod })).spec.kubernetes, pod);
    assert.deepEqual(validateAppManifest(manifest({ image: 'busybox', kubernetes: pod })).spec.kubernetes, pod);
  });

  it('is refused on an App whose runtime is docker, naming the field', () => {
    const problems = problemsOf(() => validateAppManifest(manifest({ image: 'busybox', runtime: 'docker', kubernetes: {} })));
    assert.deepEqual(
      problems.map((p) => [p.field, p.reason]),
      [['spec.kubernetes', 'applies only to runtime kubernetes; this App has runtime docker']],
    );
  });

  it('names each bad field and refuses what it does not support', () => {
    const problems = problemsOf(() =>
      validateAppManifest(
        manifest({ image: 'busybox', kubernetes: { serviceAccountName: 'Bad_Name', tolerations: [{ effect: 'Sometimes' }], hostNetwork: true } }),
      ),
    );
    const fields = problems.map((p) => p.field).sort();
    assert.deepEqual(fields, ['spec.kubernetes.hostNetwork', 'spec.kubernetes.serviceAccountName', 'spec.kubernetes.tolerations.0.effect']);
    assert.match(problems.find((p) => p.field === 'spec.kubernetes.hostNetwork')!.reason, /only serviceAccountName, nodeSelector/);
  });
});

describe('Run validation', () => {
  it('reads a Run manifest with overrides', () => {
    const run = validateRunManifest({
      apiVersion: 'berth.dev/v1',
      kind: 'Run',
      metadata: { name: 'r-1' },
      spec: { app: 'hello', env: { WHO: 'g' }, command: 'echo hi' },
    });
    assert.deepEqual(run, { name: 'r-1', labels: {}, app: 'hello', overrides: { env: { WHO: 'g' }, command: ['echo', 'hi'] } });
  });
  it('reads an empty run request as no overrides and refuses unknown fields', () => {
    assert.deepEqual(validateRunRequest(undefined), { overrides: {} });
    assert.deepEqual(
      problemsOf(() => validateRunRequest({ image: 'x' })),
      [{ field: 'image', reason: 'is not a known field' }],
    );
  });
});

describe('YAML documents', () => {
  const text = [
    'apiVersion: berth.dev/v1',
    'kind: App',
    'metadata: {name: hello}',
    'spec:',
    '  image: busybox',
    '  retries: -1',
    '---',
    '# nothing here',
    '---',
    'kind: Run',
    'metadata: {name: r1}',
    'spec: {app: hello}',
  ].join('\n');

  it('parses multi-document text, skipping empty documents', () => {
    const { documents, errors } = parseYamlDocuments(text);
    assert.deepEqual(errors, []);
    assert.equal(documents.length, 2);
    assert.equal(documents[1].line, 10);
  });

  it('reports validation problems with line and column', () => {
    const [doc] = parseYamlDocuments(text).documents;
    const problems = problemsOf(() => validateAppManifest(doc.value, doc.locate));
    assert.deepEqual(problems, [{ field: 'spec.retries', reason: 'must be an integer from 0 to 100', line: 6, column: 12 }]);
  });

  it('reports syntax errors with line and column', () => {
    const { errors } = parseYamlDocuments('a: 1\nb: [1, 2\nc: 3\n');
    assert.ok(errors.length > 0);
    assert.equal(typeof errors[0].line, 'number');
    assert.equal(typeof errors[0].column, 'number');
  });

  it('turns a malformed YAML body into a 400 naming the line', () => {
    assert.throws(
      () => parseYamlBody('a: [1,\n'),
      (err: unknown) => err instanceof MalformedBodyError && /line \d+, column \d+/.test(err.message),
    );
  });
});

describe('mergePatch', () => {
  it('merges objects, replaces arrays and deletes on null', () => {
    assert.deepEqual(mergePatch({ a: { b: 1, c: 2 }, d: [1], e: 1 }, { a: { b: 3 }, d: [2], e: null }), { a: { b: 3, c: 2 }, d: [2] });
  });
});
