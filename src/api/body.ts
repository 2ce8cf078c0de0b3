import bodyParser from '@koa/bodyparser';
import type { Context, Next } from 'koa';
import { MalformedBodyError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors';
import { parseYamlBody } from '../model/yaml';
import { hasBody, JSON_TYPES, YAML_TYPES } from './content-type';

/** Bodies above this are refused with 413. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

const BODY_METHODS = ['POST', 'PUT', 'PATCH'];

/**
 * Reads request bodies of JSON or YAML, at most 1 MiB; only those types get
 * this far (./content-type.ts). Malformed JSON is a 400 (from the error
 * middleware), malformed YAML a 400 naming line and column.
 */
export function bodyMiddleware() {
  const parse = bodyParser({
    enableTypes: ['json', 'text'],
    // Only the JSON and YAML types get this far (see content-type.ts); YAML is read as text and parsed below.
    extendTypes: { json: JSON_TYPES, text: YAML_TYPES },
    jsonLimit: BODY_LIMIT_BYTES,
    textLimit: BODY_LIMIT_BYTES,
    jsonStrict: false,
  });
  return async function readBody(ctx: Context, next: Next): Promise<void> {
    if (!BODY_METHODS.includes(ctx.method) || !hasBody(ctx)) return next();
    try {
      await parse(ctx, async () => undefined);
    } catch (err) {
      throw parserError(err, ctx.get('content-encoding'));
    }
    if (typeof ctx.request.body === 'string' && ctx.is(YAML_TYPES)) {
      ctx.request.body = ctx.request.body.trim() === '' ? undefined : parseYamlBody(ctx.request.body);
    }
    return next();
  };
}

/** The parsed request body, or undefined when the request had none. */
export function requestBody(ctx: Context): unknown {
  return hasBody(ctx) ? ctx.request.body : undefined;
}

/**
 * co-body and raw-body throw errors carrying `status` and `type`; they become
 * berth's errors here, so the answer has berth's shape and words. zlib's
 * errors, from a body that does not decode as its Content-Encoding says,
 * carry no status but are the client's all the same.
 */
function parserError(err: unknown, encoding: string): unknown {
  if (isZlibError(err)) return new MalformedBodyError(`request body is not valid ${encoding} (Content-Encoding): ${err.message}`);
  const http = err as { status?: number; type?: string; message?: string };
  switch (http?.status) {
    case 400:
      return new MalformedBodyError(
        err instanceof SyntaxError || http.type === 'entity.parse.failed' ? `malformed JSON: ${http.message}` : `malformed body: ${http.message}`,
      );
    case 413:
      return new PayloadTooLargeError('request body is larger than the limit of 1 MiB');
    case 415:
      return new UnsupportedMediaTypeError(http.message ?? 'unsupported body encoding');
    default:
      return err;
  }
}

/** An error of node:zlib decoding: its `code` is zlib's (`Z_DATA_ERROR`) or brotli's (`ERR__ERROR_FORMAT_…`). */
function isZlibError(err: unknown): err is Error {
  const code = (err as { code?: unknown })?.code;
  return err instanceof Error && typeof code === 'string' && /^(Z_|ERR__ERROR_)/.test(code) && (err as { status?: unknown }).status === undefined;
}
