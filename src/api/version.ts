import fs from 'node:fs';
import path from 'node:path';

/** berth's version, from the package.json above this file (in src/ or in dist/src/). */
export const BERTH_VERSION: string = findVersion(__dirname);

function findVersion(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'berth' && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) return '0.0.0';
  }
}
