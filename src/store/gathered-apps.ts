/**
 * The App statements SQLite serves gathered (./gathering.ts): creates, as one
 * multi-row `INSERT … RETURNING`, and reads of one App, as one `SELECT … IN`
 * whose rows come as one JSON text.
 *
 * A create is answered only after the statement that holds it has committed,
 * so what an answer acknowledges is as durable as a create made alone (the
 * README's Durability). A statement is all or nothing: when one of its rows is
 * refused (a name that exists, or two creates of one name), nothing of it was
 * written and each of its creates is tried again alone, so only the refused
 * one fails.
 */
import type { AppRow } from './models';
import { isConstraintViolation, marks, type PlainSql } from './plain-sql';
import { APP_COLUMNS, APP_JSON_OBJECT, refWhere, toApp, type newAppRow } from './rows';
import { Gathering, type Waiting } from './gathering';
import type { StoredApp } from './types';

export type NewAppRow = ReturnType<typeof newAppRow>;

const COLUMNS = 'name, uid, generation, resource_version, source, labels, spec, status, created_at, updated_at';
/** Rows per statement: ten variables each for a create, well within SQLite's limit. */
const PER_STATEMENT = 500;

/** Creates: each answered with its row as written, or the statement's error (a constraint violation for a name taken). */
export function gatheredInserts(sql: PlainSql): Gathering<NewAppRow, AppRow> {
  return new Gathering(PER_STATEMENT, async (batch) => {
    if (batch.length > 1) {
      try {
        // RETURNING gives rows in no promised order; names are unique.
        const byName = new Map((await insertRows(sql, batch)).map((row) => [row.name, row]));
        for (const w of batch) w.resolve(byName.get(w.item.name)!);
        return;
      } catch (err) {
        if (!isConstraintViolation(err)) throw err;
      }
    }
    for (const w of batch) {
      await insertRows(sql, [w]).then(([row]) => w.resolve(row), w.reject);
    }
  });
}

/** Reads of one App by id or name (`refWhere`): each answered with an App of its own, or null. */
export function gatheredReads(sql: PlainSql): Gathering<string | number, StoredApp | null> {
  return new Gathering(PER_STATEMENT, async (batch) => {
    const wheres = batch.map((w) => refWhere(w.item));
    const ids = [...new Set(wheres.flatMap((where) => ('id' in where ? [where.id] : [])))];
    const names = [...new Set(wheres.flatMap((where) => ('name' in where ? [where.name] : [])))];
    const clauses = [ids.length ? `id IN (${marks(ids)})` : '', names.length ? `name IN (${marks(names)})` : ''].filter(Boolean);
    const [{ rows }] = await sql.select<{ rows: string }>(`SELECT json_group_array(${APP_JSON_OBJECT}) AS rows FROM apps WHERE ${clauses.join(' OR ')}`, [
      ...ids,
      ...names,
    ]);
    const found = JSON.parse(rows) as AppRow[];
    const byId = new Map(found.map((row) => [row.id, row]));
    const byName = new Map(found.map((row) => [row.name, row]));
    const given = new Set<AppRow>();
    for (const [at, w] of batch.entries()) {
      const where = wheres[at];
      const row = 'id' in where ? byId.get(where.id) : byName.get(where.name);
      if (!row) {
        w.resolve(null);
        continue;
      }
      // An App read is the caller's to change: one asked for twice is given twice, in copies of its own.
      w.resolve(given.has(row) ? structuredClone(toApp(row)) : toApp(row));
      given.add(row);
    }
  });
}

function insertRows(sql: PlainSql, batch: Waiting<NewAppRow, AppRow>[]): Promise<AppRow[]> {
  const now = sql.now();
  const values = batch.flatMap(({ item: r }) => [
    r.name,
    r.uid,
    r.generation,
    r.resourceVersion,
    r.source,
    JSON.stringify(r.labels),
    JSON.stringify(r.spec),
    JSON.stringify(r.status),
    now,
    now,
  ]);
  const rows = batch.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
  return sql.select<AppRow>(`INSERT INTO apps (${COLUMNS}) VALUES ${rows} RETURNING ${APP_COLUMNS}`, values);
}
