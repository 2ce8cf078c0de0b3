/**
 * Which registry an image comes from, read the way Docker and the kubelet
 * read a reference, and whether `--allowed-registries` lets it in.
 */

/** Docker Hub, as every other spelling of it normalises. */
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/**
 * An image reference without its tag and digest, its registry spelled out:
 * `busybox:1.36` is `docker.io/library/busybox`, `team/tool` is
 * `docker.io/team/tool`, `127.0.0.1:5000/x:1` is `127.0.0.1:5000/x`. The first
 * path component names a registry when it has a `.` or a `:`, or is
 * `localhost` — Docker's rule.
 */
export function qualifiedRepository(image: string): { registry: string; repository: string } {
  const withoutDigest = image.split('@')[0];
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  const name = colon >= 0 ? withoutDigest.slice(0, colon) : withoutDigest;
  const slash = name.indexOf('/');
  const first = slash >= 0 ? name.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    const registry = first.toLowerCase();
    return { registry: DOCKER_HUB_ALIASES.has(registry) ? DOCKER_HUB : registry, repository: name.slice(slash + 1) };
  }
  return { registry: DOCKER_HUB, repository: slash >= 0 ? name : `library/${name}` };
}

/**
 * Whether `image` comes from one of `allowed`: each entry a registry
 * (`docker.io`, `registry.example:5000`) or a registry and a path prefix
 * (`ghcr.io/acme`) that whole path components of the repository must match.
 * An empty list allows every image.
 */
export function isImageAllowed(image: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const { registry, repository } = qualifiedRepository(image);
  const full = `${registry}/${repository}`;
  return allowed.some((entry) => full === entry || full.startsWith(`${entry}/`));
}

const ENTRY = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/;

/**
 * Reads `--allowed-registries`: comma-separated registries, each optionally
 * with a path prefix; host names are compared in lower case and Docker Hub's
 * other names become `docker.io`.
 *
 * @throws Error naming each entry that is not a registry.
 */
export function parseRegistryList(value: string): string[] {
  const entries = value
    .split(',')
    .map((entry) => entry.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  const normalised = entries.map((entry) => {
    const slash = entry.indexOf('/');
    const host = (slash >= 0 ? entry.slice(0, slash) : entry).toLowerCase();
    return `${DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host}${slash >= 0 ? entry.slice(slash) : ''}`;
  });
  const bad = normalised.filter((entry) => !ENTRY.test(entry));
  if (bad.length) throw new Error(`${bad.join(', ')}: not registries (host[:port], optionally with a path such as ghcr.io/acme)`);
  return [...new Set(normalised)];
}
