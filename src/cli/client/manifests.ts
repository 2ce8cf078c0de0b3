import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from './exit';
import { yamlLibrary } from './yaml';

/** One App or Run document from a file (or stdin), ready to send. */
export interface Manifest {
  kind: 'App' | 'Run';
  name: string;
  /** `file.yaml` or `file.yaml#2` (the document's 1-based position when the file has several), or `-` for stdin. */
  origin: string;
  /** The document as written, less the fields only the server writes. */
  body: Record<string, unknown>;
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;
/** Fields of `metadata` the server writes; a document exported with `get -o yaml` carries them, and resourceVersion would be read as a precondition. */
const SERVER_METADATA = ['uid', 'generation', 'resourceVersion', 'creationTimestamp'];

/**
 * Reads `-f` arguments: files, folders (recursively: `*.yaml`, `*.yml`,
 * `*.json`, skipping dotfiles and dot-folders as the apps folder does) and
 * `-` for stdin. Multi-document YAML, and `kind: List` as `get -o yaml` writes
 * it. Anything that does not read, parse or look like an App or a Run is a
 * UsageError naming the file, line and column: then nothing is sent.
 */
export async function readManifests(sources: string[]): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const source of sources) {
    if (source === '-') {
      manifests.push(...parseManifests(await readStdin(), '-'));
      continue;
    }
    for (const file of manifestFiles(source)) manifests.push(...parseManifests(readFile(file), file));
  }
  const seen = new Map<string, string>();
  for (const m of manifests) {
    const key = `${m.kind}/${m.name}`;
    if (seen.has(key)) throw new UsageError(`${m.origin}: ${m.kind.toLowerCase()} "${m.name}" is also declared in ${seen.get(key)}`);
    seen.set(key, m.origin);
  }
  return manifests;
}

function manifestFiles(source: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(source);
  } catch (err) {
    throw new UsageError(`cannot read ${source}: ${describeFsError(err)}`);
  }
  if (!stat.isDirectory()) return [source];
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      const isDir = entry.isDirectory() || (entry.isSymbolicLink() && fs.statSync(full, { throwIfNoEntry: false })?.isDirectory());
      if (isDir) walk(full);
      else if (MANIFEST_FILE.test(entry.name)) files.push(full);
    }
  };
  walk(source);
  return files;
}

function readFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${describeFsError(err)}`);
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('-f - reads manifests from stdin, but stdin is a terminal; pipe them in');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The documents of one file's text (JSON is YAML too). */
export function parseManifests(text: string, file: string): Manifest[] {
  const { parseAllDocuments, LineCounter } = yamlLibrary();
  const lines = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  if (!Array.isArray(documents)) return [];
  const nonEmpty = documents.filter((d) => d.contents !== null || d.errors.length);
  const manifests: Manifest[] = [];
  nonEmpty.forEach((doc, i) => {
    const origin = nonEmpty.length > 1 ? `${file}#${i + 1}` : file;
    if (doc.errors.length) {
      const err = doc.errors[0];
      const { line, col } = lines.linePos(err.pos[0]);
      throw new UsageError(`${file}:${line}:${col}: ${err.message.split('\n')[0]}`);
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (isObject(value) && value.kind === 'List') {
      if (!Array.isArray(value.items)) throw new UsageError(`${origin}: a List needs items`);
      for (const [j, item] of value.items.entries()) manifests.push(toManifest(item, `${origin} items[${j}]`));
    } else {
      manifests.push(toManifest(value, origin));
    }
  });
  return manifests;
}

function toManifest(value: unknown, origin: string): Manifest {
  if (!isObject(value)) throw new UsageError(`${origin}: a document must be a map with apiVersion, kind, metadata and spec`);
  const { kind, metadata } = value;
  if (kind !== 'App' && kind !== 'Run') {
    throw new UsageError(`${origin}: kind ${kind === undefined ? 'is missing' : `"${String(kind)}" is not App or Run`}`);
  }
  if (!isObject(metadata) || typeof metadata.name !== 'string' || metadata.name === '') {
    throw new UsageError(`${origin}: metadata.name is required`);
  }
  const { status: _status, ...body } = value;
  const cleanMetadata = Object.fromEntries(Object.entries(metadata).filter(([key]) => !SERVER_METADATA.includes(key)));
  return { kind, name: metadata.name, origin, body: { ...body, metadata: cleanMetadata } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
}
