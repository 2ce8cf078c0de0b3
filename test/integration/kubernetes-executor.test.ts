/**
 * The executor contract against KubernetesExecutor on the real test cluster
 * (.ci/k8s), run as berth's ServiceAccount bound to exactly the shipped Role,
 * twice: reading the API server on every call, as a berth that is not
 * watching does, and reading the informer caches, as `berth serve` does
 * while its controller watches.
 */

import { executorContract } from '../contract/executor.contract';
import { KubernetesExecutor, type KubernetesExecutorOptions } from '../../src/executors/kubernetes';
import { TEST_IMAGE } from '../helpers/fixtures';
import { testCluster, testNamespace, unreachableKubeconfig, type TestNamespace } from '../helpers/kube';

describe('KubernetesExecutor', function () {
  this.timeout(120_000);

  let namespace: TestNamespace;
  const unreachable = unreachableKubeconfig();

  before(async () => {
    namespace = await testNamespace(await testCluster());
  });

  after(async () => {
    await namespace?.remove();
  });

  const options = (): KubernetesExecutorOptions => ({
    kubeconfig: namespace.kubeconfig,
    // Short enough for the contract's 30 s deadlines; the default (60 s) is the production value.
    imagePullGraceMs: 3_000,
    watchInitialBackoffMs: 100,
    watchMaxBackoffMs: 1_000,
  });

  const contractOptions = {
    image: TEST_IMAGE,
    // Built by .ci/provision from the same rootfs, with a CMD of its own.
    defaultCommandImage: { image: 'berth-test/busybox-cmd:latest', output: 'hello from the image\n' },
    // The loopback registry answers "manifest unknown": a real pull that fails.
    missingImage: '127.0.0.1:5000/berth-test/busybox:no-such-tag',
    makeUnreachable: () => new KubernetesExecutor({ kubeconfig: unreachable.kubeconfig, requestTimeoutMs: 2_000 }),
    unreachableAddress: unreachable.server,
    timeoutMs: 30_000,
  };

  describe('reading the API server', () => {
    executorContract('KubernetesExecutor', () => new KubernetesExecutor(options()), contractOptions);
  });

  describe('reading its informer caches', () => {
    let watching: AbortController[] = [];

    afterEach(() => {
      for (const controller of watching) controller.abort();
      watching = [];
    });

    executorContract(
      'KubernetesExecutor, watching',
      () => {
        const executor = new KubernetesExecutor(options());
        const controller = new AbortController();
        watching.push(controller);
        void executor.watch(() => undefined, controller.signal);
        return executor;
      },
      contractOptions,
    );
  });
});
