/**
 * Values for the API's bodies and the folder's files: Apps and Runs in the
 * seed's flat form and as manifests, run requests and merge patches, each
 * field right most of the time and anything at all the rest; and YAML texts
 * that try the parser itself (aliases, tags, merge keys, deep nesting).
 */
import fc from 'fast-check';
import { TEST_IMAGE } from '../helpers/fixtures';
import { KNOWN } from './target';

const odd = fc.oneof(
  fc.constantFrom(
    null,
    '',
    ' ',
    '\u0000',
    '__proto__',
    'constructor',
    -1,
    0,
    -0,
    1.5,
    1e308,
    Number.MAX_SAFE_INTEGER + 2,
    true,
    [],
    {},
    '9'.repeat(400),
    'é💩\u202e',
  ),
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.jsonValue({ maxDepth: 2 }),
);
/** `valid` three times in four, anything the rest. */
const or = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: odd });
const optionalFields = <T>(fields: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(fields, { requiredKeys: [] });

const name = fc.oneof(
  fc.constantFrom(KNOWN.apiApp, KNOWN.fileApp, 'fuzz-new', 'fuzz-new-2', 'a', '1', 'a'.repeat(63), 'a'.repeat(64), 'UPPER', '-a', 'a-', 'a_b', 'a.b'),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/),
);
const image = fc.constantFrom(
  TEST_IMAGE,
  'busybox:1.36',
  '127.0.0.1:5000/x/y:z',
  'a@sha256:' + 'a'.repeat(64),
  'UPPER',
  '',
  'a:',
  ':',
  'a b',
  'x'.repeat(600),
  'docker.io/library/busybox',
);
const envKey = fc.oneof(fc.constantFrom('A', 'PATH', 'a_b', '1A', '', 'A=B', '__proto__', 'constructor', 'x'.repeat(300)), fc.string({ maxLength: 8 }));
const env = fc.dictionary(envKey, or(fc.string({ maxLength: 20 })), { maxKeys: 4 });
const command = fc.oneof(
  fc.constantFrom('echo hi', 'sh -c "echo $A"', "unterminated 'quote", 'a\\', '$(x)', '', ' ', 'a && b | c > d', 'a\u0000b'),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
);
const quantity = fc.constantFrom(
  '0.5',
  '500m',
  '2',
  '256Mi',
  '1Gi',
  '1e9',
  '1E3',
  '-1',
  '0',
  '1Ei',
  '99999999999999999999Gi',
  'NaN',
  '.5',
  '5.',
  '1.5Mi',
  0.25,
  1e21,
  'm',
  'Mi',
);
const labels = fc.dictionary(fc.constantFrom('team', 'a/b', 'tier', '-x', 'x'.repeat(70), ''), or(fc.constantFrom('fuzz', 'data', '', '-', 'x'.repeat(70))), {
  maxKeys: 3,
});

const spec = optionalFields({
  image: or(image),
  command: or(command),
  env: or(env),
  runtime: or(fc.constantFrom('docker', 'kubernetes', 'nomad')),
  timeoutSeconds: or(fc.constantFrom(1, 600, 0, -5, 2_592_001, 1.5)),
  retries: or(fc.constantFrom(0, 3, 101, -1)),
  concurrencyPolicy: or(fc.constantFrom('Allow', 'Forbid', 'Replace', 'allow')),
  imagePullPolicy: or(fc.constantFrom('IfNotPresent', 'Always', 'Never')),
  historyLimit: or(fc.constantFrom(0, 5, 100_001)),
  resources: or(optionalFields({ cpu: or(quantity), memory: or(quantity) })),
  network: or(fc.constantFrom('none', 'default', 'bridge', 'host', 'my-net', '')),
  user: or(fc.constantFrom('1000', '1000:1000', 'root', 0, '99999999999')),
  capabilities: or(optionalFields({ add: or(fc.array(fc.constantFrom('NET_BIND_SERVICE', 'SYS_ADMIN', 'CAP_CHOWN', 'bogus', 'ALL'), { maxLength: 3 })) })),
  kubernetes: or(
    optionalFields({
      nodeSelector: or(labels),
      serviceAccountName: or(name),
      annotations: or(labels),
      tolerations: or(fc.array(optionalFields({ key: or(fc.constantFrom('a', '')), operator: or(fc.constantFrom('Exists', 'Equal', 'x')) }), { maxLength: 2 })),
    }),
  ),
});

const metadata = optionalFields({
  name: or(name),
  labels: or(labels),
  resourceVersion: or(fc.constantFrom('1', '2', 1, '0', '-1', 'x', '99999999999999999999')),
  uid: or(fc.uuid()),
  generation: or(fc.integer()),
});

const appManifest = optionalFields({
  apiVersion: or(fc.constantFrom('berth.dev/v1', 'berth.dev/v2', 'v1')),
  kind: or(fc.constantFrom('App', 'Run', 'Pod')),
  metadata: or(metadata),
  spec: or(spec),
  status: or(fc.constant({ phase: 'Running' })),
});

const runManifest = optionalFields({
  apiVersion: or(fc.constant('berth.dev/v1')),
  kind: or(fc.constant('Run')),
  metadata: or(metadata),
  spec: or(optionalFields({ app: or(name), env: or(env), command: or(command) })),
});

const seedApp = optionalFields({ name: or(name), image: or(image), command: or(command), envs: or(env), id: or(fc.integer()) });
const runRequest = optionalFields({ name: or(name), env: or(env), envs: or(env), command: or(command) });

/** A body the API reads: a seed App, an App manifest, a run request, a merge patch, or a Run manifest. */
export const manifestValue: fc.Arbitrary<unknown> = fc.oneof(
  appManifest,
  seedApp,
  runRequest,
  runManifest,
  fc.dictionary(fc.constantFrom('spec', 'metadata', 'image', 'env'), fc.constant(null)),
);

/** What a file in the apps folder may hold: documents of those values, and nothing the parser should take. */
export const manifestDocuments: fc.Arbitrary<unknown[]> = fc.array(fc.oneof(appManifest, runManifest, odd), { minLength: 1, maxLength: 4 });

const HOSTILE_YAML = [
  // Aliases: few, many, and a "billion laughs".
  'a: &a [1, 2]\nb: *a\n',
  'a: *missing\n',
  'a: &a {b: *a}\n',
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n',
  `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: fuzz-alias}\nspec: {image: ${TEST_IMAGE}, env: &e {A: "${'x'.repeat(1000)}"}, command: [*e, *e]}\n`,
  // Merge keys, tags, and types YAML 1.1 had.
  'base: &b {image: busybox}\nspec:\n  <<: *b\n  <<: *b\n',
  'a: !!binary aGVsbG8=\n',
  'a: !!js/function "function(){}"\n',
  'a: !!set {x, y}\n',
  'a: !!omap [{x: 1}]\n',
  'a: !!timestamp 2001-12-14\n',
  'a: !!float .inf\nb: !!int 0x1F\nc: 0o17\nd: 1_000\n',
  'a: !custom x\n',
  '%YAML 1.1\n---\na: yes\nb: no\nc: on\n',
  '%TAG ! tag:evil,2000:\n---\n!x a: 1\n',
  '? [complex, key]\n: value\n',
  '{[a]: 1}\n',
  '__proto__: {polluted: 1}\n',
  'a: 1\na: 2\n',
  '---\n---\n---\n',
  '--- |\n  text\n',
  '- a\n- b\n',
  '"\\u0000": x\n',
  "a: '\\x'\n",
  '\t- a\n',
  '\ufeffa: 1\n',
  'a:\n' + '  '.repeat(500) + 'b\n',
  '['.repeat(2000) + ']'.repeat(2000),
  '{a: '.repeat(1500) + '1' + '}'.repeat(1500),
  '- '.repeat(1000) + 'x\n',
  `apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: fuzz-yaml}\nspec:\n  image: ${TEST_IMAGE}\n  command: >\n    folded\n    text\n  env: {A: !!str 1, B: null}\n`,
];

/** YAML texts that try the parser: aliases, tags, merge keys, duplicates, deep nesting, and fragments of them. */
export const hostileYaml: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_YAML) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_YAML).chain((text) => fc.nat(text.length).map((cut) => text.slice(0, cut))) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...HOSTILE_YAML), { minLength: 2, maxLength: 3 }).map((texts) => texts.join('---\n')) },
  {
    weight: 1,
    arbitrary: fc.string({
      unit: fc.constantFrom('a', ':', ' ', '\n', '-', '&', '*', '!', '[', ']', '{', '}', '"', "'", '|', '>', '#', '%', '?', ',', '<', '\t', '1'),
      maxLength: 60,
    }),
  },
);
