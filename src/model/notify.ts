/**
 * Notifications (`spec.notify`): webhooks an App calls when its runs end, or
 * when a scheduled run is missed. What the schema cannot say is checked here
 * (a URL that parses, a secretRef that names one thing); what is sent, and
 * when, is decided in src/controller/notifier.ts.
 */
import type { FieldProblem } from '../errors';
import type { NotifyEvent, NotifyWebhook } from './types';

/** Webhooks one App may have. */
export const MAX_WEBHOOKS = 16;
/** The longest webhook URL. */
export const MAX_WEBHOOK_URL = 2048;
/** The largest `after`: a streak longer than this is read as this long. */
export const MAX_AFTER = 100;

export const NOTIFY_EVENTS: readonly NotifyEvent[] = ['Failed', 'Succeeded', 'Recovered', 'Missed'];

/**
 * `spec.notify` as the schema checks it. Secrets are never written into the
 * spec (it is shown by every GET and committed to git): a webhook names
 * where the server finds its secret, as a Flux Provider's `secretRef` does.
 */
export const notifySchema = {
  type: 'array',
  maxItems: MAX_WEBHOOKS,
  items: {
    type: 'object',
    required: ['url', 'on'],
    additionalProperties: false,
    properties: {
      url: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_WEBHOOK_URL,
        errorMessage: `must be an http:// or https:// URL of at most ${MAX_WEBHOOK_URL} characters`,
      },
      on: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { type: 'string', enum: [...NOTIFY_EVENTS], errorMessage: `must be one of ${NOTIFY_EVENTS.join(', ')}` },
        errorMessage: { type: 'must be a list of events', minItems: 'must list at least one event', uniqueItems: 'must not list an event twice' },
      },
      after: { type: 'integer', minimum: 1, maximum: MAX_AFTER, errorMessage: `must be an integer from 1 to ${MAX_AFTER}` },
      secretRef: {
        type: 'object',
        additionalProperties: false,
        properties: {
          env: {
            type: 'string',
            pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
            maxLength: 256,
            errorMessage: 'must be the name of an environment variable of the server',
          },
          file: { type: 'string', minLength: 1, maxLength: 4096, errorMessage: 'must be the path of a file on the server' },
        },
        errorMessage: {
          type: 'must be an object such as {env: BERTH_WEBHOOK_SECRET} or {file: /run/secrets/hook}',
          additionalProperties: 'only env or file is supported',
        },
      },
      secret: {
        not: {},
        errorMessage:
          'is not accepted: a secret in the spec would be shown by every GET and kept in git; put it in an environment variable or file of the server and name it with secretRef: {env: NAME} or {file: PATH}',
      },
    },
    errorMessage: {
      type: 'must be an object such as {url: "https://hooks.example/berth", on: [Failed]}',
      required: { url: 'is required', on: 'is required' },
      additionalProperties: 'only url, on, after and secretRef are supported',
    },
  },
  errorMessage: { type: 'must be a list of webhooks', maxItems: `must have at most ${MAX_WEBHOOKS} webhooks` },
};

/**
 * What the schema cannot say about `spec.notify`: each URL parses as http or
 * https, and a secretRef names exactly one of env and file. `path` is the
 * field of the list, e.g. `spec.notify`.
 */
export function notifyProblems(webhooks: NotifyWebhook[], path: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  webhooks.forEach((webhook, i) => {
    const at = `${path}[${i}]`;
    let url: URL | undefined;
    try {
      url = new URL(webhook.url);
    } catch {
      problems.push({ field: `${at}.url`, reason: `"${webhook.url}" is not a URL; it must be an absolute http:// or https:// URL` });
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:') {
      problems.push({ field: `${at}.url`, reason: `must use http or https, not ${url.protocol.slice(0, -1)}` });
    }
    if (url && (url.username || url.password)) {
      problems.push({ field: `${at}.url`, reason: 'must not carry a user or password: the spec is shown by every GET; sign requests with secretRef instead' });
    }
    const ref = webhook.secretRef;
    if (ref && (ref.env === undefined) === (ref.file === undefined)) {
      problems.push({ field: `${at}.secretRef`, reason: 'must name exactly one of env and file' });
    }
  });
  return problems;
}
