import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import ajvErrors from 'ajv-errors';
import { FieldProblem, ValidationError } from '../errors';
import { splitCommand } from './command';
import { checkSpecSize, MAX_ARGUMENT_BYTES, MAX_COMMAND_ITEMS } from './limits';
import { notifyProblems } from './notify';
import { parameterDeclarationProblems } from './parameters';
import { parseCpuNanos, parseMemoryBytes } from './quantity';
import { onOOMProblems } from './retry-policy';
import { Schedule, SCHEDULE_DEFAULTS } from './schedule';
import { appManifestSchema, runManifestSchema, runRequestSchema, seedAppSchema } from './schema';
import { App, AppSpec, RunOverrides, ScheduleSpec } from './types';

/** Finds where a field is in the source text (YAML), for messages with line and column. */
export type Locator = (path: (string | number)[]) => { line: number; column: number } | undefined;

/** A validated App declaration, ready for the store. */
export interface AppInput {
  name: string;
  labels: Record<string, string>;
  spec: AppSpec;
  /** A precondition, when the client sent the resourceVersion it read. */
  resourceVersion?: string;
}

/** A validated `kind: Run` declaration. */
export interface RunInput {
  name: string;
  labels: Record<string, string>;
  app: string;
  overrides: RunOverrides;
}

export interface RunRequest {
  name?: string;
  overrides: RunOverrides;
}

const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true });
ajvErrors(ajv);

/** Docker refuses memory limits below 6 MiB. */
const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

// Resource quantities are checked by the same parsers the executors use, with their messages.
ajv.addKeyword({
  keyword: 'quantity',
  type: ['string', 'number'],
  errors: true,
  validate: function validateQuantity(kind: 'cpu' | 'memory', data: string | number): boolean {
    const self = validateQuantity as unknown as { errors: Partial<ErrorObject>[] };
    try {
      if (kind === 'cpu') parseCpuNanos(String(data));
      else if (parseMemoryBytes(String(data)) < MIN_MEMORY_BYTES) throw new Error('must be at least 6Mi (the smallest limit Docker accepts)');
      return true;
    } catch (err) {
      // The parsers say `<kind> quantity "<value>" must be …`: keep the rule.
      self.errors = [{ keyword: 'quantity', message: (err as Error).message.replace(/^\w+ quantity "[^"]*" /, ''), params: {} }];
      return false;
    }
  },
});
const validators = {
  appManifest: ajv.compile(appManifestSchema),
  runManifest: ajv.compile(runManifestSchema),
  runRequest: ajv.compile(runRequestSchema),
  seedApp: ajv.compile(seedAppSchema),
};

/** True when a body is in manifest form (has any of apiVersion, kind, metadata, spec) rather than the seed's flat form. */
export function isManifest(body: unknown): boolean {
  return isObject(body) && ['apiVersion', 'kind', 'metadata', 'spec'].some((k) => k in body);
}

/** Validates an App manifest and fills in defaults. Throws ValidationError naming every offending field. */
export function validateAppManifest(value: unknown, at?: Locator): AppInput {
  check(validators.appManifest, value, 'App', at);
  const manifest = value as { metadata: { name: string; labels?: Record<string, string>; resourceVersion?: string | number }; spec: Record<string, unknown> };
  const spec = normalizeSpec(manifest.spec, at, ['spec']);
  if (spec.schedule) spec.schedule = normalizeSchedule(spec.schedule, manifest.metadata.name, at);
  checkSpecSize(spec, 'spec', (field) => at?.(field.split('.')) ?? {});
  return {
    name: manifest.metadata.name,
    labels: manifest.metadata.labels ?? {},
    spec,
    resourceVersion: manifest.metadata.resourceVersion === undefined ? undefined : String(manifest.metadata.resourceVersion),
  };
}

/**
 * Reads a `POST /apps/` or `PUT /apps/{id}/` body: DjDockerManager's flat
 * `{name, image, command, envs}` or a manifest. With `current`, a seed body
 * is partial (fields not given keep their values), as the seed's PUT was.
 */
export function appFromBody(body: unknown, current?: App): AppInput {
  if (isManifest(body)) {
    const { id: _id, name, image, envs, command, ...manifest } = body as Record<string, unknown>;
    const input = validateAppManifest(manifest);
    // A client may send back a whole GET answer, flat fields included; they must agree with the manifest.
    const problems: FieldProblem[] = [];
    if (name !== undefined && name !== input.name) problems.push({ field: 'name', reason: `conflicts with metadata.name "${input.name}"` });
    if (image !== undefined && image !== input.spec.image) problems.push({ field: 'image', reason: `conflicts with spec.image "${input.spec.image}"` });
    if (problems.length) throw ValidationError.fromProblems(problems, 'App');
    void envs;
    void command;
    return input;
  }
  check(validators.seedApp, body, 'App');
  const seed = body as { name?: string; image?: string; command?: string | string[] | null; envs?: Record<string, string> | string[] | null };
  const problems: FieldProblem[] = [];
  if (!current && seed.name === undefined) problems.push({ field: 'name', reason: 'is required' });
  if (!current && seed.image === undefined) problems.push({ field: 'image', reason: 'is required' });
  if (problems.length) throw ValidationError.fromProblems(problems, 'App');
  const base: AppSpec = current?.spec ?? defaultSpec(seed.image as string);
  const spec: AppSpec = {
    ...base,
    image: seed.image ?? base.image,
    command: seed.command === undefined ? base.command : normalizeCommand(seed.command ?? [], 'command'),
    env: seed.envs === undefined ? base.env : envsFromSeed(seed.envs),
  };
  checkSpecSize(spec, 'spec');
  return { name: seed.name ?? (current as App).metadata.name, labels: current?.metadata.labels ?? {}, spec };
}

/** Validates a `kind: Run` manifest. */
export function validateRunManifest(value: unknown, at?: Locator): RunInput {
  check(validators.runManifest, value, 'Run', at);
  const manifest = value as {
    metadata: { name: string; labels?: Record<string, string> };
    spec: { app: string; env?: Record<string, string>; command?: string | string[]; parameters?: Record<string, string> };
  };
  const runOverrides = overrides(manifest.spec.env, manifest.spec.command, at, ['spec', 'command'], manifest.spec.parameters);
  checkSpecSize(runOverrides, 'spec', (field) => at?.(field.split('.')) ?? {});
  return {
    name: manifest.metadata.name,
    labels: manifest.metadata.labels ?? {},
    app: manifest.spec.app,
    overrides: runOverrides,
  };
}

/** Validates the optional body of `POST /apps/{id}/run/`. */
export function validateRunRequest(body: unknown): RunRequest {
  if (body === undefined || body === null || (typeof body === 'string' && body.trim() === '')) return { overrides: {} };
  check(validators.runRequest, body, 'run request');
  const request = body as {
    name?: string;
    env?: Record<string, string>;
    envs?: Record<string, string>;
    command?: string | string[];
    parameters?: Record<string, string>;
  };
  const runOverrides = overrides(request.env ?? request.envs, request.command, undefined, ['command'], request.parameters);
  checkSpecSize(runOverrides, '(body)');
  return { name: request.name, overrides: runOverrides };
}

/** The spec an App gets when the seed body gives only an image. */
export function defaultSpec(image: string): AppSpec {
  return {
    image,
    command: [],
    env: {},
    retries: 0,
    concurrencyPolicy: 'Allow',
    imagePullPolicy: 'IfNotPresent',
    resources: {},
  };
}

/**
 * Applies an RFC 7386 JSON merge patch: objects merge, `null` deletes,
 * everything else replaces.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

function normalizeSpec(raw: Record<string, unknown>, at?: Locator, path: string[] = ['spec']): AppSpec {
  if (raw.runtime === 'docker' && raw.kubernetes !== undefined) {
    // Cluster-only settings on an App that runs on Docker would be silently ignored: refuse them.
    throw locate(ValidationError.forField([...path, 'kubernetes'].join('.'), 'applies only to runtime kubernetes; this App has runtime docker'), at);
  }
  const spec = { ...defaultSpec(raw.image as string), ...(raw as Partial<AppSpec>) };
  spec.command = normalizeCommand(raw.command as string | string[] | undefined, [...path, 'command'].join('.'), at);
  spec.env = (raw.env as Record<string, string> | undefined) ?? {};
  const resources = (raw.resources as { cpu?: string | number; memory?: string | number } | undefined) ?? {};
  spec.resources = {};
  if (resources.cpu !== undefined) spec.resources.cpu = String(resources.cpu);
  if (resources.memory !== undefined) spec.resources.memory = String(resources.memory);
  // YAML reads `user: 1000` as a number; the spec keeps the one spelling.
  if (raw.user !== undefined) spec.user = String(raw.user);
  const onOOM = spec.retryPolicy?.onOOM;
  // YAML reads `maxMemory: 1073741824` as a number; the spec keeps the one spelling.
  if (onOOM) spec.retryPolicy = { ...spec.retryPolicy, onOOM: { ...onOOM, maxMemory: String(onOOM.maxMemory) } };
  const oomProblems = onOOMProblems(spec, path.join('.'));
  if (oomProblems.length) throw locate(ValidationError.fromProblems(oomProblems, 'App'), at);
  if (spec.parameters) {
    const problems = parameterDeclarationProblems(spec.parameters, [...path, 'parameters'].join('.'));
    if (problems.length) throw locate(ValidationError.fromProblems(problems, 'App'), at);
  }
  if (spec.notify) {
    const problems = notifyProblems(spec.notify, [...path, 'notify'].join('.'));
    if (problems.length) throw locate(ValidationError.fromProblems(problems, 'App'), at);
  }
  return spec;
}

/** The schedule with its defaults, its cron expression and zone read once here so a bad one is refused at the edge. */
function normalizeSchedule(raw: Partial<ScheduleSpec>, appName: string, at?: Locator): ScheduleSpec {
  const schedule = { ...SCHEDULE_DEFAULTS, ...raw } as ScheduleSpec;
  try {
    new Schedule(appName, schedule);
  } catch (err) {
    if (err instanceof ValidationError) throw locate(err, at);
    throw err;
  }
  return schedule;
}

/** The command as words: a list as given, a string split as a shell would; at most MAX_COMMAND_ITEMS words of MAX_ARGUMENT_BYTES. */
function normalizeCommand(command: string | string[] | undefined, field: string | string[], at?: Locator): string[] {
  const name = Array.isArray(field) ? field.join('.') : field;
  if (command === undefined) return [];
  try {
    const words = Array.isArray(command) ? command : splitCommand(command, name);
    if (words.length > MAX_COMMAND_ITEMS) {
      throw ValidationError.forField(name, `has ${words.length} words; at most ${MAX_COMMAND_ITEMS} are allowed`);
    }
    const long = words.findIndex((word) => Buffer.byteLength(word) > MAX_ARGUMENT_BYTES);
    if (long >= 0) throw ValidationError.forField(name, `word ${long + 1} is longer than ${MAX_ARGUMENT_BYTES} bytes, the most one argument may be`);
    return words;
  } catch (err) {
    if (err instanceof ValidationError && at) throw locate(err, at);
    throw err;
  }
}

function overrides(
  env?: Record<string, string>,
  command?: string | string[],
  at?: Locator,
  commandPath = ['command'],
  parameters?: Record<string, string>,
): RunOverrides {
  const result: RunOverrides = {};
  if (env !== undefined) result.env = env;
  if (parameters !== undefined) result.parameters = parameters;
  if (command !== undefined) result.command = normalizeCommand(command, commandPath.join('.'), at);
  return result;
}

function envsFromSeed(envs: Record<string, string> | string[] | null): Record<string, string> {
  if (envs === null) return {};
  if (!Array.isArray(envs)) return envs;
  return Object.fromEntries(envs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
}

function check(validate: ValidateFunction, value: unknown, what: string, at?: Locator): void {
  if (validate(value)) return;
  const problems = dedupe((validate.errors ?? []).map(toProblem));
  if (at) for (const p of problems) Object.assign(p, at(p.field === '' ? [] : p.field.split('.')) ?? {});
  throw ValidationError.fromProblems(problems, what);
}

function toProblem(error: ErrorObject): FieldProblem {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  // ajv-errors keeps the original errors; their params say which property was missing or unknown.
  const original = (error.params as { errors?: ErrorObject[] }).errors?.[0] ?? error;
  const params = original.params as { missingProperty?: string; additionalProperty?: string; propertyName?: string };
  if (original.keyword === 'required' && params.missingProperty) path.push(params.missingProperty);
  if (original.keyword === 'additionalProperties' && params.additionalProperty) {
    path.push(params.additionalProperty);
    if (error.keyword === 'additionalProperties') return { field: path.join('.'), reason: 'is not a known field' };
  }
  // A bad key in a map: ajv names it on the error itself.
  const propertyName = (original as { propertyName?: string }).propertyName ?? params.propertyName;
  if (propertyName !== undefined) path.push(propertyName);
  const field = path.join('.');
  return { field: field || '(body)', reason: error.message ?? 'is invalid' };
}

function dedupe(problems: FieldProblem[]): FieldProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.field}\u0000${p.reason}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function locate(err: ValidationError, at?: Locator): ValidationError {
  if (!at) return err;
  for (const p of err.details) Object.assign(p, at(p.field.split('.')) ?? {});
  return err;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
