/**
 * The `yaml` library, loaded on first use: it costs about 65 ms to load, and
 * `berth version`, `--help` and table output need none of it.
 */
export function yamlLibrary(): typeof import('yaml') {
  return require('yaml') as typeof import('yaml');
}

/** An object as a YAML document. */
export function toYaml(value: unknown): string {
  return yamlLibrary().stringify(value);
}
