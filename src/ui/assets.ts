import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** Where `npm run build:ui` writes the bundled page (dist/src/ui/assets, beside this module once compiled). */
export const ASSETS_DIR = path.join(__dirname, 'assets');

/** The files the build makes, and their content types. */
const FILES: Record<string, string> = {
  'page.js': 'text/javascript; charset=utf-8',
  'page.css': 'text/css; charset=utf-8',
};

/** One file of the page, held in memory: it is small, and served on every first visit. */
export interface Asset {
  body: Buffer;
  /** The same bytes gzipped, when that is smaller. */
  gzip?: Buffer;
  type: string;
  /** A digest of the content: the ETag, and the `?v=` that makes a URL cacheable forever. */
  version: string;
}

/** The page: its HTML, and the built files by name. */
export interface PageAssets {
  index: Asset;
  files: Map<string, Asset>;
}

/**
 * Reads the built page from `dir` once and makes its HTML, which names each
 * file by version. A missing build is an Error naming the command that makes
 * it, so the API still serves without the page.
 */
export function loadAssets(dir = ASSETS_DIR): PageAssets | Error {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(FILES)) {
    const file = path.join(dir, name);
    let body: Buffer;
    try {
      body = fs.readFileSync(file);
    } catch {
      return new Error(`the web page is not built (${file} is missing): run "npm run build"`);
    }
    assets.set(name, asset(body, type));
  }
  const html = indexHtml(assets.get('page.js')!.version, assets.get('page.css')!.version);
  return { index: asset(Buffer.from(html), 'text/html; charset=utf-8'), files: assets };
}

function asset(body: Buffer, type: string): Asset {
  const gzip = gzipSync(body, { level: 9 });
  return {
    body,
    gzip: gzip.length < body.length ? gzip : undefined,
    type,
    version: createHash('sha256').update(body).digest('base64url').slice(0, 16),
  };
}

/** Relative asset URLs, so the page also works behind a proxy that serves berth under a path prefix. */
function indexHtml(jsVersion: string, cssVersion: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>berth</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/page.css?v=${cssVersion}">
<script type="module" src="assets/page.js?v=${jsVersion}"></script>
</head>
<body>
<div id="root"></div>
<noscript>berth's page needs JavaScript. The API is described at <a href="../openapi.json">/openapi.json</a>.</noscript>
</body>
</html>
`;
}
