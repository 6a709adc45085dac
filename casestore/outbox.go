package casestore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

const outboxColumns = `tenant_id, id, coalesce(case_id, 0), kind, state, to_addr, message_id, payload,
	attempts, next_attempt_at, last_error, claimed_at, coalesce(claimed_by, ''), sent_at, created_at`

func scanOutbox(r pgx.Row) (*casedesk.OutboxItem, error) {
	var o casedesk.OutboxItem
	var claimed, sent *time.Time
	err := r.Scan(&o.TenantID, &o.ID, &o.CaseID, &o.Kind, &o.State, &o.To, &o.MessageID, &o.Payload,
		&o.Attempts, &o.NextAttemptAt, &o.LastError, &claimed, &o.ClaimedBy, &sent, &o.CreatedAt)
	if err != nil {
		return nil, err
	}
	o.ClaimedAt, o.SentAt = timeOf(claimed), timeOf(sent)
	return &o, nil
}

// EnqueueOutbox queues mail, due at NotBefore or now.
func (t *tx) EnqueueOutbox(ctx context.Context, n casedesk.NewOutboxItem) (*casedesk.OutboxItem, error) {
	items, err := t.EnqueueOutboxItems(ctx, []casedesk.NewOutboxItem{n})
	if err != nil {
		return nil, err
	}
	return items[0], nil
}

// enqueueOutboxSQL inserts a batch of outbox items of one tenant in input
// order, so their IDs follow it. (A CTE to sort the returned rows in SQL
// made a single EnqueueOutbox measurably slower; they are sorted in Go.)
const enqueueOutboxSQL = `
INSERT INTO outbox (tenant_id, case_id, kind, state, to_addr, message_id, payload,
	next_attempt_at, created_at)
SELECT $1, i.case_id, i.kind, 'pending', i.to_addr, i.message_id, i.payload::jsonb, i.due, $8
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
	WITH ORDINALITY AS i(case_id, kind, to_addr, message_id, payload, due, ord)
ORDER BY i.ord
RETURNING ` + outboxColumns

// EnqueueOutboxItems queues items of one tenant, each due at its NotBefore
// or now, in one statement; see casedesk.OutboxOps.
func (t *tx) EnqueueOutboxItems(ctx context.Context, ns []casedesk.NewOutboxItem) ([]*casedesk.OutboxItem, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	caseIDs := make([]*int64, len(ns))
	kinds, to, msgIDs, payloads := make([]string, len(ns)), make([]string, len(ns)), make([]string, len(ns)), make([]string, len(ns))
	due := make([]time.Time, len(ns))
	for i, n := range ns {
		if err := checkOutboxItem(n); err != nil {
			return nil, itemError(err, "outbox item", i, len(ns))
		}
		if n.TenantID != ns[0].TenantID {
			return nil, casedesk.Errorf(casedesk.EINVALID, "one batch holds outbox items of one tenant")
		}
		payload := n.Payload
		if len(payload) == 0 {
			payload = json.RawMessage(`{}`)
		}
		due[i] = n.NotBefore
		if due[i].IsZero() || due[i].Before(t.now) {
			due[i] = t.now
		}
		caseIDs[i], kinds[i], to[i] = nullID(n.CaseID), clip(string(n.Kind), maxNameBytes), clean(strings.TrimSpace(n.To))
		msgIDs[i] = clip(casedesk.NormalizeMessageID(n.MessageID), casedesk.MaxMessageIDLen)
		payloads[i] = string(payload)
	}
	rows, err := t.tx.Query(ctx, enqueueOutboxSQL, ns[0].TenantID, caseIDs, kinds, to, msgIDs, payloads, due, t.now)
	if err != nil {
		return nil, wrap(err, "enqueue outbox")
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.OutboxItem, error) { return scanOutbox(r) })
	if err != nil {
		return nil, wrap(err, "enqueue outbox")
	}
	if len(items) != len(ns) {
		return nil, fmt.Errorf("enqueue outbox: %d of %d items stored", len(items), len(ns))
	}
	slices.SortFunc(items, func(a, b *casedesk.OutboxItem) int { return cmp.Compare(a.ID, b.ID) })
	return items, nil
}

// checkOutboxItem validates an item to queue.
func checkOutboxItem(n casedesk.NewOutboxItem) error {
	switch {
	case n.TenantID == 0 || n.Kind == "":
		return casedesk.Errorf(casedesk.EINVALID, "tenant and kind are required")
	case !casedesk.ValidEmail(strings.TrimSpace(n.To)):
		return casedesk.Errorf(casedesk.EINVALID, "recipient %q is not an email address", clip(n.To, 100))
	case n.MessageID == "":
		return casedesk.Errorf(casedesk.EINVALID, "outbound mail needs its Message-ID")
	case len(n.Payload) > 0 && !json.Valid(n.Payload):
		return casedesk.Errorf(casedesk.EINVALID, "payload is not valid JSON")
	}
	return nil
}

// ClaimOutbox marks up to limit due items as sending, without an owner,
// and returns them; see ClaimOutboxFor.
func (t *tx) ClaimOutbox(ctx context.Context, limit int) ([]*casedesk.OutboxItem, error) {
	return t.ClaimOutboxFor(ctx, "", limit)
}

// ClaimOutboxFor marks up to limit due items as sending, claimed by owner
// ("" for none), and returns them. SKIP LOCKED lets concurrent workers (and
// replicas) pass over each other's rows, so every item goes to exactly one
// claimer.
func (t *tx) ClaimOutboxFor(ctx context.Context, owner string, limit int) ([]*casedesk.OutboxItem, error) {
	if limit <= 0 {
		return nil, casedesk.Errorf(casedesk.EINVALID, "claim limit must be positive")
	}
	if err := checkOwner(owner); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, `
		UPDATE outbox o SET state = 'sending', attempts = o.attempts + 1, claimed_at = $1,
			claimed_by = nullif($3, '')
		FROM (SELECT tenant_id AS due_tenant, id AS due_id FROM outbox
			WHERE state = 'pending' AND next_attempt_at <= $1
			ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
		WHERE o.tenant_id = due.due_tenant AND o.id = due.due_id
		RETURNING `+outboxColumns, t.now, limit, owner)
	if err != nil {
		return nil, wrap(err, "claim outbox")
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.OutboxItem, error) { return scanOutbox(r) })
	return items, wrap(err, "claim outbox")
}

// MarkOutboxSent records a delivered item.
func (t *tx) MarkOutboxSent(ctx context.Context, tenantID, id int64) error {
	return t.finishOutbox(ctx, tenantID, id, `state = 'sent', sent_at = $3, last_error = '', claimed_by = NULL`, t.now)
}

// RetryOutbox records a temporary failure; the item is due again at at.
func (t *tx) RetryOutbox(ctx context.Context, tenantID, id int64, errText string, at time.Time) error {
	return t.finishOutbox(ctx, tenantID, id, `state = 'pending', next_attempt_at = $3, last_error = $4, claimed_by = NULL`,
		at, clip(errText, maxHeaderBytes))
}

// FailOutbox records a permanent failure.
func (t *tx) FailOutbox(ctx context.Context, tenantID, id int64, errText string) error {
	return t.finishOutbox(ctx, tenantID, id, `state = 'failed', last_error = $3, claimed_by = NULL`,
		clip(errText, maxHeaderBytes))
}

// finishOutbox ends a claim. Only an item in "sending" can be finished: a
// second report on the same claim is ECONFLICT, an unknown item ENOTFOUND.
func (t *tx) finishOutbox(ctx context.Context, tenantID, id int64, set string, args ...any) error {
	tag, err := t.tx.Exec(ctx, `UPDATE outbox SET `+set+`
		WHERE tenant_id = $1 AND id = $2 AND state = 'sending'`, append([]any{tenantID, id}, args...)...)
	if err != nil {
		return wrap(err, "update outbox")
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	o, err := t.FindOutboxItem(ctx, tenantID, id)
	if err != nil {
		return err
	}
	return casedesk.Errorf(casedesk.ECONFLICT, "outbox item %d is %s, not sending", id, o.State)
}

// finishOutboxSQL ends the claims of several items, of any tenants, each
// with its own outcome, in one statement. Only items still in "sending" are
// written; the ordinals of those that were come back.
const finishOutboxSQL = `
UPDATE outbox o SET state = r.state,
	sent_at = CASE WHEN r.state = 'sent' THEN $6 ELSE o.sent_at END,
	next_attempt_at = CASE WHEN r.state = 'pending' THEN r.next_at ELSE o.next_attempt_at END,
	last_error = r.error, claimed_by = NULL
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[])
	WITH ORDINALITY AS r(tenant_id, id, state, next_at, error, ord)
WHERE o.tenant_id = r.tenant_id AND o.id = r.id AND o.state = 'sending'
RETURNING r.ord`

// FinishOutboxItems records the outcomes of claimed items in one statement;
// see casedesk.OutboxOps. Each item is written as MarkOutboxSent,
// RetryOutbox or FailOutbox would write it. When an item is not in
// "sending" (ECONFLICT) or does not exist (ENOTFOUND), the others may have
// been written already in this transaction: the caller must roll it back,
// as Update does when its function returns the error.
func (t *tx) FinishOutboxItems(ctx context.Context, results []casedesk.OutboxResult) error {
	if len(results) == 0 {
		return nil
	}
	if err := checkOutboxResults(results); err != nil {
		return err
	}
	n := len(results)
	tenants, ids, states, errs := make([]int64, n), make([]int64, n), make([]string, n), make([]string, n)
	nextAt := make([]*time.Time, n)
	for i, r := range results {
		tenants[i], ids[i], states[i] = r.TenantID, r.ID, string(r.State)
		if r.State == casedesk.OutboxPending {
			nextAt[i] = &r.NextAttemptAt
		}
		if r.State != casedesk.OutboxSent { // a sent item's last error is cleared
			errs[i] = clip(r.Error, maxHeaderBytes)
		}
	}
	rows, err := t.tx.Query(ctx, finishOutboxSQL, tenants, ids, states, nextAt, errs, t.now)
	if err != nil {
		return wrap(err, "finish outbox")
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return wrap(err, "finish outbox")
	}
	if len(done) == n {
		return nil
	}
	return t.unfinishedError(ctx, results, done)
}

// unfinishedError says why the first of results whose ordinal (from 1) is
// not among done was not written: ENOTFOUND, or ECONFLICT with its state.
func (t *tx) unfinishedError(ctx context.Context, results []casedesk.OutboxResult, done []int64) error {
	for i, r := range results {
		if slices.Contains(done, int64(i)+1) {
			continue
		}
		o, err := t.FindOutboxItem(ctx, r.TenantID, r.ID)
		if err != nil {
			return err
		}
		return casedesk.Errorf(casedesk.ECONFLICT, "outbox item %d is %s, not sending", r.ID, o.State)
	}
	return fmt.Errorf("finish outbox: %d of %d items written", len(done), len(results))
}

// checkOutboxResults validates outcomes to record: a known state, a due
// time for a retry, and each item named once.
func checkOutboxResults(results []casedesk.OutboxResult) error {
	type key struct{ tenant, id int64 }
	seen := make(map[key]bool, len(results))
	for i, r := range results {
		var err error
		switch {
		case r.TenantID == 0 || r.ID == 0:
			err = casedesk.Errorf(casedesk.EINVALID, "tenant and item are required")
		case r.State != casedesk.OutboxSent && r.State != casedesk.OutboxPending && r.State != casedesk.OutboxFailed:
			err = casedesk.Errorf(casedesk.EINVALID, "cannot finish an item as %q", clip(string(r.State), 100))
		case r.State == casedesk.OutboxPending && r.NextAttemptAt.IsZero():
			err = casedesk.Errorf(casedesk.EINVALID, "a retry needs its next attempt time")
		case seen[key{r.TenantID, r.ID}]:
			err = casedesk.Errorf(casedesk.EINVALID, "outbox item %d of tenant %d is named twice", r.ID, r.TenantID)
		}
		if err != nil {
			return itemError(err, "outbox result", i, len(results))
		}
		seen[key{r.TenantID, r.ID}] = true
	}
	return nil
}

// RequeueStuckOutbox makes items claimed before claimedBefore due again;
// see casedesk.OutboxOps. The outbox_sending index holds exactly the
// claimed items.
func (t *tx) RequeueStuckOutbox(ctx context.Context, claimedBefore time.Time) (int, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE outbox SET state = 'pending', next_attempt_at = $1,
			last_error = 'claimed at ' || to_char(claimed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') ||
				' UTC and never finished; sending again', claimed_by = NULL
		WHERE state = 'sending' AND claimed_at < $2`, t.now, claimedBefore)
	if err != nil {
		return 0, wrap(err, "requeue stuck outbox")
	}
	return int(tag.RowsAffected()), nil
}

// checkOwner validates the name of a claim's owner.
func checkOwner(owner string) error {
	if len(owner) > maxNameBytes || clean(owner) != owner {
		return casedesk.Errorf(casedesk.EINVALID, "outbox claim owner %q is not a valid name", clip(owner, 100))
	}
	return nil
}

// OutboxClaimOwners returns the owners of the items in "sending"; see
// casedesk.OutboxOps.
func (t *tx) OutboxClaimOwners(ctx context.Context) ([]string, error) {
	rows, err := t.tx.Query(ctx, `SELECT DISTINCT claimed_by FROM outbox
		WHERE state = 'sending' AND claimed_by IS NOT NULL ORDER BY claimed_by`)
	if err != nil {
		return nil, wrap(err, "list outbox claim owners")
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return owners, wrap(err, "list outbox claim owners")
}

// RequeueOutboxClaims makes the items owner claimed and never finished due
// now; see casedesk.OutboxOps.
func (t *tx) RequeueOutboxClaims(ctx context.Context, owner string) (int, error) {
	if owner == "" {
		return 0, casedesk.Errorf(casedesk.EINVALID, "requeueing claims needs their owner")
	}
	tag, err := t.tx.Exec(ctx, `UPDATE outbox SET state = 'pending', next_attempt_at = $1,
			last_error = 'claimed by worker ' || claimed_by || ', which stopped before finishing; sending again',
			claimed_by = NULL
		WHERE state = 'sending' AND claimed_by = $2`, t.now, owner)
	if err != nil {
		return 0, wrap(err, "requeue outbox claims")
	}
	return int(tag.RowsAffected()), nil
}

// UnmarkOutboxSent moves a sent item back to pending or failed; see
// casedesk.OutboxOps.
func (t *tx) UnmarkOutboxSent(ctx context.Context, r casedesk.OutboxResult) error {
	switch {
	case r.TenantID == 0 || r.ID == 0:
		return casedesk.Errorf(casedesk.EINVALID, "tenant and item are required")
	case r.State != casedesk.OutboxPending && r.State != casedesk.OutboxFailed:
		return casedesk.Errorf(casedesk.EINVALID, "a sent item can become pending or failed, not %q",
			clip(string(r.State), 100))
	case r.State == casedesk.OutboxPending && r.NextAttemptAt.IsZero():
		return casedesk.Errorf(casedesk.EINVALID, "a retry needs its next attempt time")
	}
	var nextAt *time.Time
	if r.State == casedesk.OutboxPending {
		nextAt = &r.NextAttemptAt
	}
	tag, err := t.tx.Exec(ctx, `UPDATE outbox SET state = $3, sent_at = NULL,
			next_attempt_at = coalesce($4, next_attempt_at), last_error = $5
		WHERE tenant_id = $1 AND id = $2 AND state = 'sent'`,
		r.TenantID, r.ID, string(r.State), nextAt, clip(r.Error, maxHeaderBytes))
	if err != nil {
		return wrap(err, "unmark outbox item sent")
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	o, err := t.FindOutboxItem(ctx, r.TenantID, r.ID)
	if err != nil {
		return err
	}
	return casedesk.Errorf(casedesk.ECONFLICT, "outbox item %d is %s, not sent", r.ID, o.State)
}

// FindOutboxItem returns an outbox item of the tenant.
func (t *tx) FindOutboxItem(ctx context.Context, tenantID, id int64) (*casedesk.OutboxItem, error) {
	o, err := scanOutbox(t.tx.QueryRow(ctx, `SELECT `+outboxColumns+` FROM outbox
		WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "outbox item %d not found", id)
	}
	return o, nil
}

// CountOutbox counts items of a kind to an address created since a time.
func (t *tx) CountOutbox(ctx context.Context, tenantID int64, kind casedesk.OutboxKind, to string, since time.Time) (int, error) {
	var n int
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM outbox
		WHERE tenant_id = $1 AND lower(to_addr) = lower($2) AND kind = $3 AND created_at >= $4`,
		tenantID, clean(strings.TrimSpace(to)), kind, since).Scan(&n)
	return n, wrap(err, "count outbox")
}

// CountOutboxTo counts, per recipient, the items of the kinds to the
// addresses created since a time, in one read of the outbox_recipient
// index; see casedesk.OutboxOps. Addresses are compared as CountOutbox
// compares them, and the map is keyed by the address lower-cased.
func (t *tx) CountOutboxTo(ctx context.Context, tenantID int64, kinds []casedesk.OutboxKind, to []string, since time.Time) (map[string]int, error) {
	out := make(map[string]int, len(to))
	if len(kinds) == 0 || len(to) == 0 {
		return out, nil
	}
	addrs := make([]string, 0, len(to))
	for _, a := range to {
		if a = strings.ToLower(clean(strings.TrimSpace(a))); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	ks := make([]string, len(kinds))
	for i, k := range kinds {
		ks[i] = string(k)
	}
	// One index probe per address and kind, each with equality on the
	// index's first three columns: a plain "= ANY" over the addresses is
	// left out of the index condition by the generic plans the pool uses
	// whenever the outbox has no statistics yet, and then every recent row
	// of the tenant is read.
	rows, err := t.tx.Query(ctx, `SELECT a.addr, sum(n.count)::int
		FROM unnest($2::text[]) AS a(addr) CROSS JOIN unnest($3::text[]) AS k(kind)
		CROSS JOIN LATERAL (SELECT count(*) FROM outbox o WHERE o.tenant_id = $1
			AND lower(o.to_addr) = a.addr AND o.kind = k.kind AND o.created_at >= $4) AS n
		GROUP BY a.addr HAVING sum(n.count) > 0`, tenantID, addrs, ks, since)
	if err != nil {
		return nil, wrap(err, "count outbox")
	}
	var addr string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&addr, &n}, func() error {
		out[addr] = n
		return nil
	})
	if err != nil {
		return nil, wrap(err, "count outbox")
	}
	return out, nil
}
