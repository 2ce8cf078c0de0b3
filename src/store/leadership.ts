/**
 * The store's side of leader election: who leads under each lock name and
 * its epoch, and the launches recorded under that epoch. The lock itself
 * (an advisory lock, a Lease) lives elsewhere (src/leadership/); the epoch is
 * here, in the database every replica writes runs to, so that fencing a
 * launch and recording it are one transaction.
 */
import { QueryTypes, Sequelize, Transaction } from 'sequelize';
import { isForeignKeyViolation } from './plain-sql';

/** Who leads under a lock name, as the store last recorded it. */
export interface LeaderRecord {
  name: string;
  holder: string;
  /** Bumped by each new leader as it takes over. */
  epoch: number;
  /** When this holder took over (ISO 8601). */
  acquiredAt: string;
}

/** The term a replica believes it holds: checked by every launch it records. */
export interface Term {
  name: string;
  holder: string;
  epoch: number;
}

/** One attempt's launch, recorded before the runtime is asked for it. */
export interface LaunchRecord {
  runId: number;
  attempt: number;
  workload: string;
}

export class LeadershipRecords {
  constructor(private readonly sequelize: Sequelize) {}

  /**
   * Records `holder` as the leader under `name` with the next epoch, and
   * returns it. Called by a replica right after it won the lock, before it
   * starts leading: from then on, launches recorded under the old epoch are
   * refused.
   */
  async takeOver(name: string, holder: string): Promise<LeaderRecord> {
    const rows = (await this.sequelize.query(
      'INSERT INTO leadership (name, holder, epoch, acquired_at) VALUES (:name, :holder, 1, :now) ' +
        'ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leadership.epoch + 1, acquired_at = excluded.acquired_at ' +
        'RETURNING name, holder, epoch, acquired_at AS "acquiredAt"',
      { replacements: { name, holder, now: new Date() }, type: QueryTypes.SELECT },
    )) as RawLeaderRow[];
    return toRecord(rows[0]);
  }

  /** Who leads under `name`, or null when nobody ever has. */
  async get(name: string): Promise<LeaderRecord | null> {
    const rows = (await this.sequelize.query('SELECT name, holder, epoch, acquired_at AS "acquiredAt" FROM leadership WHERE name = :name', {
      replacements: { name },
      type: QueryTypes.SELECT,
    })) as RawLeaderRow[];
    return rows.length ? toRecord(rows[0]) : null;
  }

  /**
   * Records a launch under `term`, in one transaction that first checks the
   * term is still the current one. The check is an UPDATE of the leadership
   * row, so it holds that row's lock until commit: a new leader's takeover
   * (which bumps the epoch on the same row) waits for this record, or this
   * check sees the new epoch and refuses. Returns false when refused: the
   * caller must not launch.
   */
  async recordLaunch(term: Term, launch: LaunchRecord): Promise<boolean> {
    const recorded = this.sequelize.transaction(async (transaction) => {
      const held = await this.execute(
        'UPDATE leadership SET holder = holder WHERE name = :name AND holder = :holder AND epoch = :epoch',
        { name: term.name, holder: term.holder, epoch: term.epoch },
        transaction,
      );
      if (held === 0) return false;
      await this.execute(
        'INSERT INTO run_launches (run_id, attempt, workload, holder, epoch, launched_at) VALUES (:runId, :attempt, :workload, :holder, :epoch, :now) ' +
          'ON CONFLICT (run_id, attempt) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, launched_at = excluded.launched_at',
        { ...launch, holder: term.holder, epoch: term.epoch, now: new Date() },
        transaction,
      );
      return true;
    });
    // A run deleted since it was read has nothing to launch: refused, like a launch under a deposed term.
    return recorded.catch((err: unknown) => {
      if (isForeignKeyViolation(err)) return false;
      throw err;
    });
  }

  private async execute(sql: string, replacements: Record<string, unknown>, transaction?: Transaction): Promise<number> {
    const result = (await this.sequelize.query(sql, { replacements, type: QueryTypes.UPDATE, transaction })) as unknown;
    // PostgreSQL answers [rows, rowCount]; SQLite answers the statement, whose `changes` is the count.
    const [, meta] = result as [unknown, unknown];
    if (typeof meta === 'number') return meta;
    return Number((meta as { changes?: number } | undefined)?.changes ?? 0);
  }
}

interface RawLeaderRow {
  name: string;
  holder: string;
  epoch: number | string;
  acquiredAt: Date | string;
}

function toRecord(row: RawLeaderRow): LeaderRecord {
  return { name: row.name, holder: row.holder, epoch: Number(row.epoch), acquiredAt: new Date(row.acquiredAt).toISOString() };
}
