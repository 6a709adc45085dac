package casestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// SetPriority changes a case's priority under a row lock and writes a
// priority_changed event with the old and the new priority.
func (t *tx) SetPriority(ctx context.Context, tenantID, caseID int64, p casedesk.Priority, by casedesk.Actor) (*casedesk.Case, error) {
	if !p.Valid() {
		return nil, casedesk.Errorf(casedesk.EINVALID, "unknown priority %q", clip(string(p), 100))
	}
	var from casedesk.Priority
	err := t.tx.QueryRow(ctx, `SELECT priority FROM cases WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
		tenantID, caseID).Scan(&from)
	if err != nil {
		return nil, notFound(err, "case %d not found", caseID)
	}
	if from == p {
		return t.FindCase(ctx, tenantID, caseID)
	}
	_, err = t.tx.Exec(ctx, `UPDATE cases SET priority = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
		tenantID, caseID, p, t.now)
	if err != nil {
		return nil, wrap(err, "set priority")
	}
	return t.caseChanged(ctx, tenantID, caseID, casedesk.EventPriority, by, map[string]any{"from": from, "to": p})
}

// AssignCase sets a case's assignee under a row lock and writes an assigned
// event whose "from" and "to" are user IDs, 0 for nobody. The assignee's
// user and role rows are locked too (FOR SHARE), so that a concurrent
// deactivation or role change waits for this transaction instead of
// leaving the case with an assignee who is no agent.
func (t *tx) AssignCase(ctx context.Context, tenantID, caseID, userID int64, by casedesk.Actor) (*casedesk.Case, error) {
	if userID < 0 {
		return nil, casedesk.Errorf(casedesk.EINVALID, "no such agent %d", userID)
	}
	var from int64
	err := t.tx.QueryRow(ctx, `SELECT coalesce(assignee_id, 0) FROM cases WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
		tenantID, caseID).Scan(&from)
	if err != nil {
		return nil, notFound(err, "case %d not found", caseID)
	}
	if from == userID {
		return t.FindCase(ctx, tenantID, caseID)
	}
	if userID != 0 {
		if err := t.checkAgent(ctx, tenantID, userID); err != nil {
			return nil, err
		}
	}
	_, err = t.tx.Exec(ctx, `UPDATE cases SET assignee_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
		tenantID, caseID, nullID(userID), t.now)
	if err != nil {
		return nil, wrap(err, "assign case")
	}
	return t.caseChanged(ctx, tenantID, caseID, casedesk.EventAssigned, by, map[string]any{"from": from, "to": userID})
}

// checkAgent returns nil if the user is an active agent of the tenant, and
// EINVALID otherwise; a user of another tenant is "no such agent", exactly
// like one that does not exist.
func (t *tx) checkAgent(ctx context.Context, tenantID, userID int64) error {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u
		JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
		WHERE u.tenant_id = $1 AND u.id = $2 FOR SHARE OF u, r`, tenantID, userID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return casedesk.Errorf(casedesk.EINVALID, "no such agent %d", userID)
	case err != nil:
		return wrap(err, "find assignee")
	case !u.Active:
		return casedesk.Errorf(casedesk.EINVALID, "user %d is not active", userID)
	case !u.IsAgent():
		return casedesk.Errorf(casedesk.EINVALID, "user %d may not reply to cases (role %s)", userID, u.Role.Name)
	}
	return nil
}

// caseChanged writes the event of a change to a case and returns the case
// as it is now.
func (t *tx) caseChanged(ctx context.Context, tenantID, caseID int64, kind string, by casedesk.Actor, data map[string]any) (*casedesk.Case, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%s event: %w", kind, err)
	}
	_, err = t.AddEvent(ctx, casedesk.Event{TenantID: tenantID, CaseID: caseID, Kind: kind, Actor: by, Data: b})
	if err != nil {
		return nil, err
	}
	return t.FindCase(ctx, tenantID, caseID)
}

// mergedCase is what MergeCase reads of the two cases it merges.
type mergedCase struct {
	id, number, mergedInto int64
	status                 casedesk.Status
}

// mergeCaseSQL moves case $2's messages and participants (its requester
// among them) to case $3 and closes $2 as merged into $3. Cases merged into
// $2 earlier now point at $3 too, where their mail went: chains of merges
// stay one step long. Both cases are locked by the caller, and the six
// parts touch different rows, as a statement's parts must. Attachments and
// raw bytes belong to messages by ID, so they move with them; events stay
// where they were written. It returns the number of messages moved.
const mergeCaseSQL = `
WITH moved AS (
	UPDATE messages SET case_id = $3 WHERE tenant_id = $1 AND case_id = $2
	RETURNING id
), left_case AS (
	DELETE FROM case_participants WHERE tenant_id = $1 AND case_id = $2
	RETURNING contact_id
), joined AS (
	INSERT INTO case_participants (tenant_id, case_id, contact_id, added_at)
	SELECT $1, $3, x.contact_id, $4
	FROM (SELECT contact_id FROM left_case
		UNION SELECT requester_id FROM cases WHERE tenant_id = $1 AND id = $2) AS x
	ORDER BY x.contact_id
	ON CONFLICT DO NOTHING
), into_case AS (
	UPDATE cases SET message_count = message_count + (SELECT count(*) FROM moved), updated_at = $4
	WHERE tenant_id = $1 AND id = $3
), from_case AS (
	UPDATE cases SET merged_into = $3, status = 'closed', message_count = 0, updated_at = $4,
		pending_since = NULL, closed_at = CASE WHEN status = 'closed' THEN closed_at ELSE $4 END
	WHERE tenant_id = $1 AND id = $2
), repointed AS (
	UPDATE cases SET merged_into = $3, updated_at = $4
	WHERE tenant_id = $1 AND merged_into = $2
)
SELECT count(*) FROM moved`

// MergeCase merges case fromID into case intoID; see casedesk.CaseOps.
// Both rows are locked in ID order, so that concurrent merges of the same
// cases queue instead of deadlocking, and checked after the lock, so that
// of two merges of A into B and B into A one fails. The merge bypasses the
// lifecycle: any status becomes closed, with a status_changed event.
// Pending outbox rows of from are left as they are. The timestamps of into
// (first response, pending, last agent reply) are its own conversation's
// and do not change.
func (t *tx) MergeCase(ctx context.Context, tenantID, fromID, intoID int64, by casedesk.Actor) (*casedesk.Case, error) {
	if fromID == intoID {
		return nil, casedesk.Errorf(casedesk.EINVALID, "a case cannot be merged into itself")
	}
	from, into, err := t.lockMerge(ctx, tenantID, fromID, intoID)
	if err != nil {
		return nil, err
	}
	var moved int64
	if err := t.tx.QueryRow(ctx, mergeCaseSQL, tenantID, fromID, intoID, t.now).Scan(&moved); err != nil {
		return nil, wrap(err, "merge case")
	}
	data, _ := json.Marshal(map[string]any{"from": from.number, "into": into.number, "messages": moved})
	events := []casedesk.Event{
		{TenantID: tenantID, CaseID: fromID, Kind: casedesk.EventMerged, Actor: by, Data: data},
		{TenantID: tenantID, CaseID: intoID, Kind: casedesk.EventMerged, Actor: by, Data: data},
	}
	if from.status != casedesk.StatusClosed {
		closed, _ := json.Marshal(map[string]any{"from": from.status, "to": casedesk.StatusClosed})
		events = append(events, casedesk.Event{TenantID: tenantID, CaseID: fromID,
			Kind: casedesk.EventStatusChanged, Actor: by, Data: closed})
	}
	if _, err := t.AddEvents(ctx, events); err != nil {
		return nil, err
	}
	return t.FindCase(ctx, tenantID, intoID)
}

// lockMerge locks the two cases of a merge and checks that it is allowed.
func (t *tx) lockMerge(ctx context.Context, tenantID, fromID, intoID int64) (from, into *mergedCase, err error) {
	rows, err := t.tx.Query(ctx, `SELECT id, number, status, coalesce(merged_into, 0) FROM cases
		WHERE tenant_id = $1 AND id IN ($2, $3) ORDER BY id FOR UPDATE`, tenantID, fromID, intoID)
	if err != nil {
		return nil, nil, wrap(err, "lock cases")
	}
	cases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*mergedCase, error) {
		var c mergedCase
		return &c, r.Scan(&c.id, &c.number, &c.status, &c.mergedInto)
	})
	if err != nil {
		return nil, nil, wrap(err, "lock cases")
	}
	for _, c := range cases {
		if c.id == fromID {
			from = c
		} else {
			into = c
		}
	}
	switch {
	case from == nil:
		return nil, nil, casedesk.Errorf(casedesk.ENOTFOUND, "case %d not found", fromID)
	case into == nil:
		return nil, nil, casedesk.Errorf(casedesk.ENOTFOUND, "case %d not found", intoID)
	case from.mergedInto != 0:
		return nil, nil, casedesk.Errorf(casedesk.EINVALID, "case #%d is merged already", from.number)
	case into.mergedInto != 0:
		return nil, nil, casedesk.Errorf(casedesk.EINVALID, "case #%d is merged into another case; merge into that one", into.number)
	}
	return from, into, nil
}
