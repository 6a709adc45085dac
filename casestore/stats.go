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

// AnalyzeStale gathers planner statistics (ANALYZE) for casedesk's tables
// that changed much since they were last analysed, as autovacuum would,
// and returns their names. It does nothing while autovacuum is on, which
// does the same job. Without statistics the planner takes every table for
// a handful of rows, and the plans it caches for the life of a connection
// (casedesk's statements, and PostgreSQL's own foreign-key checks) then
// scan a whole tenant where one index probe would do: on a growing
// tenant every message costs more than the one before.
func (db *DB) AnalyzeStale(ctx context.Context) ([]string, error) {
	var on bool
	if err := db.pool.QueryRow(ctx, `SELECT current_setting('autovacuum')::boolean`).Scan(&on); err != nil {
		return nil, unavailable(fmt.Errorf("analyze: read autovacuum setting: %w", err))
	}
	if on {
		return nil, nil
	}
	return db.analyzeStale(ctx)
}

// analyzeStale analyses the tables of the current schema changed by more
// than autovacuum's default threshold: 50 rows plus 10% of the table.
func (db *DB) analyzeStale(ctx context.Context) ([]string, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.schemaname = current_schema()
			AND s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0)
		ORDER BY s.relname`)
	if err != nil {
		return nil, unavailable(fmt.Errorf("analyze: find stale tables: %w", err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, unavailable(fmt.Errorf("analyze: find stale tables: %w", err))
	}
	done := names[:0]
	for _, name := range names {
		if _, err := db.pool.Exec(ctx, "ANALYZE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return done, unavailable(fmt.Errorf("analyze %s: %w", name, err))
		}
		done = append(done, name)
	}
	return done, nil
}
