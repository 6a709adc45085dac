package casestore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// OutboxDepth counts the outbox items of every tenant waiting to be sent
// (pending, due now or later) and those claimed by a worker right now
// (sending), for monitoring. Each count reads one partial index.
func (db *DB) OutboxDepth(ctx context.Context) (pending, sending int64, err error) {
	err = db.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM outbox WHERE state = 'pending'),
		(SELECT count(*) FROM outbox WHERE state = 'sending')`).Scan(&pending, &sending)
	if err != nil {
		return 0, 0, unavailable(fmt.Errorf("outbox depth: %w", err))
	}
	return pending, sending, nil
}

// Maintenance names the tables one Maintain run vacuumed and analysed.
type Maintenance struct {
	Vacuumed, Analyzed []string
}

// Maintain does what autovacuum would for casedesk's tables when
// autovacuum is off, and nothing while it is on. Without statistics the
// planner takes every table for a handful of rows, and the plans it caches
// for the life of a connection (casedesk's statements, and PostgreSQL's
// own foreign-key checks) then scan a whole tenant where one index probe
// would do: on a growing tenant every message costs more than the one
// before. Without vacuum the queue tables (outbox, search_queue) fill their
// indexes with the entries of rows long done, which every claim walks.
//
// A table is vacuumed once its dead rows pass autovacuum's threshold (its
// autovacuum_vacuum_threshold and _scale_factor where set, as migration
// 00006 does for the queues; 50 rows and 20% otherwise). It is analysed
// once never analysed with rows in it, or when its changes since the last
// ANALYZE outnumber 500 rows plus the table itself: plans depend on the
// shape of the data, which a growing table keeps, and ANALYZE of a large
// table costs up to half a second.
func (db *DB) Maintain(ctx context.Context) (Maintenance, error) {
	var on bool
	if err := db.pool.QueryRow(ctx, `SELECT current_setting('autovacuum')::boolean`).Scan(&on); err != nil {
		return Maintenance{}, unavailable(fmt.Errorf("maintain: read autovacuum setting: %w", err))
	}
	if on {
		return Maintenance{}, nil
	}
	return db.maintain(ctx)
}

// maintainSQL finds the tables of the current schema due for VACUUM or
// ANALYZE (see Maintain).
const maintainSQL = `
WITH t AS (
	SELECT s.relname, greatest(c.reltuples, 0) AS tuples, c.reltuples < 0 AS never,
		s.n_dead_tup, s.n_mod_since_analyze, s.n_live_tup,
		(SELECT split_part(o, '=', 2)::float8 FROM unnest(c.reloptions) o
			WHERE o LIKE 'autovacuum\_vacuum\_threshold=%') AS vac_threshold,
		(SELECT split_part(o, '=', 2)::float8 FROM unnest(c.reloptions) o
			WHERE o LIKE 'autovacuum\_vacuum\_scale\_factor=%') AS vac_scale
	FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
	WHERE s.schemaname = current_schema()
)
SELECT relname,
	n_dead_tup > coalesce(vac_threshold, 50) + coalesce(vac_scale, 0.2) * tuples,
	(never AND n_live_tup > 0) OR n_mod_since_analyze > 500 + tuples
FROM t ORDER BY relname`

// maintain vacuums and analyses the tables due, ignoring the setting.
func (db *DB) maintain(ctx context.Context) (Maintenance, error) {
	rows, err := db.pool.Query(ctx, maintainSQL)
	if err != nil {
		return Maintenance{}, unavailable(fmt.Errorf("maintain: find tables due: %w", err))
	}
	type due struct {
		name            string
		vacuum, analyze bool
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (d due, err error) {
		return d, r.Scan(&d.name, &d.vacuum, &d.analyze)
	})
	if err != nil {
		return Maintenance{}, unavailable(fmt.Errorf("maintain: find tables due: %w", err))
	}
	var done Maintenance
	for _, t := range tables {
		name := pgx.Identifier{t.name}.Sanitize()
		var sql string
		switch {
		case t.vacuum && t.analyze:
			// No truncation of emptied pages at the end: it would hold
			// an exclusive lock on a queue that is being written.
			sql = "VACUUM (ANALYZE, TRUNCATE false) " + name
		case t.vacuum:
			sql = "VACUUM (TRUNCATE false) " + name
		case t.analyze:
			sql = "ANALYZE " + name
		default:
			continue
		}
		if _, err := db.pool.Exec(ctx, sql); err != nil {
			return done, unavailable(fmt.Errorf("maintain: %s: %w", sql, err))
		}
		if t.vacuum {
			done.Vacuumed = append(done.Vacuumed, t.name)
		}
		if t.analyze {
			done.Analyzed = append(done.Analyzed, t.name)
		}
	}
	return done, nil
}
