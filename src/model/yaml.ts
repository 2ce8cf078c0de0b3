import { isNode, LineCounter, parseAllDocuments, Document } from 'yaml';
import { FieldProblem, MalformedBodyError, PayloadTooLargeError } from '../errors';
import { jsonSizeWithin, MAX_DOCUMENT_BYTES, MAX_YAML_ALIASES } from './limits';
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
  /** Some document is over a size limit (its aliases expand too far): for a request body, a 413. */
  tooLarge: boolean;
}

/** Field of the problems about a whole document: too large, or aliases used too often. */
const DOCUMENT = '(document)';

/**
 * Parses every document of a YAML text, keeping positions so errors can name
 * line and column. Aliases are expanded, within bounds: a document may use
 * them at most MAX_YAML_ALIASES times and may come to at most
 * MAX_DOCUMENT_BYTES as JSON once expanded, so a small text cannot become a
 * huge object (the "billion laughs").
 */
export function parseYamlDocuments(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true }) as Document[] | { errors?: unknown };
  const documents: YamlDocument[] = [];
  const errors: FieldProblem[] = [];
  let tooLarge = false;
  if (!Array.isArray(docs)) return { documents, errors: [{ field: DOCUMENT, reason: 'is not YAML' }], tooLarge };
  docs.forEach((doc) => {
    for (const err of doc.errors) {
      const pos = lineCounter.linePos(err.pos[0]);
      errors.push({ field: '(yaml)', reason: err.message.split('\n')[0], line: pos.line, column: pos.col });
    }
    if (doc.errors.length || doc.contents === null) return;
    const start = lineCounter.linePos(doc.contents.range?.[0] ?? 0);
    const at = { line: start.line, column: start.col };
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (err) {
      // The yaml library says why with a ReferenceError: an alias before its anchor, or too many expansions.
      if (!(err instanceof ReferenceError)) throw err;
      const excessive = /excessive alias count/i.test(err.message);
      tooLarge ||= excessive;
      const reason = excessive ? `uses aliases too often: at most ${MAX_YAML_ALIASES} alias expansions are allowed` : err.message;
      errors.push({ field: excessive ? DOCUMENT : '(yaml)', reason, ...at });
      return;
    }
    if (jsonSizeWithin(value, MAX_DOCUMENT_BYTES) > MAX_DOCUMENT_BYTES) {
      tooLarge = true;
      errors.push({ field: DOCUMENT, reason: `is larger than ${MAX_DOCUMENT_BYTES} bytes (2 MiB) as JSON with its aliases expanded`, ...at });
      return;
    }
    // An empty document (only comments, or a stray `---`) declares nothing.
    if (value === null || value === undefined) return;
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
  return { documents, errors, tooLarge };
}

/**
 * Parses a YAML request body holding exactly one document; a syntax error is
 * a 400 naming line and column, a document over a size limit a 413.
 */
export function parseYamlBody(text: string): unknown {
  const { documents, errors, tooLarge } = parseYamlDocuments(text);
  if (tooLarge) {
    const e = errors.find((problem) => problem.field === DOCUMENT) ?? errors[0];
    throw new PayloadTooLargeError(`YAML body refused: the document ${e.reason}`, errors);
  }
  if (errors.length) {
    const e = errors[0];
    throw new MalformedBodyError(`malformed YAML at line ${e.line}, column ${e.column}: ${e.reason}`, errors);
  }
  if (documents.length !== 1) throw new MalformedBodyError(`expected one YAML document, found ${documents.length}`);
  return documents[0].value;
}
