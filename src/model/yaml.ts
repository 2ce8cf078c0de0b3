import { CST, isCollection, isNode, Lexer, LineCounter, parseAllDocuments, visit, Document } from 'yaml';
import { FieldProblem, MalformedBodyError, PayloadTooLargeError } from '../errors';
import { jsonSizeWithin, MAX_DOCUMENT_BYTES, MAX_YAML_ALIASES, MAX_YAML_NESTING } from './limits';
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

/** The offset of the first key in `doc` that is a sequence or a mapping, if any. */
function firstCollectionKey(doc: Document): number | undefined {
  let found: number | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (!isCollection(pair.key)) return undefined;
      found = pair.key.range?.[0] ?? 0;
      return visit.BREAK;
    },
  });
  return found;
}

/**
 * Parses every document of a YAML text, keeping positions so errors can name
 * line and column. Aliases are expanded, within bounds: a document may use
 * them at most MAX_YAML_ALIASES times and may come to at most
 * MAX_DOCUMENT_BYTES as JSON once expanded, so a small text cannot become a
 * huge object (the "billion laughs"). A text whose collections nest more
 * than MAX_YAML_NESTING deep is refused before it is parsed at all.
 */
export function parseYamlDocuments(text: string): ParsedYaml {
  const tooDeep = nestingBeyond(text, MAX_YAML_NESTING);
  if (tooDeep) {
    return { documents: [], errors: [{ field: '(yaml)', reason: `nests collections more than ${MAX_YAML_NESTING} deep`, ...tooDeep }], tooLarge: false };
  }
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
    // A sequence or mapping as a key has no JSON form: the yaml library would stringify it with a warning on stderr.
    const collectionKey = firstCollectionKey(doc);
    if (collectionKey !== undefined) {
      const pos = lineCounter.linePos(collectionKey);
      errors.push({ field: '(yaml)', reason: 'a mapping key must be a scalar, not a sequence or a mapping', line: pos.line, column: pos.col });
      return;
    }
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
    const size = jsonSizeWithin(value, MAX_DOCUMENT_BYTES);
    if (size > MAX_DOCUMENT_BYTES) {
      tooLarge = true;
      const reason =
        size === Infinity
          ? 'refers to itself: an alias inside its own anchor makes a document without end'
          : `is larger than ${MAX_DOCUMENT_BYTES} bytes (2 MiB) as JSON with its aliases expanded`;
      errors.push({ field: DOCUMENT, reason, ...at });
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

/** Lexer tokens that mark a position without being text of the source. */
const MARKERS = new Set(['byte-order-mark', 'doc-mode', 'flow-error-end', 'scalar']);
/** Tokens after which a line has not yet begun a node. */
const BLANK = new Set(['space', 'comment', 'newline', 'doc-start', 'doc-end', 'directive-line']);

/**
 * Where the text's collections first nest deeper than `max`, or undefined.
 * The yaml library composes nested collections by recursion, and its time
 * grows with the depth: a 1 MiB body of `[[[[…` or of ever-deeper `- `
 * lines took it seconds and, once its stack had overflowed, could abort the
 * process. This reads the lexer's tokens only, stopping at the first level
 * too many: flow collections count each bracket; block collections count
 * each deeper indentation (and each `- ` or `? ` of a compact one on the
 * same line). Quoted and block scalars are single tokens, so brackets in text
 * do not count.
 */
function nestingBeyond(text: string, max: number): { line: number; column: number } | undefined {
  let line = 1;
  let column = 0;
  let lineStart = true;
  let flow = 0;
  const blocks: number[] = [];
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type && MARKERS.has(type)) continue;
    const at = { line, column: column + 1 };
    const lastBreak = token.lastIndexOf('\n');
    if (lastBreak >= 0) {
      for (const char of token) if (char === '\n') line++;
      column = token.length - lastBreak - 1;
    } else {
      column += token.length;
    }
    if (type === 'flow-seq-start' || type === 'flow-map-start') {
      flow++;
    } else if (type === 'flow-seq-end' || type === 'flow-map-end') {
      flow = Math.max(0, flow - 1);
    } else if (flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind' || (lineStart && !BLANK.has(type ?? '')))) {
      while (blocks.length && blocks[blocks.length - 1] >= at.column) blocks.pop();
      blocks.push(at.column);
    }
    if (blocks.length + flow > max) return at;
    // A line has begun a node once anything but blanks is on it; a token ending in a line break starts a fresh line.
    if (lastBreak >= 0) lineStart = /^[ \t]*$/.test(token.slice(lastBreak + 1));
    else if (!BLANK.has(type ?? '')) lineStart = false;
  }
  return undefined;
}
