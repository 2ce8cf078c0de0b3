/**
 * Imported for its effect, before dockerode: dockerode without the code
 * berth never runs loaded at start.
 *
 * dockerode requires its BuildKit session helper (gRPC and protobuf) and
 * docker-modem its ssh:// transport (ssh2, which compiles a WebAssembly
 * module) at the top of their files, whether or not a build session or an
 * ssh host is ever used; together they are about 10 MB of heap and 17 MB of
 * memory outside it in every berth process. berth opens no build session
 * and takes no ssh:// host (./docker-host.ts), so both modules are replaced,
 * before dockerode loads, by a function that loads the real one on its first
 * call: nothing changes but when the code is loaded.
 */
import Module from 'node:module';

/** Puts a stand-in for the module `request` (one that exports a function, which is all its callers use) in the module cache. */
function defer(request: string, paths: string[]): void {
  const file = require.resolve(request, { paths });
  if (require.cache[file]) return;
  let real: ((...args: unknown[]) => unknown) | undefined;
  const standIn = new Module(file);
  standIn.filename = file;
  standIn.loaded = true;
  standIn.exports = function deferred(this: unknown, ...args: unknown[]): unknown {
    if (!real) {
      delete require.cache[file];
      real = require(file) as (...args: unknown[]) => unknown;
    }
    return real.apply(this, args);
  };
  require.cache[file] = standIn;
}

// docker-modem is dockerode's dependency: resolve it from where dockerode would.
defer('dockerode/lib/session.js', [__dirname]);
defer('docker-modem/lib/ssh.js', [require.resolve('dockerode')]);
