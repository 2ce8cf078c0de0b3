import assert from 'node:assert/strict';
import YAML from 'yaml';
import { yamlDocument } from '../../src/ui/client/yaml';

/** The web page shows specs as YAML; what it shows must read back as the same values. */
describe('web page: specs as YAML', () => {
  it('writes plain what YAML reads as the same string, and quotes the rest', () => {
    const strings = [
      'sh',
      '-c',
      'berth-test/busybox:latest',
      'k=v',
      'echo hi: x',
      'a #b',
      '-1',
      '-',
      '- x',
      'true',
      'Yes',
      'null',
      '~',
      '1e3',
      '.5',
      '-.inf',
      '0x1F',
      '',
      ' lead',
      'trail ',
      'x:',
      '@x',
      '`x',
      "it's",
      'multi\nline',
      'ünï',
      '{a}',
      '[b]',
      '*ref',
      '&anchor',
      '!tag',
      '%x',
      '"q"',
      '256Mi',
      '500m',
      '1e3',
      '0.5',
      '2026-11-28',
      '1_000',
      '12:30',
    ];
    const text = yamlDocument({ command: strings });
    assert.deepEqual(YAML.parse(text), { command: strings });
    assert.match(text, /^command:\n {2}- sh\n {2}- -c\n {2}- berth-test\/busybox:latest\n {2}- k=v\n {2}- "echo hi: x"\n/);
  });

  it('nests mappings and lists the way a manifest file does', () => {
    const manifest = {
      apiVersion: 'berth.dev/v1',
      kind: 'App',
      metadata: { name: 'hello', labels: { 'berth.dev/team': 'data' } },
      spec: {
        env: {},
        command: [],
        resources: { memory: '256Mi' },
        retries: 2,
        kubernetes: { tolerations: [{ key: 'k', operator: 'Exists' }] },
        n: null,
        y: false,
      },
    };
    const text = yamlDocument(manifest);
    assert.deepEqual(YAML.parse(text), manifest);
    assert.equal(
      text,
      [
        'apiVersion: berth.dev/v1',
        'kind: App',
        'metadata:',
        '  name: hello',
        '  labels:',
        '    berth.dev/team: data',
        'spec:',
        '  env: {}',
        '  command: []',
        '  resources:',
        '    memory: 256Mi',
        '  retries: 2',
        '  kubernetes:',
        '    tolerations:',
        '      - key: k',
        '        operator: Exists',
        '  "n": null',
        '  "y": false',
        '',
      ].join('\n'),
    );
  });
});
