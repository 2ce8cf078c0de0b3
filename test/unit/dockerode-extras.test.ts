import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

describe('The Docker executor module', () => {
  it('loads dockerode without its BuildKit session (gRPC, protobuf) and ssh (ssh2) code, which stay loadable on first use', () => {
    const executor = path.join(__dirname, '../../src/executors/docker');
    const script = `
      require(${JSON.stringify(executor)});
      const loaded = (pattern) => Object.keys(require.cache).some((file) => pattern.test(file));
      const before = { grpc: loaded(/node_modules\\/@grpc\\//), protobuf: loaded(/node_modules\\/protobufjs\\//), ssh2: loaded(/node_modules\\/ssh2\\//) };
      const session = require(require.resolve('dockerode/lib/session.js', { paths: [${JSON.stringify(executor)}] }));
      console.log(JSON.stringify({ before, sessionIsFunction: typeof session === 'function' }));`;
    const seen = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
    assert.deepEqual(seen, { before: { grpc: false, protobuf: false, ssh2: false }, sessionIsFunction: true });
  });
});
