import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from './exit';
import { yamlLibrary } from './yaml';

/** One server the client can talk to, by name: kubeconfig's idea, smaller. */
export interface Context {
  name: string;
  server: string;
  /** A bearer token kept in the file (written with mode 0600). */
  token?: string;
  /** A file whose first line is the token (a mounted Secret, a password manager's output). */
  tokenFile?: string;
}

export interface ClientConfig {
  currentContext?: string;
  contexts: Context[];
}

/**
 * Where the contexts live: `BERTH_CONFIG`, else `$XDG_CONFIG_HOME/berth/config.yaml`,
 * else `~/.config/berth/config.yaml`.
 */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BERTH_CONFIG) return env.BERTH_CONFIG;
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(os.homedir(), '.config');
  return path.join(base, 'berth', 'config.yaml');
}

/** The contexts file, or an empty configuration when there is none yet. A file that does not parse is a usage error naming it. */
export function readConfig(file = configPath()): ClientConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contexts: [] };
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const { parse } = yamlLibrary();
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new UsageError(`${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  return checkConfig(raw, file);
}

/** Writes the contexts file, readable only by its owner: it may hold tokens. */
export function writeConfig(config: ClientConfig, file = configPath()): void {
  const { stringify } = yamlLibrary();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, stringify(config), { mode: 0o600 });
  fs.renameSync(temp, file);
}

function checkConfig(raw: unknown, file: string): ClientConfig {
  const bad = (what: string): never => {
    throw new UsageError(`${file}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad('must be a map with currentContext and contexts');
  const { currentContext, contexts = [] } = raw as { currentContext?: unknown; contexts?: unknown };
  if (currentContext !== undefined && typeof currentContext !== 'string') bad('currentContext must be a context name');
  if (!Array.isArray(contexts)) bad('contexts must be a list');
  const seen = new Set<string>();
  const checked = (contexts as unknown[]).map((c, i): Context => {
    const context = c as Partial<Record<keyof Context, unknown>>;
    if (typeof context !== 'object' || context === null) bad(`contexts[${i}] must be a map`);
    if (typeof context.name !== 'string' || context.name === '') bad(`contexts[${i}].name must be a non-empty string`);
    if (typeof context.server !== 'string') bad(`contexts[${i}].server must be a URL such as http://127.0.0.1:8000`);
    for (const key of ['token', 'tokenFile'] as const) {
      if (context[key] !== undefined && typeof context[key] !== 'string') bad(`contexts[${i}].${key} must be a string`);
    }
    if (seen.has(context.name as string)) bad(`context "${context.name}" is defined twice`);
    seen.add(context.name as string);
    return context as Context;
  });
  return { currentContext: currentContext as string | undefined, contexts: checked };
}
