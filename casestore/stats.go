package casestore

import (
	"context"
	"fmt"
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
