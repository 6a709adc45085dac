package casestore

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// lockDueCasesSQL selects and locks a page of a tenant's cases on which
// auto-resolve has something to do. The waiting clock "since" is
// casedesk.Case.WaitingSince in SQL. The conditions on status and
// merged_into are those of the partial index cases_due, which hands out
// the tenant's waiting cases in ID order: a run reads each waiting case
// once, and the closed and merged ones not at all. NULL thresholds select
// nothing.
const lockDueCasesSQL = `
SELECT ` + caseColumns + `
FROM cases c
	CROSS JOIN LATERAL (SELECT coalesce(greatest(c.last_agent_reply_at, c.pending_since), c.updated_at) AS since) w` +
	caseJoins + `
WHERE c.tenant_id = $1 AND c.id > $2
	AND c.status IN ('pending', 'solved') AND c.merged_into IS NULL
	AND (c.status = 'pending' AND (w.since <= $4
			OR w.since <= $3 AND c.reminded_for IS DISTINCT FROM w.since)
		OR c.status = 'solved' AND coalesce(c.solved_at, c.updated_at) <= $5)
ORDER BY c.id
LIMIT $6
FOR UPDATE OF c SKIP LOCKED`

// LockDueCases locks and returns a page of the tenant's cases due for an
// auto-resolve step; see casedesk.CaseOps. Locking (FOR UPDATE SKIP
// LOCKED) only means something in an Update transaction.
func (t *tx) LockDueCases(ctx context.Context, tenantID int64, f casedesk.DueCaseFilter) ([]*casedesk.Case, error) {
	if f.Limit <= 0 {
		return nil, casedesk.Errorf(casedesk.EINVALID, "a page of due cases needs a positive limit")
	}
	rows, err := t.tx.Query(ctx, lockDueCasesSQL, tenantID, f.AfterID,
		nullTime(f.RemindBefore), nullTime(f.SolveBefore), nullTime(f.CloseBefore), f.Limit)
	if err != nil {
		return nil, wrap(err, "lock due cases")
	}
	cases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Case, error) { return scanCase(r) })
	return cases, wrap(err, "lock due cases")
}

// markRemindedSQL sets reminded_for of a batch of cases and returns the
// IDs it found. Rows go in ID order, so that concurrent batches meet in
// the same order.
const markRemindedSQL = `
UPDATE cases c SET reminded_for = m.since
FROM (SELECT * FROM unnest($2::bigint[], $3::timestamptz[]) AS m(case_id, since) ORDER BY m.case_id) m
WHERE c.tenant_id = $1 AND c.id = m.case_id
RETURNING c.id`

// MarkReminded records the waits that reminders were sent for; see
// casedesk.CaseOps.
func (t *tx) MarkReminded(ctx context.Context, tenantID int64, waitingSince map[int64]time.Time) error {
	if len(waitingSince) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(waitingSince))
	since := make([]time.Time, len(ids))
	for i, id := range ids {
		since[i] = waitingSince[id]
	}
	rows, err := t.tx.Query(ctx, markRemindedSQL, tenantID, ids, since)
	if err != nil {
		return wrap(err, "mark reminded")
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return wrap(err, "mark reminded")
	}
	if len(found) != len(ids) {
		// The others are marked: the caller must roll back.
		return casedesk.Errorf(casedesk.ENOTFOUND, "mark reminded: %d of %d cases not found", len(ids)-len(found), len(ids))
	}
	return nil
}

// nullTime is NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
