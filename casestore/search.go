package casestore

import (
	"context"
	"log/slog"
	"time"

	"github.com/casedesk/casedesk"
)

// IndexMessageText indexes queued messages for case search; see
// casedesk.MessageOps. The queue is read in id order with SKIP LOCKED, so
// replicas running the indexer share the work; a message that has gone
// since it was queued is dropped from the queue.
func (t *tx) IndexMessageText(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, casedesk.Errorf(casedesk.EINVALID, "index limit must be positive")
	}
	var n int
	err := t.tx.QueryRow(ctx, `
		WITH q AS (
			DELETE FROM search_queue WHERE (message_id, tenant_id) IN (
				SELECT message_id, tenant_id FROM search_queue ORDER BY message_id
				LIMIT $1 FOR UPDATE SKIP LOCKED)
			RETURNING tenant_id, message_id
		), ins AS (
			INSERT INTO message_search (tenant_id, message_id, vector)
			SELECT m.tenant_id, m.id, casedesk_search_vector(m.subject, m.text_body)
			FROM q JOIN messages m ON m.tenant_id = q.tenant_id AND m.id = q.message_id
			ON CONFLICT DO NOTHING
		)
		SELECT count(*) FROM q`, limit).Scan(&n)
	return n, wrap(err, "index message text")
}

// SearchBatch is how many messages the search indexer takes per
// transaction: large enough to amortise the round trips and GIN updates,
// small enough that a transaction stays well under a second.
const SearchBatch = 500

// IndexSearch indexes every queued message for case search, a batch per
// transaction, and returns how many it indexed.
func (db *DB) IndexSearch(ctx context.Context) (int, error) {
	total := 0
	for {
		var n int
		err := db.Update(ctx, func(tx casedesk.Tx) (err error) {
			n, err = tx.IndexMessageText(ctx, SearchBatch)
			return err
		})
		total += n
		if err != nil || n < SearchBatch {
			return total, err
		}
	}
}

// RunSearchIndexer indexes new mail for case search every interval until
// ctx is done: search finds a message's text within about one interval of
// its arrival. Errors (the database is down) are logged and retried at the
// next tick.
func (db *DB) RunSearchIndexer(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := db.IndexSearch(ctx); err != nil && ctx.Err() == nil {
			log.Error("search indexer", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
