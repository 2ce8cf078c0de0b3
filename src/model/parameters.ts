/**
 * Run parameters: the typed inputs an App declares (`spec.parameters`) and a
 * run request fills in (`parameters: {NAME: value}`). One place checks a
 * declaration and resolves a request's values against it, for the API and
 * for `kind: Run` documents alike; the values reach the container as
 * environment variables of the same names.
 */
import vm from 'node:vm';
import type { FieldProblem } from '../errors';
import { ValidationError } from '../errors';
import type { AppParameter } from './types';

/** The longest `pattern`: long enough for any real rule, short enough to keep its compilation cheap. */
export const MAX_PARAMETER_PATTERN_LENGTH = 256;
/** The longest parameter value. */
export const MAX_PARAMETER_VALUE_LENGTH = 4096;
/** Parameters one App may declare. */
export const MAX_PARAMETERS = 64;

/** How long one value may take to match its pattern before it is refused. */
export const PATTERN_MATCH_TIMEOUT_MS = 50;

/**
 * Patterns are users' regular expressions that the server runs on request
 * bodies, and JavaScript's engine backtracks: `(a+)+` against a few dozen
 * characters would block the event loop for good. So a match runs in a vm
 * context with a timeout, which V8 enforces even inside a backtracking match;
 * a value that takes longer is refused, and the server goes on. (A
 * linear-time engine would need a native module built at every install —
 * RE2 — or V8's experimental one, which refuses `u` and repeats beyond
 * `{,16}`: too little for real rules such as a DNS label.)
 */
const sandbox = vm.createContext(Object.create(null) as Record<string, unknown>);
const matcher = vm.runInContext('(function (pattern, value) { return new RegExp(pattern, "u").test(value); })', sandbox) as (
  pattern: string,
  value: string,
) => boolean;
sandbox.match = matcher;
const matchScript = new vm.Script('match(pattern, value)');

/**
 * Whether `value` as a whole matches `pattern` (`[0-9]+` means digits only,
 * as a user reading it expects), with Unicode semantics; 'timeout' when
 * deciding took longer than PATTERN_MATCH_TIMEOUT_MS.
 */
export function matchesPattern(pattern: string, value: string): boolean | 'timeout' {
  sandbox.pattern = `^(?:${pattern})$`;
  sandbox.value = value;
  try {
    return matchScript.runInContext(sandbox, { timeout: PATTERN_MATCH_TIMEOUT_MS }) as boolean;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return 'timeout';
    throw err;
  } finally {
    sandbox.pattern = sandbox.value = undefined;
  }
}

/**
 * What the schema cannot say about `spec.parameters`: names are unique, a
 * pattern compiles, a default obeys its own rule, and a required parameter
 * has no default (it would never be required). `path` is the field of the
 * list, e.g. `spec.parameters`.
 */
export function parameterDeclarationProblems(parameters: AppParameter[], path: string): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  parameters.forEach((parameter, index) => {
    const at = `${path}.${index}`;
    if (seen.has(parameter.name)) problems.push({ field: `${at}.name`, reason: `declares "${parameter.name}" a second time` });
    seen.add(parameter.name);
    if (parameter.pattern !== undefined) {
      const refused = patternProblem(parameter.pattern);
      if (refused) {
        problems.push({ field: `${at}.pattern`, reason: refused });
        return;
      }
    }
    if (parameter.required && parameter.default !== undefined) {
      problems.push({ field: `${at}.default`, reason: 'must not be set on a required parameter (a default would make it optional)' });
    } else if (parameter.default !== undefined) {
      const broken = ruleBroken(parameter, parameter.default);
      if (broken) problems.push({ field: `${at}.default`, reason: broken });
    }
  });
  return problems;
}

/**
 * The values a run gets: those `given`, checked against the App's
 * declarations, and the defaults of the rest. Throws one ValidationError
 * naming every bad value (unknown, missing while required, not matching the
 * pattern, not in the enum) under `field` (e.g. `parameters`).
 */
export function resolveParameters(
  appName: string,
  declared: AppParameter[] = [],
  given: Record<string, string> = {},
  field = 'parameters',
): Record<string, string> {
  const problems: FieldProblem[] = [];
  const byName = new Map(declared.map((parameter) => [parameter.name, parameter]));
  for (const name of Object.keys(given)) {
    if (byName.has(name)) continue;
    const known = declared.length ? `its parameters are ${declared.map((p) => p.name).join(', ')}` : 'it declares none';
    problems.push({ field: `${field}.${name}`, reason: `is not a parameter of app "${appName}" (${known})` });
  }
  const values: Record<string, string> = {};
  for (const parameter of declared) {
    const value = given[parameter.name] ?? parameter.default;
    if (value === undefined) {
      if (parameter.required) problems.push({ field: `${field}.${parameter.name}`, reason: `is required by app "${appName}"${describe(parameter)}` });
      continue;
    }
    const broken = ruleBroken(parameter, value);
    if (broken) problems.push({ field: `${field}.${parameter.name}`, reason: broken });
    else values[parameter.name] = value;
  }
  if (problems.length) throw ValidationError.fromProblems(problems, 'parameters');
  return values;
}

/** Why a declared pattern cannot be used, or undefined when it can. */
function patternProblem(pattern: string): string | undefined {
  try {
    new RegExp(`^(?:${pattern})$`, 'u');
  } catch (err) {
    return `is not a valid regular expression: ${(err as Error).message}`;
  }
  return undefined;
}

/** Why `value` breaks the parameter's pattern or enum, or undefined when it obeys them. */
function ruleBroken(parameter: AppParameter, value: string): string | undefined {
  if (parameter.enum && !parameter.enum.includes(value)) return `must be one of ${parameter.enum.join(', ')}; got "${clip(value)}"`;
  if (parameter.pattern !== undefined) {
    const matched = matchesPattern(parameter.pattern, value);
    if (matched === 'timeout') {
      return `could not be checked against the pattern ${parameter.pattern} within ${PATTERN_MATCH_TIMEOUT_MS} ms (the pattern backtracks too much on this value); got "${clip(value)}"`;
    }
    if (!matched) return `must match the pattern ${parameter.pattern} (the whole value); got "${clip(value)}"`;
  }
  return undefined;
}

function describe(parameter: AppParameter): string {
  return parameter.description ? ` (${parameter.description})` : '';
}

/** A value as quoted back in a message: a long one is cut short. */
function clip(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}
