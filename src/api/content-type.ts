import type { Context, Next } from 'koa';
import { UnsupportedMediaTypeError } from '../errors';

/** The media types berth reads as JSON. */
export const JSON_TYPES = ['application/json', 'application/merge-patch+json'];
/** The media types berth reads as YAML. */
export const YAML_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml'];
const WRITE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Writes speak JSON or YAML. A body of any other type is refused with 415
 * before a byte of it is read; so is a write that names another type even
 * with no body, because a web page can send `text/plain` or a form to any
 * address without asking first (a CORS "simple request"), and a body-less
 * `POST …/run/` of that kind would start a run. A write with neither a body
 * nor a Content-Type (`curl -X POST`, the seed's clients) is fine.
 */
export function contentTypeCheck() {
  return async function checkContentType(ctx: Context, next: Next): Promise<void> {
    if (!WRITE_METHODS.includes(ctx.method)) return next();
    const type = ctx.get('content-type');
    if (!type) {
      if (hasBody(ctx)) throw new UnsupportedMediaTypeError('a request body needs a Content-Type: application/json or application/yaml');
      return next();
    }
    if (!ctx.is([...JSON_TYPES, ...YAML_TYPES])) {
      throw new UnsupportedMediaTypeError(
        `unsupported Content-Type "${ctx.request.type}": send application/json or application/yaml` + (hasBody(ctx) ? '' : ', or no Content-Type with no body'),
      );
    }
    return next();
  };
}

/** Whether the request carries a body (a length above 0, or chunked). */
export function hasBody(ctx: Context): boolean {
  return ctx.request.length > 0 || ctx.get('transfer-encoding') !== '';
}
