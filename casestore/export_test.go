package casestore

import "context"

// MaintainAnyway is Maintain as if autovacuum were off.
func (db *DB) MaintainAnyway(ctx context.Context) (Maintenance, error) {
	return db.maintain(ctx)
}
