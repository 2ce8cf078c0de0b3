import { appManifestSchema, runRequestSchema, seedAppSchema } from '../model/schema';
import { NotifyEvent, RunPhase, RunReason } from '../model/types';
import { NotificationState } from '../store/notifications';

/**
 * The OpenAPI 3.1 description of berth's API, served at `/openapi.json`.
 * Request schemas are the same JSON Schemas the API validates with (see
 * src/model/schema.ts), so the document cannot drift from what is enforced.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'berth',
      version,
      description:
        'A declarative controller for containerised batch work. Every path is served with and without a trailing slash; ' +
        "`{app}` is an App's numeric id or its name, `{run}` a Run's id or name.",
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    tags: [{ name: 'apps' }, { name: 'runs' }, { name: 'watch' }, { name: 'operations' }],
    paths: {
      '/apps/': {
        post: op('apps', 'Create an App from the seed body or a manifest (JSON or YAML)', {
          parameters: [dryRun],
          body: { oneOf: [ref('SeedApp'), ref('AppManifest')] },
          responses: {
            201: json('The App; `Location` names it', ref('App'), { Location: header('Where the App is read') }),
            200: json('With `dryRun`: the App as it would be created; nothing is written', { type: 'object' }),
            409: error('An App with this name exists (whether made through the API or by a file)'),
            ...bodyErrors,
          },
        }),
        get: op('apps', 'List Apps, oldest first', {
          parameters: [...pageParameters, query('labelSelector', 'Equality selector: `team=data,tier=batch`'), ...partialParameters],
          responses: {
            200: json('The Apps (only the asked-for fields with `fields` or `view=summary`)', { type: 'array', items: ref('App') }, totalHeader),
            400: error('Unknown field or view'),
            422: error('Bad query'),
          },
        }),
      },
      '/apps/{app}/': {
        parameters: [path('app')],
        get: op('apps', 'Read an App', {
          responses: { 200: json('The App; `ETag` is its resourceVersion', ref('App'), etagHeader), 404: error('No such App') },
        }),
        put: op('apps', 'Replace an App: a whole manifest, or the seed body whose missing fields keep their values', {
          parameters: [ifMatch, dryRun],
          body: { oneOf: [ref('SeedApp'), ref('AppManifest')] },
          responses: { 200: json('The App', ref('App'), etagHeader), ...writeErrors },
        }),
        patch: op('apps', 'Change an App with a JSON merge patch (RFC 7386) of its manifest, or with seed fields', {
          parameters: [ifMatch, dryRun],
          body: { type: 'object' },
          bodyTypes: ['application/merge-patch+json', 'application/json', 'application/yaml'],
          responses: { 200: json('The App', ref('App'), etagHeader), ...writeErrors },
        }),
        delete: op('apps', 'Delete an App and its runs (active runs are stopped)', {
          parameters: [ifMatch],
          responses: { 204: { description: 'Deleted' }, 404: error('No such App'), 409: writeErrors[409] },
        }),
      },
      '/apps/{app}/run/': {
        parameters: [path('app')],
        post: op('runs', 'Ask for a run of the App; it is recorded as Pending and carried out by the controller', {
          parameters: [{ name: 'Idempotency-Key', in: 'header', schema: { type: 'string', maxLength: 255 }, description: 'The same key returns the same run' }],
          body: ref('RunRequest'),
          optionalBody: true,
          responses: {
            202: json('The new Run; `Location` names it', ref('Run'), { Location: header('Where the Run is read') }),
            200: json('The Run an earlier request with this Idempotency-Key made', ref('Run')),
            404: error('No such App'),
            409: error('The App has concurrencyPolicy Forbid and a run is active, or the run name is taken'),
            429: error('Too many runs Pending, of this App or in all; `Retry-After` says when to ask again'),
            ...bodyErrors,
          },
        }),
        get: op('runs', "The App's runs, newest first", {
          parameters: [...pageParameters, phaseParameter, ...partialParameters],
          responses: {
            200: json('The Runs (only the asked-for fields with `fields` or `view=summary`)', { type: 'array', items: ref('Run') }, totalHeader),
            400: error('Unknown field or view'),
            404: error('No such App'),
          },
        }),
      },
      '/apps/{app}/notifications/': {
        parameters: [path('app')],
        get: op('notifications', "The App's webhook notifications (spec.notify), newest first, each with every delivery attempt", {
          parameters: [...pageParameters],
          responses: {
            200: json('The notifications', { type: 'array', items: ref('Notification') }, totalHeader),
            404: error('No such App'),
            422: error('Bad query'),
          },
        }),
      },
      '/apps/{app}/run/{run}/': {
        parameters: [path('app'), path('run')],
        get: op('runs', 'Read a run', { responses: { 200: json('The Run', ref('Run')), 404: error('No such App or Run') } }),
      },
      '/apps/{app}/run/{run}/cancel/': {
        parameters: [path('app'), path('run')],
        post: op('runs', 'Cancel a Pending or Running run', {
          responses: { 202: json('The Run, marked for cancellation', ref('Run')), 404: error('No such App or Run'), 409: error('The run has finished') },
        }),
      },
      '/apps/{app}/run/{run}/logs/': {
        parameters: [path('app'), path('run')],
        get: op('runs', "The run's output (stdout and stderr), kept after its container is gone", {
          parameters: [query('tail', 'Only the last N lines', { type: 'integer', minimum: 0 }), query('follow', 'Stream live output until the run ends (`1`)')],
          responses: {
            200: { description: 'The output', content: { 'text/plain': { schema: { type: 'string' } } } },
            404: error('No such App or Run'),
            503: error('Following: as many followed logs are open as the server allows; `Retry-After`'),
          },
        }),
      },
      '/runs/': {
        get: op('runs', 'All runs, newest first', {
          parameters: [...pageParameters, phaseParameter, query('app', 'Only the runs of this App (id or name)'), ...partialParameters],
          responses: {
            200: json('The Runs (only the asked-for fields with `fields` or `view=summary`)', { type: 'array', items: ref('Run') }, totalHeader),
            400: error('Unknown field or view'),
            422: error('Bad query'),
          },
        }),
      },
      '/runs/{run}/': {
        parameters: [path('run')],
        get: op('runs', 'Read a run by id or name', { responses: { 200: json('The Run', ref('Run')), 404: error('No such Run') } }),
      },
      '/events/': {
        get: op('watch', 'Server-Sent Events of App and Run changes: `event: ADDED|MODIFIED|DELETED`, `data:` the object', {
          parameters: [
            query('kind', "App, Run, or Source (the folder's sync of each file, as event: SYNC)", { type: 'string', enum: ['App', 'Run', 'Source'] }),
            query('app', 'Only this App and its runs'),
          ],
          responses: {
            200: { description: 'The event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
            503: error('As many event streams are open as the server allows; `Retry-After`'),
          },
        }),
      },
      '/sources/': {
        get: op('operations', 'Sync status of the apps folder, file by file', {
          responses: { 200: json('The report', { type: 'object' }), 404: error('No apps folder is watched') },
        }),
      },
      '/healthz': {
        get: { tags: ['operations'], summary: 'Liveness', security: [], responses: { 200: json('Up', { type: 'object' }) } },
      },
      '/readyz': {
        get: op('operations', 'Readiness: the store and the other checks', {
          responses: { 200: json('Ready', { type: 'object' }), 503: error('Not ready; `details` names each failing check') },
        }),
      },
      '/metrics': {
        get: op('operations', 'Prometheus metrics', {
          responses: { 200: { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
        }),
      },
      '/openapi.json': {
        get: op('operations', 'This document', { responses: { 200: json('OpenAPI 3.1', { type: 'object' }) } }),
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Needed when berth runs with --token' } },
      schemas: {
        SeedApp: plain(seedAppSchema),
        AppManifest: plain(appManifestSchema),
        RunRequest: plain(runRequestSchema),
        ObjectMeta: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            labels: { type: 'object', additionalProperties: { type: 'string' } },
            uid: { type: 'string' },
            generation: { type: 'integer' },
            resourceVersion: { type: 'string' },
            creationTimestamp: { type: 'string', format: 'date-time' },
          },
        },
        App: {
          type: 'object',
          description: "DjDockerManager's flat fields (id, name, image, envs, command) beside the object's own",
          properties: {
            id: { type: 'integer' },
            name: { type: 'string' },
            image: { type: 'string' },
            envs: { type: 'object', additionalProperties: { type: 'string' } },
            command: { type: 'array', items: { type: 'string' } },
            apiVersion: { const: 'berth.dev/v1' },
            kind: { const: 'App' },
            metadata: ref('ObjectMeta'),
            spec: plain(appManifestSchema.properties.spec),
            status: {
              type: 'object',
              properties: {
                source: { type: 'string', description: '`api`, or `file:<path in the apps folder>`' },
                syncState: { enum: ['Synced', 'Error'] },
                syncMessage: { type: 'string' },
                schedule: {
                  type: 'object',
                  description: 'For Apps with spec.schedule: the latest due time handled and the next one (before jitter)',
                  properties: { lastScheduleTime: { type: 'string', format: 'date-time' }, nextScheduleTime: { type: 'string', format: 'date-time' } },
                },
              },
            },
          },
        },
        Run: {
          type: 'object',
          properties: {
            id: { type: 'integer' },
            app: { type: 'string' },
            apiVersion: { const: 'berth.dev/v1' },
            kind: { const: 'Run' },
            metadata: ref('ObjectMeta'),
            spec: {
              type: 'object',
              properties: {
                app: { type: 'string' },
                env: { type: 'object', additionalProperties: { type: 'string' } },
                command: { type: 'array', items: { type: 'string' } },
                template: plain(appManifestSchema.properties.spec),
              },
            },
            status: {
              type: 'object',
              properties: {
                phase: { enum: Object.values(RunPhase) },
                reason: { enum: Object.values(RunReason) },
                message: { type: 'string' },
                exitCode: { type: 'integer' },
                attempts: { type: 'integer' },
                startedAt: { type: 'string', format: 'date-time' },
                finishedAt: { type: 'string', format: 'date-time' },
                containerName: { type: 'string' },
                cancelRequested: { type: 'object' },
              },
            },
          },
        },
        Notification: {
          type: 'object',
          description: 'A webhook notification and its delivery attempts (see docs/notifications.md)',
          properties: {
            id: { type: 'integer', description: 'Also sent as X-Berth-Delivery' },
            app: { type: 'string' },
            event: { enum: Object.values(NotifyEvent) },
            run: { type: 'string', description: 'The run that ended; absent for Missed' },
            webhook: { type: 'integer', description: 'Its index in spec.notify' },
            url: { type: 'string' },
            state: { enum: Object.values(NotificationState) },
            attempts: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  attempt: { type: 'integer' },
                  at: { type: 'string', format: 'date-time' },
                  durationMs: { type: 'integer' },
                  status: { type: 'integer', description: "The receiver's HTTP status, when it answered" },
                  error: { type: 'string' },
                },
              },
            },
            nextAttemptAt: { type: 'string', format: 'date-time' },
            createdAt: { type: 'string', format: 'date-time' },
            updatedAt: { type: 'string', format: 'date-time' },
            payload: { type: 'object', description: 'The JSON body sent' },
          },
        },
        Error: {
          type: 'object',
          required: ['error', 'message', 'details'],
          properties: {
            error: { type: 'string', description: 'Invalid, MalformedBody, NotFound, Conflict, Unauthorized, MethodNotAllowed, …' },
            message: { type: 'string' },
            details: {
              type: 'array',
              items: {
                type: 'object',
                properties: { field: { type: 'string' }, reason: { type: 'string' }, line: { type: 'integer' }, column: { type: 'integer' } },
              },
            },
          },
        },
      },
    },
  };
}

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const header = (description: string): Schema => ({ description, schema: { type: 'string' } });
const path = (name: string): Schema => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const query = (name: string, description: string, schema: Schema = { type: 'string' }): Schema => ({ name, in: 'query', description, schema });
const json = (description: string, schema: Schema, headers?: Schema): Schema => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema } },
});
const error = (description: string): Schema => json(description, ref('Error'));

const dryRun = query('dryRun', 'With 1: make every check of the write and answer the App as it would be, writing nothing', {
  type: 'string',
  enum: ['1', '0'],
});
const pageParameters = [
  query('limit', 'At most this many items (`X-Total-Count` says how many there are)', { type: 'integer', minimum: 0, maximum: 1000, default: 100 }),
  query('offset', 'Skip this many items', { type: 'integer', minimum: 0 }),
];
/** `?fields=` and `?view=` on the lists (src/api/fields.ts). */
const partialParameters = [
  query('fields', 'Comma-separated dotted paths to answer, e.g. `metadata.name,status.phase`; the rest is left out. An unknown path is 400', {
    type: 'string',
  }),
  query(
    'view',
    '`summary`: id, name, labels, resourceVersion and image (Apps) or phase, exit code, reason and times (Runs); `full` (the default): the whole object',
    { type: 'string', enum: ['full', 'summary'] },
  ),
];
const phaseParameter = query('phase', 'Comma-separated run phases: ' + Object.values(RunPhase).join(', '));
const totalHeader = { 'X-Total-Count': header('How many items match, before paging') };
const etagHeader = { ETag: header('The resourceVersion, quoted; send it back in If-Match') };
const ifMatch = { name: 'If-Match', in: 'header', schema: { type: 'string' }, description: 'Write only if the resourceVersion is still this' };
const bodyErrors = {
  400: error('Malformed JSON or YAML'),
  413: error('Body over 1 MiB'),
  415: error('Body neither JSON nor YAML'),
  422: error('Invalid; `details` names each field and rule'),
};
const writeErrors = {
  404: error('No such App'),
  409: error('Stale resourceVersion, or the App is managed by a file in the apps folder'),
  ...bodyErrors,
};

function op(
  tag: string,
  summary: string,
  {
    parameters,
    body,
    bodyTypes,
    optionalBody,
    responses,
  }: {
    parameters?: Schema[];
    body?: Schema;
    bodyTypes?: string[];
    optionalBody?: boolean;
    responses: Record<string | number, unknown>;
  },
): Schema {
  const types = bodyTypes ?? ['application/json', 'application/yaml'];
  return {
    tags: [tag],
    summary,
    ...(parameters ? { parameters } : {}),
    ...(body ? { requestBody: { required: !optionalBody, content: Object.fromEntries(types.map((t) => [t, { schema: body }])) } } : {}),
    responses: { ...responses, 401: error('Missing or wrong bearer token (when berth runs with --token)') },
  };
}

/** A validation schema without ajv-errors' `errorMessage` keyword, which OpenAPI readers do not know. */
function plain(schema: unknown): Schema {
  return strip(schema) as Schema;
}

function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([key]) => key !== 'errorMessage')
        .map(([key, v]) => [key, strip(v)]),
    );
  }
  return value;
}
