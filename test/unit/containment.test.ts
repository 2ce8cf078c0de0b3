/**
 * The containment policy's pure parts: what an App may declare (schema),
 * what the server's flags allow it (registries, capabilities, networks per
 * runtime), and how the Kubernetes pod spec spells the defaults.
 */

import assert from 'node:assert/strict';
import { RuntimeRefusedError } from '../../src/errors';
import { jobFor } from '../../src/executors/kubernetes/job-spec';
import { BASELINE_CAPABILITIES, parseCapabilityList } from '../../src/model/capabilities';
import {
  admitApp,
  assertLaunchAllowed,
  containmentProblems,
  DEFAULT_CONTAINMENT,
  parseDefaultNetwork,
  type ContainmentPolicy,
} from '../../src/model/containment';
import { isImageAllowed, parseRegistryList, qualifiedRepository } from '../../src/model/image-registry';
import { validateAppManifest } from '../../src/model/validate';
import { parseYamlDocuments } from '../../src/model/yaml';
import { appSpec } from '../helpers/fixtures';
import { problemsOf } from '../helpers/validation';

const policy = (changes: Partial<ContainmentPolicy> = {}): ContainmentPolicy => ({ ...DEFAULT_CONTAINMENT, ...changes });

const manifest = (spec: Record<string, unknown>) => ({
  apiVersion: 'berth.dev/v1',
  kind: 'App',
  metadata: { name: 'contained' },
  spec: { image: 'busybox', ...spec },
});

describe('image registries', () => {
  it('reads the registry and repository of a reference as Docker does', () => {
    assert.deepEqual(qualifiedRepository('busybox'), { registry: 'docker.io', repository: 'library/busybox' });
    assert.deepEqual(qualifiedRepository('busybox:1.36'), { registry: 'docker.io', repository: 'library/busybox' });
    assert.deepEqual(qualifiedRepository('team/tool:2'), { registry: 'docker.io', repository: 'team/tool' });
    assert.deepEqual(qualifiedRepository('127.0.0.1:5000/berth-test/busybox:latest'), { registry: '127.0.0.1:5000', repository: 'berth-test/busybox' });
    assert.deepEqual(qualifiedRepository('localhost/x@sha256:' + 'a'.repeat(64)), { registry: 'localhost', repository: 'x' });
    assert.deepEqual(qualifiedRepository('GHCR.io/acme/tool'), { registry: 'ghcr.io', repository: 'acme/tool' });
    assert.deepEqual(qualifiedRepository('index.docker.io/library/busybox'), { registry: 'docker.io', repository: 'library/busybox' });
  });

  it('allows an image whose registry, or registry and whole path components, are listed', () => {
    assert.equal(isImageAllowed('busybox', []), true);
    assert.equal(isImageAllowed('busybox', ['docker.io']), true);
    assert.equal(isImageAllowed('busybox', ['docker.io/library']), true);
    assert.equal(isImageAllowed('team/tool', ['docker.io/library']), false);
    assert.equal(isImageAllowed('ghcr.io/acme/tool:1', ['ghcr.io/acme']), true);
    assert.equal(isImageAllowed('ghcr.io/acme-evil/tool:1', ['ghcr.io/acme']), false);
    assert.equal(isImageAllowed('ghcr.io.evil.example/acme/tool', ['ghcr.io']), false);
    assert.equal(isImageAllowed('127.0.0.1:5000/x', ['127.0.0.1']), false);
  });

  it('reads --allowed-registries, normalising hosts, and names entries that are not registries', () => {
    assert.deepEqual(parseRegistryList(' Docker.io , ghcr.io/acme/ ,,127.0.0.1:5000'), ['docker.io', 'ghcr.io/acme', '127.0.0.1:5000']);
    assert.deepEqual(parseRegistryList('index.docker.io'), ['docker.io']);
    assert.deepEqual(parseRegistryList(''), []);
    assert.throws(() => parseRegistryList('docker.io,https://ghcr.io'), /https:\/\/ghcr\.io: not registries/);
  });
});

describe('capabilities', () => {
  it('reads --allowed-capabilities with "default" for the baseline and "none" for nothing', () => {
    assert.deepEqual(parseCapabilityList('default'), [...BASELINE_CAPABILITIES].sort());
    assert.deepEqual(parseCapabilityList('none'), []);
    assert.deepEqual(parseCapabilityList('net_bind_service, CAP_NET_ADMIN'), ['NET_ADMIN', 'NET_BIND_SERVICE']);
    assert.ok(parseCapabilityList('default,SYS_ADMIN').includes('SYS_ADMIN'));
    assert.throws(() => parseCapabilityList('NET_ADMIM,CHOWN'), /^Error: NET_ADMIM: not Linux capabilities/);
  });

  it('keeps NET_RAW, NET_ADMIN and SYS_ADMIN out of the baseline', () => {
    for (const name of ['NET_RAW', 'NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE', 'SYS_MODULE']) assert.ok(!BASELINE_CAPABILITIES.includes(name as never), name);
  });
});

describe('App spec containment fields', () => {
  it('accepts capabilities, a network and a numeric user, and reads user: 1000 as a string', () => {
    const { spec } = validateAppManifest(manifest({ capabilities: { add: ['NET_BIND_SERVICE'] }, network: 'none', user: 1000 }));
    assert.deepEqual(spec.capabilities, { add: ['NET_BIND_SERVICE'] });
    assert.equal(spec.network, 'none');
    assert.equal(spec.user, '1000');
  });

  it('names each rule a containment field breaks', () => {
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ capabilities: { add: ['CAP_SYS_ADMIN'] } }))),
      [{ field: 'spec.capabilities.add.0', reason: 'must be a Linux capability name without CAP_, such as NET_BIND_SERVICE' }],
    );
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ capabilities: { drop: ['ALL'] } }))),
      [{ field: 'spec.capabilities.drop', reason: 'only add is supported: every other capability is dropped' }],
    );
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ network: 'host' }))),
      [{ field: 'spec.network', reason: "must not be host: a container on the host's network reaches everything the host does" }],
    );
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ network: 'container:abc' }))),
      [{ field: 'spec.network', reason: 'must be none, default, or the name of a Docker network (letters, digits, "_", "." and "-")' }],
    );
    assert.deepEqual(
      problemsOf(() => validateAppManifest(manifest({ user: 'root' }))),
      [{ field: 'spec.user', reason: 'must be a numeric uid or uid:gid, such as "1000" or "1000:1000"' }],
    );
  });
});

describe('admission', () => {
  const docker = { containment: DEFAULT_CONTAINMENT, defaultRuntime: 'docker' } as const;

  it('refuses a capability the server does not allow, naming it and the flag', () => {
    assert.deepEqual(
      problemsOf(() => admitApp(appSpec({ capabilities: { add: ['NET_BIND_SERVICE', 'NET_ADMIN', 'SYS_ADMIN'] } }), docker)),
      [
        {
          field: 'spec.capabilities.add',
          reason: `NET_ADMIN, SYS_ADMIN are not allowed on this server (allowed: ${BASELINE_CAPABILITIES.join(', ')}); an operator can allow more with --allowed-capabilities default,NET_ADMIN,SYS_ADMIN`,
        },
      ],
    );
    admitApp(appSpec({ capabilities: { add: ['NET_ADMIN'] } }), { ...docker, containment: policy({ allowedCapabilities: ['NET_ADMIN'] }) });
  });

  it('refuses an image outside --allowed-registries, naming the image and the list', () => {
    const narrow = { ...docker, containment: policy({ allowedRegistries: ['127.0.0.1:5000', 'ghcr.io/acme'] }) };
    assert.deepEqual(
      problemsOf(() => admitApp(appSpec({ image: 'busybox:1.36' }), narrow)),
      [
        {
          field: 'spec.image',
          reason: '"busybox:1.36" (docker.io/library/busybox) is not from a registry this server allows: 127.0.0.1:5000, ghcr.io/acme (--allowed-registries)',
        },
      ],
    );
    admitApp(appSpec({ image: 'ghcr.io/acme/tool:1' }), narrow);
  });

  it('refuses a network other than default on the kubernetes runtime, the App’s own or the server’s default', () => {
    const reason = '"none" cannot be set per pod on the kubernetes runtime: leave it out (the pod network) and isolate pods with a NetworkPolicy';
    assert.deepEqual(
      problemsOf(() => admitApp(appSpec({ runtime: 'kubernetes', network: 'none' }), docker)),
      [{ field: 'spec.network', reason }],
    );
    assert.deepEqual(
      problemsOf(() => admitApp(appSpec({ network: 'none' }), { ...docker, defaultRuntime: 'kubernetes' })),
      [{ field: 'spec.network', reason }],
    );
    admitApp(appSpec({ runtime: 'kubernetes', network: 'default' }), docker);
    admitApp(appSpec({ network: 'none' }), docker);
  });

  it('places a refusal in a YAML file by line and column', () => {
    const [doc] = parseYamlDocuments(
      'apiVersion: berth.dev/v1\nkind: App\nmetadata: {name: x}\nspec:\n  image: busybox\n  capabilities:\n    add: [SYS_ADMIN]\n',
    ).documents;
    const { spec } = validateAppManifest(doc.value, doc.locate);
    const [problem] = problemsOf(() => admitApp(spec, docker, doc.locate));
    assert.deepEqual([problem.field, problem.line, problem.column], ['spec.capabilities.add', 7, 10]);
  });

  it('reads --default-network, refusing host and default', () => {
    assert.equal(parseDefaultNetwork('none'), 'none');
    assert.equal(parseDefaultNetwork('batch-net'), 'batch-net');
    assert.throws(() => parseDefaultNetwork('host'), /must not be host/);
    assert.throws(() => parseDefaultNetwork('default'), /must be bridge, none, or the name of a Docker network/);
  });

  it('refuses a launch on kubernetes with a network a pod cannot have, as the Kubernetes executor does', () => {
    assert.throws(
      () => assertLaunchAllowed('berth-run-x-1', appSpec({ network: 'none' }), DEFAULT_CONTAINMENT, 'kubernetes'),
      (error: Error) =>
        error instanceof RuntimeRefusedError &&
        error.message ===
          'cannot launch berth-run-x-1: spec.network: "none" cannot be set per pod on the kubernetes runtime: leave it out (the pod network) and isolate pods with a NetworkPolicy',
    );
    assertLaunchAllowed('berth-run-x-1', appSpec({ network: 'none' }), DEFAULT_CONTAINMENT, 'docker');
  });

  it('finds nothing to refuse in an ordinary App under the defaults', () => {
    assert.deepEqual(containmentProblems(appSpec(), DEFAULT_CONTAINMENT, 'docker'), []);
    assert.deepEqual(containmentProblems(appSpec(), DEFAULT_CONTAINMENT, 'kubernetes'), []);
  });
});

describe('Kubernetes pod containment', () => {
  const launch = (spec = appSpec()) => ({ name: 'berth-run-x-1', runUid: 'x', runName: 'r', appName: 'a', attempt: 1, template: spec });
  const containerOf = (spec = appSpec(), containment = DEFAULT_CONTAINMENT) =>
    jobFor(launch(spec), { deadlineBackstopSeconds: 300, containment }).spec!.template.spec!.containers[0];

  it('drops every capability, forbids privilege escalation and uses the runtime’s seccomp profile', () => {
    assert.deepEqual(containerOf().securityContext, {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('adds the App’s capabilities and runs as its user', () => {
    const context = containerOf(appSpec({ capabilities: { add: ['NET_BIND_SERVICE'] }, user: '1000:2000' })).securityContext;
    assert.deepEqual(context?.capabilities, { drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    assert.equal(context?.runAsUser, 1000);
    assert.equal(context?.runAsGroup, 2000);
    assert.equal(containerOf(appSpec({ user: '1000' })).securityContext?.runAsGroup, undefined);
  });

  it('lets processes gain privileges only when the server allows it', () => {
    assert.equal(containerOf(appSpec(), policy({ allowPrivilegeEscalation: true })).securityContext?.allowPrivilegeEscalation, true);
  });

  it('caps an App without resources at the defaults without reserving them, and keeps the App’s own as requests and limits', () => {
    assert.deepEqual(containerOf().resources, { requests: { memory: '0', cpu: '0' }, limits: { memory: '1Gi', cpu: '1' } });
    assert.deepEqual(containerOf(appSpec({ resources: { memory: '256Mi' } })).resources, {
      requests: { memory: '256Mi', cpu: '0' },
      limits: { memory: '256Mi', cpu: '1' },
    });
    assert.equal(containerOf(appSpec(), policy({ defaultResources: {} })).resources, undefined);
  });
});
