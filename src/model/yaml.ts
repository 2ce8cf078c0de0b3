import { isNode, LineCounter, parseAllDocuments, Document } from 'yaml';
import { FieldProblem, MalformedBodyError } from '../errors';
import type { Locator } from './validate';

/** One document of a (possibly multi-document) YAML text. */
export interface YamlDocument {
  /** 0-based position among the non-empty documents of the text. */
  index: number;
  value: unknown;
  /** Where the document starts (1-based). */
  line: number;
  column: number;
  /** Finds a field's position in this document, for error messages. */
  locate: Locator;
}

export interface ParsedYaml {
  documents: YamlDocument[];
  /** Syntax errors with line and column; when any exist, `documents` must not be applied. */
  errors: FieldProblem[];
}

/** Parses every document of a YAML text, keeping positions so errors can name line and column. */
export function parseYamlDocuments(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true }) as Document[] | { errors?: unknown };
  const documents: YamlDocument[] = [];
  const errors: FieldProblem[] = [];
  if (!Array.isArray(docs)) return { documents, errors: [{ field: '(document)', reason: 'is not YAML' }] };
  docs.forEach((doc) => {
    for (const err of doc.errors) {
      const pos = lineCounter.linePos(err.pos[0]);
      errors.push({ field: '(yaml)', reason: err.message.split('\n')[0], line: pos.line, column: pos.col });
    }
    if (doc.errors.length || doc.contents === null) return;
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    // An empty document (only comments, or a stray `---`) declares nothing.
    if (value === null || value === undefined) return;
    const start = lineCounter.linePos(doc.contents.range?.[0] ?? 0);
    const locate: Locator = (path) => {
      // Walk up from the field to the nearest node that exists (a missing field points at its parent).
      for (let depth = path.length; depth >= 0; depth--) {
        const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
        if (isNode(node) && node.range) {
          const pos = lineCounter.linePos(node.range[0]);
          return { line: pos.line, column: pos.col };
        }
      }
      return undefined;
    };
    documents.push({ index: documents.length, value, line: start.line, column: start.col, locate });
  });
  return { documents, errors };
}

/** Parses a YAML request body holding exactly one document; a syntax error is a 400 naming line and column. */
export function parseYamlBody(text: string): unknown {
  const { documents, errors } = parseYamlDocuments(text);
  if (errors.length) {
    const e = errors[0];
    throw new MalformedBodyError(`malformed YAML at line ${e.line}, column ${e.column}: ${e.reason}`, errors);
  }
  if (documents.length !== 1) throw new MalformedBodyError(`expected one YAML document, found ${documents.length}`);
  return documents[0].value;
}
