import net from 'node:net';
import os from 'node:os';
import type { Context, Next } from 'koa';
import { ForbiddenError } from '../errors';

/** What decides the names berth answers for. */
export interface HostCheckOptions {
  /** The address berth listens on (`--host`): a name is served; a wildcard adds this machine's hostname. */
  listenHost?: string;
  /**
   * More names to answer for (`--allowed-hosts`): `berth.example`, or
   * `.example` for that domain and every name below it; `*` turns the check off.
   */
  allowedHosts?: string[];
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

/**
 * Refuses a request whose `Host` is a name berth does not serve (403). A web
 * page can rebind its own DNS name to 127.0.0.1 and then read and write a
 * loopback berth as if it were its own site, cookies and CORS
 * notwithstanding; the one thing it cannot change is the Host its requests
 * carry. Always served: IP literals (a page addressed by IP is berth's own
 * origin, and kubelet probes address the pod IP), `localhost` and names
 * below it (browsers resolve those to loopback themselves), the `--host`
 * name, and `allowedHosts`. A request without Host (HTTP/1.0) is no browser's.
 */
export function hostCheck(options: HostCheckOptions = {}) {
  const allowed = options.allowedHosts ?? [];
  const names = new Set(allowed.filter((name) => !name.startsWith('.')).map(normalize));
  const domains = allowed.filter((name) => name.startsWith('.')).map(normalize);
  const listen = options.listenHost ?? '';
  if (WILDCARDS.has(listen)) names.add(normalize(os.hostname()));
  else if (!net.isIP(bareHost(listen))) names.add(normalize(listen));
  const open = allowed.includes('*');

  return async function checkHost(ctx: Context, next: Next): Promise<void> {
    const host = ctx.get('host');
    if (open || host === '') return next();
    const name = normalize(bareHost(host));
    const served =
      net.isIP(name) !== 0 ||
      name === 'localhost' ||
      name.endsWith('.localhost') ||
      names.has(name) ||
      domains.some((domain) => name.endsWith(domain) || `.${name}` === domain);
    if (!served) {
      throw new ForbiddenError(
        `Host "${host}" is not a name this server answers for; add it with --allowed-hosts (BERTH_ALLOWED_HOSTS), or "*" to answer any`,
        [{ field: 'Host', reason: 'is not an allowed host name' }],
      );
    }
    return next();
  };
}

/** A Host header's name without its port or IPv6 brackets. */
export function bareHost(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') > 0 ? host.indexOf(']') : undefined);
  const colon = host.lastIndexOf(':');
  // More than one colon and no brackets: a bare IPv6 address, not host:port.
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

function normalize(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}
