import { ValidationError } from '../errors';
import { admitApp, type Admission } from '../model/containment';
import { API_VERSION } from '../model/types';
import { AppInput, RunInput, validateAppManifest, validateRunManifest } from '../model/validate';
import { parseYamlDocuments, YamlDocument } from '../model/yaml';
import type { DocumentError } from './report';

/** Where a declaration sits in its file. */
export interface DocumentPosition {
  document: number;
  line: number;
  column: number;
}

export type AppDeclaration = AppInput & DocumentPosition;
export type RunDeclaration = RunInput & DocumentPosition;

/**
 * What one manifest file declares. When `errors` is not empty the file must
 * not be applied at all: a file applies whole or not at all.
 */
export interface ManifestFile {
  apps: AppDeclaration[];
  runs: RunDeclaration[];
  errors: DocumentError[];
}

const KINDS = ['App', 'Run'] as const;

/**
 * Parses and validates every document of a manifest file, and with
 * `admission` checks each App against what the server allows. Each offending
 * document is reported with its kind, name, field, line and column; the
 * valid ones are still returned so callers can tell what the file meant.
 */
export function readManifestFile(text: string, admission?: Admission): ManifestFile {
  const parsed = parseYamlDocuments(text);
  const result: ManifestFile = { apps: [], runs: [], errors: [] };
  for (const problem of parsed.errors) result.errors.push({ ...problem });
  // A syntax error anywhere makes the document boundaries themselves doubtful.
  if (result.errors.length) return result;
  const seen = { App: new Set<string>(), Run: new Set<string>() };
  for (const doc of parsed.documents) {
    const declared = declaration(doc, result.errors, admission);
    if (!declared) continue;
    const names = seen[declared.kind];
    if (names.has(declared.input.name)) {
      result.errors.push({
        ...describe(doc),
        field: 'metadata.name',
        reason: `${declared.kind} "${declared.input.name}" is declared twice in this file`,
        ...doc.locate(['metadata', 'name']),
      });
      continue;
    }
    names.add(declared.input.name);
    const position = { document: doc.index, line: doc.line, column: doc.column };
    if (declared.kind === 'App') result.apps.push({ ...declared.input, ...position });
    else result.runs.push({ ...declared.input, ...position });
  }
  return result;
}

type Declared = { kind: 'App'; input: AppInput } | { kind: 'Run'; input: RunInput };

function declaration(doc: YamlDocument, errors: DocumentError[], admission?: Admission): Declared | undefined {
  const value = doc.value as Record<string, unknown>;
  const where = describe(doc);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push({ ...where, field: '(document)', reason: 'must be a mapping with apiVersion, kind, metadata and spec', line: doc.line, column: doc.column });
    return undefined;
  }
  if (value.apiVersion !== API_VERSION) {
    const reason = value.apiVersion === undefined ? 'is required' : `must be ${API_VERSION} (found ${JSON.stringify(value.apiVersion)})`;
    errors.push({ ...where, field: 'apiVersion', reason, ...(doc.locate(['apiVersion']) ?? { line: doc.line, column: doc.column }) });
    return undefined;
  }
  if (!KINDS.includes(value.kind as (typeof KINDS)[number])) {
    const reason = value.kind === undefined ? 'is required' : `must be App or Run (found ${JSON.stringify(value.kind)})`;
    errors.push({ ...where, field: 'kind', reason, ...(doc.locate(['kind']) ?? { line: doc.line, column: doc.column }) });
    return undefined;
  }
  try {
    if (value.kind === 'Run') return { kind: 'Run', input: validateRunManifest(value, doc.locate) };
    const input = validateAppManifest(value, doc.locate);
    if (admission) admitApp(input.spec, admission, doc.locate);
    return { kind: 'App', input };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    for (const problem of err.details) errors.push({ ...where, ...problem, line: problem.line ?? doc.line, column: problem.column ?? doc.column });
    return undefined;
  }
}

/** The document's index, kind and name, as far as they can be read. */
function describe(doc: YamlDocument): Pick<DocumentError, 'document' | 'kind' | 'name'> {
  const value = doc.value as { kind?: unknown; metadata?: { name?: unknown } } | null;
  const described: Pick<DocumentError, 'document' | 'kind' | 'name'> = { document: doc.index };
  if (value && typeof value === 'object') {
    if (typeof value.kind === 'string') described.kind = value.kind;
    if (value.metadata && typeof value.metadata === 'object' && typeof value.metadata.name === 'string') described.name = value.metadata.name;
  }
  return described;
}
