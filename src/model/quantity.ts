/**
 * Kubernetes resource quantities, as App specs write them
 * (`resources: {cpu: "500m", memory: 256Mi}`), turned into the plain numbers
 * container runtimes take. Kept apart from any runtime so validation at the
 * edge and every executor read a quantity the same way.
 */

const BINARY_SUFFIXES: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const DECIMAL_SUFFIXES: Record<string, number> = {
  // Kubernetes spells kilo with a lower-case k; the upper-case K is accepted too
  // because `docker run --memory 512K` users write it that way.
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

const MEMORY_PATTERN = /^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(?:[eE]([0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E))?$/;
const CPU_PATTERN = /^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(m?)$/;

const MEMORY_RULE =
  'must be a positive number of bytes with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024) or k, M, G, T, P, E (powers of 1000), e.g. "256Mi" or "1G"';
const CPU_RULE = 'must be a positive number of CPUs, as a decimal ("0.5", "2") or in millicores ("500m")';

/**
 * Parses a memory quantity (`"256Mi"`, `"1G"`, `"1.5Gi"`, `"129e6"`,
 * `"1048576"`) into bytes, rounded up to a whole byte as Kubernetes does.
 *
 * @throws Error naming the rule when `quantity` is not a positive memory quantity.
 */
export function parseMemoryBytes(quantity: string): number {
  const match = MEMORY_PATTERN.exec(String(quantity).trim());
  if (!match) throw new Error(`memory quantity "${quantity}" ${MEMORY_RULE}`);
  const [, number, exponent, suffix] = match;
  const multiplier = exponent !== undefined ? 10 ** Number(exponent) : suffix ? (BINARY_SUFFIXES[suffix] ?? DECIMAL_SUFFIXES[suffix]) : 1;
  const bytes = Math.ceil(Number(number) * multiplier);
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) throw new Error(`memory quantity "${quantity}" ${MEMORY_RULE}`);
  return bytes;
}

/**
 * Parses a CPU quantity (`"0.5"`, `"2"`, `"500m"`) into nano-CPUs, the unit
 * of Docker's `NanoCpus` (one CPU is 1e9).
 *
 * @throws Error naming the rule when `quantity` is not a positive CPU quantity.
 */
export function parseCpuNanos(quantity: string): number {
  const match = CPU_PATTERN.exec(String(quantity).trim());
  if (!match) throw new Error(`cpu quantity "${quantity}" ${CPU_RULE}`);
  const [, number, milli] = match;
  const nanos = Math.round(Number(number) * (milli ? 1e6 : 1e9));
  if (!(nanos > 0) || !Number.isSafeInteger(nanos)) throw new Error(`cpu quantity "${quantity}" ${CPU_RULE}`);
  return nanos;
}

/** Memory as a canonical quantity: the largest binary suffix that divides it, else bytes. */
export function memoryQuantity(bytes: number): string {
  for (const [suffix, size] of [
    ['Gi', 2 ** 30],
    ['Mi', 2 ** 20],
    ['Ki', 2 ** 10],
  ] as const) {
    if (bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return String(bytes);
}
