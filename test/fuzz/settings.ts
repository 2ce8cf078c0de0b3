/**
 * How much to fuzz. In the normal suite: a fixed seed and a bounded count, so
 * a run is repeatable and keeps to a few seconds. Under `npm run fuzz`
 * (FUZZ=long): a fresh seed each time and many more cases. FUZZ_SEED and
 * FUZZ_RUNS override either; a failure's message carries the seed and path
 * that reproduce it.
 */
import fc from 'fast-check';

const long = process.env.FUZZ === 'long';

/** The seed of the suite's runs: any fixed number keeps them repeatable. */
const SUITE_SEED = 20261128;

export const FUZZ_SEED = envInteger('FUZZ_SEED') ?? (long ? Date.now() % 2 ** 31 : SUITE_SEED);

/** `fc.assert` parameters for a property whose suite share is `suiteRuns` cases. */
export function fuzzParameters<T>(suiteRuns: number, longRuns: number): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: envInteger('FUZZ_RUNS') ?? (long ? longRuns : suiteRuns), endOnFailure: true };
}

/** Says the seed once, so a long run that finds something can be repeated with FUZZ_SEED. */
export function announceSeed(what: string, parameters: { seed?: number; numRuns?: number }): void {
  if (long || process.env.FUZZ_SEED || process.env.FUZZ_RUNS) {
    console.log(`  fuzzing ${what}: FUZZ_SEED=${parameters.seed} FUZZ_RUNS=${parameters.numRuns}`);
  }
}

function envInteger(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^[0-9]+$/.test(raw)) throw new Error(`${name} must be a non-negative integer, not "${raw}"`);
  return Number(raw);
}
