/**
 * JSON values as YAML, for showing a spec the way its file would say it.
 * Strings that YAML would read as something else (`true`, `1.0`, `a: b`,
 * leading spaces, …) are written as JSON strings, which YAML reads as the
 * same string; so the output always parses back to the input.
 */
export function toYaml(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return value.map((item) => `\n${indent}- ${nested(item, `${indent}  `, true)}`).join('');
  }
  if (isObject(value)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return entries.map(([k, v]) => `\n${indent}${scalar(k)}:${block(v) ? '' : ' '}${nested(v, `${indent}  `, false)}`).join('');
  }
  return scalar(value);
}

/** The whole document, without the leading newline a top-level mapping starts with. */
export function yamlDocument(value: unknown): string {
  return `${toYaml(value).replace(/^\n/, '')}\n`;
}

function nested(value: unknown, indent: string, inList: boolean): string {
  const text = toYaml(value, indent);
  // In a list, a mapping's first key sits on the dash's line.
  return inList && block(value) ? text.replace(/^\n\s*/, '') : text;
}

function block(value: unknown): boolean {
  return (Array.isArray(value) && value.length > 0) || (isObject(value) && Object.keys(value).length > 0);
}

const PLAIN = /^[A-Za-z_/-][A-Za-z0-9_ ./@=+:-]*$/;
/** `256Mi`, `500m`: a number with a unit, which every YAML reads as a string. */
const QUANTITY = /^[0-9]+(\.[0-9]+)?[A-Za-z]+$/;
const SPECIAL = /^(true|false|yes|no|on|off|y|n|null|~|[-+]?\.(inf|nan))$/i;

function scalar(value: unknown): string {
  if (typeof value === 'string') {
    const plain =
      (PLAIN.test(value) || QUANTITY.test(value)) &&
      !SPECIAL.test(value) &&
      !/^-(\s|$)/.test(value) &&
      !/(:\s|:$|\s$)/.test(value) &&
      Number.isNaN(Number(value));
    return plain ? value : JSON.stringify(value);
  }
  if (value === null || value === undefined) return 'null';
  return JSON.stringify(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
