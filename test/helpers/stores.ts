/**
 * For tests that run against both stores, on an injected clock: the dialects
 * with a way to open a fresh store on each, and a clock the test moves.
 */
import { Store } from '../../src/store/store';
import { tempSqliteStore } from './fixtures';
import { createDatabase } from './postgres';

/** Each dialect with a fresh store of its own: a temporary SQLite file, or a PostgreSQL database dropped afterwards. */
export const STORE_DIALECTS: [string, () => Promise<{ store: Store; drop?: () => Promise<void> }>][] = [
  ['SQLite', tempSqliteStore],
  [
    'PostgreSQL',
    async () => {
      const db = await createDatabase();
      return { store: await Store.open(db.url), drop: db.drop };
    },
  ],
];

/** A clock the test moves by hand. */
export class TestClock {
  constructor(private ms: number) {}
  now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
  set(iso: string): void {
    this.ms = Date.parse(iso);
  }
}
