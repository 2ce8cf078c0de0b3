/**
 * Arbitrary HTTP requests for berth's API, from the plainly wrong (unknown
 * methods, paths with odd characters, hostile headers) to the well-formed
 * request with a hostile body that every guard lets through to a handler.
 */
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import { TEST_IMAGE } from '../helpers/fixtures';
import { hostileYaml, manifestValue } from './values';
import { ALLOWED_HOST, FUZZ_TOKEN, KNOWN, type RawRequest } from './target';

/** A path segment naming an App or a run: known names, ids, and names no route expects. */
const reference = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(KNOWN.apiApp, KNOWN.fileApp, KNOWN.run, '1', '2', '3', 'fuzz-new') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '0',
      '-1',
      '1.5',
      '1e3',
      '0x10',
      '99999999999999999999',
      '9007199254740993',
      '%00',
      '%2F',
      '%2e%2e',
      '..',
      '.',
      '%',
      '%zz',
      '%C0%AF',
      '%E2%80%AE',
      '%F0%9F%92%A9',
      'é',
      '💩',
      'a'.repeat(300),
      '%20',
      '+',
      '*',
      '~',
      ':',
      '@',
      ';x',
      'a%0d%0ab',
    ),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }).map(encodeURIComponent) },
  // Raw: characters a client should have escaped, all but the line breaks and spaces that end a request line.
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 12 }).map((s) => s.replace(/[\r\n ?#/]/g, '')) },
);

const route = fc.oneof(
  fc.constantFrom(
    '/healthz',
    '/readyz',
    '/metrics',
    '/openapi.json',
    '/apps',
    '/runs',
    '/events',
    '/sources',
    '/',
    '',
    '//apps//',
    '/apps/./x',
    '/APPS',
    '/apps/..',
    '/index.html',
  ),
  reference.map((a) => `/apps/${a}`),
  fc.tuple(reference).map(([a]) => `/apps/${a}/run`),
  fc.tuple(reference, reference).map(([a, r]) => `/apps/${a}/run/${r}`),
  fc.tuple(reference, reference).map(([a, r]) => `/apps/${a}/run/${r}/cancel`),
  fc.tuple(reference, reference).map(([a, r]) => `/apps/${a}/run/${r}/logs`),
  reference.map((r) => `/runs/${r}`),
  fc.array(reference, { minLength: 1, maxLength: 5 }).map((segments) => `/${segments.join('/')}`),
);

const QUERY_KEYS = ['limit', 'offset', 'labelSelector', 'phase', 'app', 'kind', 'follow', 'tail', 'watch', '__proto__', 'constructor', ''];
const queryValue = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '1',
    '-1',
    '1000',
    '1001',
    '1e3',
    'NaN',
    'Infinity',
    '99999999999999999999999',
    '9007199254740993',
    'true',
    'false',
    'Pending',
    'Pending,Running',
    'Pending,Bogus',
    ',',
    'team=fuzz',
    'team==fuzz',
    'a!=b',
    'x in (a)',
    'team=fuzz,',
    '=',
    'App',
    'Run',
    'Source',
    KNOWN.apiApp,
    '%zz',
    '%00',
    '%',
    '%E2%80%AE',
    'a'.repeat(2000),
  ),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
  fc.string({ unit: 'binary-ascii', maxLength: 10 }).map((s) => s.replace(/[\r\n #]/g, '')),
);
const query = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom('?', '?&&', '?==', '?limit', '?limit=1&limit=2', '?a[b]=c', '?limit[]=1') },
  {
    weight: 3,
    arbitrary: fc
      .array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.string({ maxLength: 6 }).map(encodeURIComponent)), queryValue), {
        minLength: 1,
        maxLength: 4,
      })
      .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
  },
);

export const target = fc.tuple(route, fc.boolean(), query).map(([path, slash, q]) => `${path}${slash && !path.endsWith('/') ? '/' : ''}${q}`);

const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE') },
  { weight: 1, arbitrary: fc.constantFrom('HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'get', 'FOO', 'M-SEARCH', 'PURGE', 'QUERY') },
);

const JSON_TYPE = fc.constantFrom('application/json', 'application/merge-patch+json', 'application/json; charset=utf-8', 'APPLICATION/JSON');
const YAML_TYPE = fc.constantFrom('application/yaml', 'text/yaml', 'application/x-yaml', 'application/yaml; charset=utf-8');
const contentType = fc.oneof(
  JSON_TYPE,
  YAML_TYPE,
  fc.constantFrom(
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/json; charset=utf-16le',
    'application/json; charset=bogus',
    'application/yaml; charset=latin1',
    'application/json, text/plain',
    'application/',
    'json',
    ';',
    '*/*',
    'application/json; charset="utf-8"; x=',
    'application/octet-stream',
    'text/yaml; charset=utf-32',
  ),
  fc.string({ unit: 'binary-ascii', maxLength: 30 }).map(headerSafe),
);

/** Just over the 1 MiB body limit. */
const BIG = 1024 * 1024 + 1;

/** One body of each kind the API reads: seed apps, manifests, run requests, patches, YAML, and what none of them is. */
const bodyText = fc.oneof(
  { weight: 4, arbitrary: manifestValue.map((value) => JSON.stringify(value)) },
  { weight: 2, arbitrary: manifestValue.map((value) => stringify(value)) },
  { weight: 2, arbitrary: hostileYaml },
  { weight: 1, arbitrary: fc.jsonValue().map((value) => JSON.stringify(value)) },
  { weight: 1, arbitrary: manifestValue.map((value) => JSON.stringify(value)).chain((json) => fc.nat(json.length).map((cut) => json.slice(0, cut))) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      'null',
      '"x"',
      '[]',
      '{}',
      '1',
      '{"__proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"x":1}}}',
      '\ufeff{}',
      '{"name":"a","name":"b"}',
      '{"image":"' + TEST_IMAGE + '","name":"' + KNOWN.fileApp + '"}',
      '{"a":1e999}',
      '[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]',
      '['.repeat(5000) + ']'.repeat(5000),
      '{"a":'.repeat(3000) + '1' + '}'.repeat(3000),
    ),
  },
);
const body = fc.oneof(
  { weight: 12, arbitrary: bodyText.map((text) => Buffer.from(text, 'utf8')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
  { weight: 1, arbitrary: fc.constantFrom(Buffer.alloc(BIG, 0x20), Buffer.from(`{"name":"big","image":"${TEST_IMAGE}","envs":{"A":"${'x'.repeat(BIG)}"}}`)) },
);

const headerValue = fc.string({ unit: 'binary-ascii', maxLength: 40 }).map(headerSafe);

/** Headers of a request from anywhere: each one right, wrong, odd or missing. */
function hostileHeaders(port: number) {
  const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 3 });
  return fc.record({
    host: fc.option(
      fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(`127.0.0.1:${port}`, `localhost:${port}`, ALLOWED_HOST, `[::1]:${port}`) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            'evil.example',
            '',
            '127.0.0.1.',
            'LOCALHOST.',
            'a:b:c',
            '[::1',
            ']',
            ':',
            'x.localhost',
            `127.0.0.1:${port}, evil.example`,
          ),
        },
        { weight: 1, arbitrary: headerValue },
      ),
      { nil: undefined, freq: 10 },
    ),
    origin: optional(
      fc.oneof(fc.constantFrom(`http://127.0.0.1:${port}`, 'http://evil.example', 'null', 'file://', 'http://[::1', `https://127.0.0.1:${port}`), headerValue),
    ),
    authorization: fc.option(
      fc.oneof(
        { weight: 6, arbitrary: fc.constant(`Bearer ${FUZZ_TOKEN}`) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            'Bearer',
            'Bearer ',
            'Bearer wrong',
            `bearer ${FUZZ_TOKEN}`,
            `Bearer  ${FUZZ_TOKEN} `,
            'Basic Zm9vOmJhcg==',
            `Bearer ${FUZZ_TOKEN}x`,
          ),
        },
        { weight: 1, arbitrary: headerValue },
      ),
      { nil: undefined, freq: 8 },
    ),
    contentType: optional(contentType),
    contentEncoding: fc.option(fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'zstd', 'bogus', 'gzip, gzip'), { nil: undefined, freq: 8 }),
    gzipBody: fc.boolean(),
    extra: fc.array(
      fc.tuple(
        fc.constantFrom(
          'Idempotency-Key',
          'If-Match',
          'Accept',
          'Accept-Encoding',
          'X-Forwarded-For',
          'X-Forwarded-Host',
          'X-Forwarded-Proto',
          'Expect',
          'Range',
          'Cookie',
          'Last-Event-ID',
        ),
        fc.oneof(fc.constantFrom('"1"', '*', 'W/"1"', '1', '', 'gzip', '100-continue', 'bytes=0-1', 'x'.repeat(300)), headerValue),
      ),
      { maxLength: 3 },
    ),
  });
}

/** Any request: method, target, headers and body each drawn on its own. */
export function hostileRequest(port: number): fc.Arbitrary<RawRequest> {
  return fc
    .record({ method, target, headers: hostileHeaders(port), body: fc.option(body, { nil: undefined, freq: 3 }), chunked: fc.boolean() })
    .map(({ method, target, headers, body, chunked }) => {
      const list: [string, string][] = [];
      if (headers.host !== undefined) list.push(['Host', headers.host]);
      if (headers.origin !== undefined) list.push(['Origin', headers.origin]);
      if (headers.authorization !== undefined) list.push(['Authorization', headers.authorization]);
      if (headers.contentType !== undefined) list.push(['Content-Type', headers.contentType]);
      let payload = body ?? Buffer.alloc(0);
      if (headers.contentEncoding !== undefined) {
        list.push(['Content-Encoding', headers.contentEncoding]);
        if (headers.contentEncoding === 'gzip' && headers.gzipBody) payload = gzipSync(payload);
      }
      list.push(...headers.extra);
      return { method, target, headers: list, body: payload, chunked: chunked && payload.length > 0 };
    });
}

/**
 * A request every guard lets through (a served Host, no Origin, the token,
 * JSON or YAML as it says) to a write route, with a hostile body: what the
 * handlers behind the guards make of it.
 */
export function handlerRequest(port: number): fc.Arbitrary<RawRequest> {
  const writes = fc.oneof(
    fc.constantFrom(
      'POST /apps/',
      'POST /apps',
      `POST /apps/${KNOWN.apiApp}/run/`,
      `POST /apps/${KNOWN.apiApp}/run/${KNOWN.run}/cancel/`,
      'POST /apps/fuzz-new/run/',
    ),
    fc.constantFrom('PUT', 'PATCH').chain((m) => fc.constantFrom(KNOWN.apiApp, KNOWN.fileApp, '1', 'fuzz-new').map((a) => `${m} /apps/${a}/`)),
  );
  const payload: fc.Arbitrary<[string, string]> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.tuple(
        JSON_TYPE,
        manifestValue.map((v) => JSON.stringify(v)),
      ),
    },
    {
      weight: 2,
      arbitrary: fc.tuple(
        YAML_TYPE,
        manifestValue.map((v) => stringify(v)),
      ),
    },
    { weight: 2, arbitrary: fc.tuple(YAML_TYPE, hostileYaml) },
    { weight: 1, arbitrary: fc.tuple(fc.oneof(JSON_TYPE, YAML_TYPE), bodyText) },
  );
  return fc
    .record({
      write: writes,
      payload,
      idempotencyKey: fc.option(fc.oneof(fc.constantFrom('k1', 'k2', 'x'.repeat(256)), headerValue), { nil: undefined, freq: 4 }),
    })
    .map(({ write, payload: [type, text], idempotencyKey }) => {
      const [verb, path] = write.split(' ');
      const headers: [string, string][] = [
        ['Host', `127.0.0.1:${port}`],
        ['Authorization', `Bearer ${FUZZ_TOKEN}`],
        ['Content-Type', type],
      ];
      if (idempotencyKey !== undefined) headers.push(['Idempotency-Key', idempotencyKey]);
      return { method: verb, target: path, headers, body: Buffer.from(text, 'utf8'), chunked: false };
    });
}

/** A header value as it can go on the wire: no line breaks (those would end the header, not fuzz it). */
function headerSafe(value: string): string {
  return value.replace(/[\r\n]/g, '');
}
