import fs from 'node:fs';
import type { Command } from 'commander';
import { configPath, readConfig, type Context } from './config-file';
import { UsageError } from './exit';

export const DEFAULT_SERVER = 'http://127.0.0.1:8000';

/** Where a client command talks to, and with what token. */
export interface Connection {
  server: string;
  token?: string;
  /** The context it came from, if any: named in error messages. */
  context?: string;
}

interface ConnectionFlags {
  server?: string;
  token?: string;
  context?: string;
}

/** Adds `--server`, `--token` and `--context` to a client command. */
export function withConnectionOptions(command: Command): Command {
  return command
    .option('--server <url>', `berth's address (env BERTH_SERVER; default: the current context, else ${DEFAULT_SERVER})`)
    .option('--token <token>', "bearer token (env BERTH_TOKEN; default: the context's)")
    .option('--context <name>', 'use this context of the config file rather than the current one (env BERTH_CONTEXT)');
}

/**
 * Decides where to talk to. The server: `--server`, `BERTH_SERVER`, the
 * context's, the default. The token: `--token`, `BERTH_TOKEN`, the context's —
 * the context's only when its server is the one used, so a context's token
 * is never sent to a server named by hand.
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Connection {
  const contextName = flags.context ?? env.BERTH_CONTEXT;
  const context = findContext(contextName);
  const explicitServer = flags.server ?? env.BERTH_SERVER;
  const server = normalizeServer(explicitServer ?? context?.server ?? DEFAULT_SERVER);
  const fromContext = context && normalizeServer(context.server) === server ? context : undefined;
  const token = flags.token ?? env.BERTH_TOKEN ?? (fromContext ? contextToken(fromContext) : undefined);
  return { server, token: token || undefined, context: fromContext?.name };
}

function findContext(name: string | undefined): Context | undefined {
  const file = configPath();
  const config = readConfig(file);
  const wanted = name ?? config.currentContext;
  if (wanted === undefined) return undefined;
  const context = config.contexts.find((c) => c.name === wanted);
  if (!context) {
    const known = config.contexts.map((c) => c.name);
    throw new UsageError(`context "${wanted}" is not in ${file}${known.length ? ` (it has ${known.join(', ')})` : ''}`);
  }
  return context;
}

function contextToken(context: Context): string | undefined {
  if (context.token) return context.token;
  if (!context.tokenFile) return undefined;
  try {
    return fs.readFileSync(context.tokenFile, 'utf8').split(/\r?\n/)[0].trim();
  } catch (err) {
    throw new UsageError(
      `context "${context.name}": cannot read tokenFile ${context.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** An http(s) URL without a trailing slash; anything else is a usage error naming the value. */
export function normalizeServer(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`server "${raw}" is not a URL; give one such as ${DEFAULT_SERVER}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`server "${raw}" must be an http:// or https:// URL`);
  if (url.search || url.hash) throw new UsageError(`server "${raw}" must not have a query or fragment`);
  return url.toString().replace(/\/+$/, '');
}
