/**
 * JSON Schemas of what berth accepts at its edges. Each rule carries a
 * message that names it, so a user reading `spec.retries: must be an
 * integer from 0 to 100` knows what to change.
 */

import { LINUX_CAPABILITIES } from './capabilities';
import { MAX_ARGUMENT_BYTES, MAX_ENV_ENTRIES } from './limits';
import { notifySchema } from './notify';
import { retryPolicySchema } from './retry-policy';
import { MAX_PARAMETER_PATTERN_LENGTH, MAX_PARAMETER_VALUE_LENGTH, MAX_PARAMETERS } from './parameters';

export const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const ENV_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';
// The reference grammar of the Docker distribution project, simplified: [registry[:port]/]path[:tag][@digest].
export const IMAGE_REF =
  '^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?/)?' +
  '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*' +
  '(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$';
const LABEL_KEY = '^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
const LABEL_VALUE = '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$';

const name = {
  type: 'string',
  minLength: 1,
  maxLength: 63,
  pattern: DNS_LABEL,
  // The API reads an all-digit reference as a numeric id, so such a name could never be addressed.
  not: { pattern: '^[0-9]+$' },
  errorMessage: {
    not: 'must not be only digits (the API reads those as an id)',
    type: 'must be a string',
    minLength: 'must not be empty',
    maxLength: 'must be at most 63 characters',
    pattern: 'must be a DNS-1123 label: lower-case letters, digits and "-", starting and ending with a letter or digit',
  },
};

const labels = {
  type: 'object',
  propertyNames: {
    pattern: LABEL_KEY,
    maxLength: 316,
    errorMessage: 'label keys must be [prefix/]name: a name of up to 63 letters, digits, "-", "_" or "."',
  },
  additionalProperties: {
    type: 'string',
    pattern: LABEL_VALUE,
    errorMessage: 'label values must be strings of up to 63 letters, digits, "-", "_" or ".", starting and ending alphanumeric',
  },
  errorMessage: { type: 'must be a map of string keys to string values' },
};

const env = {
  type: 'object',
  maxProperties: MAX_ENV_ENTRIES,
  propertyNames: {
    pattern: ENV_NAME,
    maxLength: 256,
    errorMessage: 'environment variable names must be letters, digits and "_", not starting with a digit',
  },
  additionalProperties: {
    type: 'string',
    maxLength: MAX_ARGUMENT_BYTES,
    errorMessage: 'must be a string (quote numbers and booleans in YAML: "8080") of at most 131072 characters',
  },
  errorMessage: { type: 'must be a map of variable names to string values', maxProperties: `must have at most ${MAX_ENV_ENTRIES} variables` },
};

const command = {
  anyOf: [
    // How many words, and how long each, is checked once the string form is split (validate.ts).
    { type: 'array', items: { type: 'string' } },
    { type: 'string', maxLength: MAX_ARGUMENT_BYTES },
  ],
  errorMessage: 'must be a list of strings, or a string split into words as a POSIX shell would',
};

const integer = (min: number, max: number) => ({
  type: 'integer',
  minimum: min,
  maximum: max,
  errorMessage: `must be an integer from ${min} to ${max}`,
});

const oneOf = (values: string[]) => ({ type: 'string', enum: values, errorMessage: `must be one of ${values.join(', ')}` });

const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const objectName = {
  type: 'string',
  maxLength: 253,
  pattern: DNS_SUBDOMAIN,
  errorMessage: 'must be a Kubernetes object name: lower-case letters, digits, "-" and ".", at most 253 characters',
};

/** What only a cluster has: the pod's identity, placement and pull credentials. */
const kubernetesPodOptions = {
  type: 'object',
  additionalProperties: false,
  properties: {
    serviceAccountName: objectName,
    nodeSelector: labels,
    tolerations: {
      type: 'array',
      maxItems: 32,
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          key: { type: 'string', maxLength: 316, pattern: LABEL_KEY, errorMessage: 'must be a label key' },
          operator: oneOf(['Exists', 'Equal']),
          value: { type: 'string', pattern: LABEL_VALUE, errorMessage: 'must be a label value' },
          effect: oneOf(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
          tolerationSeconds: integer(0, 31_536_000),
        },
        errorMessage: { type: 'must be an object', additionalProperties: 'only key, operator, value, effect and tolerationSeconds are supported' },
      },
      errorMessage: { type: 'must be a list of tolerations', maxItems: 'must have at most 32 items' },
    },
    imagePullSecrets: {
      type: 'array',
      maxItems: 16,
      items: objectName,
      errorMessage: { type: 'must be a list of Secret names', maxItems: 'must have at most 16 items' },
    },
    labels,
    annotations: {
      type: 'object',
      propertyNames: { pattern: LABEL_KEY, maxLength: 316, errorMessage: 'annotation keys must be [prefix/]name, as label keys' },
      additionalProperties: { type: 'string', maxLength: 65536, errorMessage: 'must be a string' },
      errorMessage: { type: 'must be a map of string keys to string values' },
    },
  },
  errorMessage: {
    type: 'must be an object',
    additionalProperties: 'only serviceAccountName, nodeSelector, tolerations, imagePullSecrets, labels and annotations are supported',
  },
};

/** Linux capability names (./capabilities.ts), as Docker's --cap-add and a pod's securityContext spell them. */
const capabilities = {
  type: 'object',
  additionalProperties: false,
  properties: {
    add: {
      type: 'array',
      maxItems: LINUX_CAPABILITIES.length,
      uniqueItems: true,
      items: {
        type: 'string',
        enum: [...LINUX_CAPABILITIES],
        errorMessage: 'must be a Linux capability name without CAP_, such as NET_BIND_SERVICE',
      },
      errorMessage: { type: 'must be a list of capability names', uniqueItems: 'must not name a capability twice' },
    },
  },
  errorMessage: {
    type: 'must be an object such as {add: [NET_BIND_SERVICE]}',
    additionalProperties: 'only add is supported: every other capability is dropped',
  },
};

const network = {
  type: 'string',
  maxLength: 128,
  pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$',
  // The host's own network namespace is no container network: it reaches everything the host does.
  not: { enum: ['host'] },
  errorMessage: {
    type: 'must be a string',
    maxLength: 'must be at most 128 characters',
    pattern: 'must be none, default, or the name of a Docker network (letters, digits, "_", "." and "-")',
    not: "must not be host: a container on the host's network reaches everything the host does",
  },
};

/** Numeric only: a name would mean something else in each image, and a pod's runAsUser takes numbers. */
const user = {
  type: ['string', 'integer'],
  pattern: '^[0-9]{1,9}(:[0-9]{1,9})?$',
  minimum: 0,
  maximum: 999_999_999,
  errorMessage: 'must be a numeric uid or uid:gid, such as "1000" or "1000:1000"',
};

const parameterValue = {
  type: 'string',
  maxLength: MAX_PARAMETER_VALUE_LENGTH,
  errorMessage: `must be a string (quote numbers and booleans in YAML: "3") of at most ${MAX_PARAMETER_VALUE_LENGTH} characters`,
};

/** `spec.parameters`: what the schema can say; uniqueness and patterns that compile are checked in ./parameters.ts. */
const parameters = {
  type: 'array',
  maxItems: MAX_PARAMETERS,
  items: {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      name: {
        type: 'string',
        pattern: ENV_NAME,
        maxLength: 256,
        errorMessage: 'must be an environment variable name: letters, digits and "_", not starting with a digit',
      },
      description: { type: 'string', maxLength: 1024, errorMessage: 'must be a string of at most 1024 characters' },
      required: { type: 'boolean', errorMessage: 'must be true or false' },
      default: parameterValue,
      pattern: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_PARAMETER_PATTERN_LENGTH,
        errorMessage: `must be a regular expression of 1 to ${MAX_PARAMETER_PATTERN_LENGTH} characters`,
      },
      enum: {
        type: 'array',
        minItems: 1,
        maxItems: 256,
        uniqueItems: true,
        items: parameterValue,
        errorMessage: {
          type: 'must be a list of the allowed values',
          minItems: 'must list at least one value',
          maxItems: 'must list at most 256 values',
          uniqueItems: 'must not list a value twice',
        },
      },
    },
    not: { required: ['pattern', 'enum'] },
    errorMessage: {
      type: 'must be an object such as {name: TARGET, required: true}',
      required: { name: 'is required' },
      additionalProperties: 'only name, description, required, default, pattern and enum are supported',
      not: 'must have a pattern or an enum, not both',
    },
  },
  errorMessage: { type: 'must be a list of parameters', maxItems: `must have at most ${MAX_PARAMETERS} parameters` },
};

/** A run request's parameter values, by name; the names are checked against the App's declarations. */
const parameterValues = {
  type: 'object',
  maxProperties: MAX_PARAMETERS,
  additionalProperties: parameterValue,
  errorMessage: { type: 'must be a map of parameter names to string values', maxProperties: `must have at most ${MAX_PARAMETERS} values` },
};

/** The cron expression and the zone are read by croner in ./schedule.ts, which names what is wrong with them. */
const schedule = {
  type: 'object',
  required: ['cron'],
  additionalProperties: false,
  properties: {
    cron: { type: 'string', minLength: 1, maxLength: 128, errorMessage: 'must be a cron expression of 5 fields or a macro such as @hourly' },
    timeZone: { type: 'string', minLength: 1, maxLength: 64, errorMessage: 'must be an IANA time zone name such as Europe/Berlin' },
    suspend: { type: 'boolean', errorMessage: 'must be true or false' },
    startingDeadlineSeconds: integer(1, 31_536_000),
    missedRunPolicy: oneOf(['Skip', 'RunOnce', 'RunAll']),
    maxMissedRuns: integer(1, 1000),
    jitterSeconds: integer(0, 86_400),
  },
  errorMessage: {
    type: 'must be an object such as {cron: "0 * * * *"}',
    required: { cron: 'is required' },
    additionalProperties: 'only cron, timeZone, suspend, startingDeadlineSeconds, missedRunPolicy, maxMissedRuns and jitterSeconds are supported',
  },
};

export const appSpecSchema = {
  type: 'object',
  required: ['image'],
  additionalProperties: false,
  properties: {
    image: {
      type: 'string',
      maxLength: 512,
      pattern: IMAGE_REF,
      errorMessage: 'must be an image reference such as busybox:1.36 or registry.example:5000/team/tool@sha256:…',
    },
    command,
    env,
    runtime: oneOf(['docker', 'kubernetes']),
    timeoutSeconds: integer(1, 2_592_000),
    retries: integer(0, 100),
    concurrencyPolicy: oneOf(['Allow', 'Forbid', 'Replace']),
    imagePullPolicy: oneOf(['IfNotPresent', 'Always', 'Never']),
    historyLimit: integer(0, 100_000),
    kubernetes: kubernetesPodOptions,
    capabilities,
    network,
    user,
    parameters,
    schedule,
    notify: notifySchema,
    // Retry rules: see ./retry-policy.ts.
    retryPolicy: retryPolicySchema,
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: {
        // `quantity` is a keyword of ./validate.ts backed by ./quantity.ts, so every reader agrees on the grammar.
        cpu: { type: ['string', 'number'], quantity: 'cpu', errorMessage: { type: 'must be a CPU quantity such as "0.5", "2" or "500m"' } },
        memory: {
          type: ['string', 'integer'],
          quantity: 'memory',
          errorMessage: { type: 'must be a memory quantity such as "256Mi", "1Gi" or a number of bytes' },
        },
      },
      errorMessage: { additionalProperties: 'only cpu and memory are supported' },
    },
  },
  errorMessage: {
    type: 'must be an object',
    required: { image: 'is required' },
  },
};

const metadata = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name,
    labels,
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
    // Read-only fields a client may send back from a GET: resourceVersion is a precondition, the rest are ignored.
    uid: { type: 'string' },
    generation: { type: 'integer' },
    resourceVersion: { type: ['string', 'integer'] },
    creationTimestamp: { type: 'string' },
  },
  errorMessage: { type: 'must be an object', required: { name: 'is required' } },
};

const envelope = (kind: string, spec: object) => ({
  type: 'object',
  required: ['kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'berth.dev/v1', errorMessage: 'must be berth.dev/v1' },
    kind: { const: kind, errorMessage: `must be ${kind}` },
    metadata,
    spec,
    // Written only by the controller; accepted on input so a GET answer can be sent back, and ignored.
    status: { type: 'object' },
  },
  errorMessage: { type: 'must be an object', required: { metadata: 'is required', spec: 'is required', kind: 'is required' } },
});

export const appManifestSchema = envelope('App', appSpecSchema);

export const runOverridesProperties = { env, command, parameters: parameterValues };

export const runManifestSchema = envelope('Run', {
  type: 'object',
  required: ['app'],
  additionalProperties: false,
  properties: { app: name, ...runOverridesProperties },
  errorMessage: { type: 'must be an object', required: { app: 'is required' } },
});

/** The body of `POST /apps/{id}/run/`: optional overrides, an optional run name. */
export const runRequestSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { name: { ...name, maxLength: 253 }, ...runOverridesProperties, envs: env },
  errorMessage: { type: 'must be a JSON object' },
};

/** DjDockerManager's body: `{name, image, command, envs}`. */
export const seedAppSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    id: { type: 'integer' },
    name,
    image: appSpecSchema.properties.image,
    command: {
      anyOf: [...command.anyOf, { type: 'null' }],
      errorMessage: command.errorMessage,
    },
    envs: {
      anyOf: [env, { type: 'array', items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*=' } }, { type: 'null' }],
      errorMessage: 'must be a map of variable names to string values, or a list of "NAME=value" strings',
    },
  },
  errorMessage: { type: 'must be a JSON object' },
};
