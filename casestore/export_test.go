package casestore

import "context"

// AnalyzeStaleAnyway is AnalyzeStale as if autovacuum were off.
func (db *DB) AnalyzeStaleAnyway(ctx context.Context) ([]string, error) {
	return db.analyzeStale(ctx)
}
