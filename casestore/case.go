package casestore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// caseColumns are read from "cases c" joined with the requester "r", the
// account "a" and the assignee "u" (see caseFrom).
const caseColumns = `c.tenant_id, c.id, c.number, c.subject, c.status, c.priority, c.category,
	c.requester_id, coalesce(c.account_id, 0), coalesce(c.assignee_id, 0), c.fields,
	coalesce(c.follow_up_of, 0), coalesce(c.merged_into, 0), coalesce(c.error_fingerprint, ''),
	c.occurrences, c.message_count, c.created_at, c.updated_at, c.first_response_at,
	c.pending_since, c.solved_at, c.closed_at, c.last_agent_reply_at,
	r.email, r.name, coalesce(a.name, ''), coalesce(u.name, '')`

const caseFrom = `cases c
	JOIN contacts r ON r.tenant_id = c.tenant_id AND r.id = c.requester_id
	LEFT JOIN accounts a ON a.tenant_id = c.tenant_id AND a.id = c.account_id
	LEFT JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.assignee_id`

// scanCase scans caseColumns plus any extra destinations.
func scanCase(row pgx.Row, extra ...any) (*casedesk.Case, error) {
	var c casedesk.Case
	var firstResp, pending, solved, closed, lastAgent *time.Time
	req := &casedesk.Contact{}
	dest := []any{&c.TenantID, &c.ID, &c.Number, &c.Subject, &c.Status, &c.Priority, &c.Category,
		&c.RequesterID, &c.AccountID, &c.AssigneeID, &c.Fields,
		&c.FollowUpOf, &c.MergedInto, &c.ErrorFingerprint,
		&c.Occurrences, &c.MessageCount, &c.CreatedAt, &c.UpdatedAt, &firstResp,
		&pending, &solved, &closed, &lastAgent,
		&req.Email, &req.Name, &c.AccountName, &c.AssigneeName}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	c.FirstResponseAt, c.PendingSince = timeOf(firstResp), timeOf(pending)
	c.SolvedAt, c.ClosedAt, c.LastAgentReplyAt = timeOf(solved), timeOf(closed), timeOf(lastAgent)
	req.ID, req.TenantID, req.AccountID = c.RequesterID, c.TenantID, c.AccountID
	c.Requester = req
	return &c, nil
}

// CreateCase allocates the next number from the tenant's counter row. The
// row stays locked until this transaction ends, so concurrent creators queue
// behind it, and a rollback gives the number back: no gaps, no repeats.
func (t *tx) CreateCase(ctx context.Context, n casedesk.NewCase) (*casedesk.Case, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	var number int64
	err := t.tx.QueryRow(ctx, `UPDATE case_counters SET last_number = last_number + 1
		WHERE tenant_id = $1 RETURNING last_number`, n.TenantID).Scan(&number)
	if err != nil {
		return nil, notFound(err, "tenant %d not found", n.TenantID)
	}
	fields := n.Fields
	if len(fields) == 0 {
		fields = json.RawMessage(`{}`)
	}
	var fp *string
	if n.ErrorFingerprint != "" {
		s := clip(n.ErrorFingerprint, maxHeaderBytes)
		fp = &s
	}
	var id int64
	err = t.tx.QueryRow(ctx, `
		INSERT INTO cases (tenant_id, number, subject, status, priority, category, requester_id,
			account_id, assignee_id, fields, follow_up_of, error_fingerprint, created_at, updated_at,
			pending_since)
		VALUES ($1, $2, $3, $4, $5, $6, $7,
			coalesce($8, (SELECT account_id FROM contacts WHERE tenant_id = $1 AND id = $7)),
			$9, $10, $11, $12, $13, $13, CASE WHEN $4 = 'pending' THEN $13::timestamptz END)
		RETURNING id`,
		n.TenantID, number, clip(n.Subject, maxSubjectBytes), n.Status, n.Priority,
		clip(n.Category, maxNameBytes), n.RequesterID, nullID(n.AccountID), nullID(n.AssigneeID),
		fields, nullID(n.FollowUpOf), fp, t.now).Scan(&id)
	if err != nil {
		return nil, wrap(err, "create case")
	}
	if err := t.AddParticipants(ctx, n.TenantID, id, n.RequesterID); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(map[string]any{"number": number, "status": n.Status})
	if _, err := t.AddEvent(ctx, casedesk.Event{TenantID: n.TenantID, CaseID: id,
		Kind: casedesk.EventCreated, Actor: casedesk.Actor{Kind: casedesk.AuthorSystem}, Data: data}); err != nil {
		return nil, err
	}
	return t.FindCase(ctx, n.TenantID, id)
}

// FindCase returns a case of the tenant by ID.
func (t *tx) FindCase(ctx context.Context, tenantID, id int64) (*casedesk.Case, error) {
	c, err := scanCase(t.tx.QueryRow(ctx,
		`SELECT `+caseColumns+` FROM `+caseFrom+` WHERE c.tenant_id = $1 AND c.id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "case %d not found", id)
	}
	return c, nil
}

// FindCaseByNumber returns a case of the tenant by its number.
func (t *tx) FindCaseByNumber(ctx context.Context, tenantID, number int64) (*casedesk.Case, error) {
	c, err := scanCase(t.tx.QueryRow(ctx,
		`SELECT `+caseColumns+` FROM `+caseFrom+` WHERE c.tenant_id = $1 AND c.number = $2`, tenantID, number))
	if err != nil {
		return nil, notFound(err, "case #%d not found", number)
	}
	return c, nil
}

// ChangeStatus moves a case to another status under a row lock, stamps the
// lifecycle timestamps and writes a status_changed event.
func (t *tx) ChangeStatus(ctx context.Context, tenantID, caseID int64, to casedesk.Status, by casedesk.Actor) (*casedesk.Case, error) {
	var from casedesk.Status
	err := t.tx.QueryRow(ctx, `SELECT status FROM cases WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
		tenantID, caseID).Scan(&from)
	if err != nil {
		return nil, notFound(err, "case %d not found", caseID)
	}
	if from == to {
		return t.FindCase(ctx, tenantID, caseID)
	}
	if err := casedesk.CheckTransition(from, to); err != nil {
		return nil, err
	}
	_, err = t.tx.Exec(ctx, `
		UPDATE cases SET status = $3::text, updated_at = $4::timestamptz,
			pending_since = CASE WHEN $3 = 'pending' THEN $4 END,
			solved_at = CASE WHEN $3 = 'solved' THEN $4 WHEN $3 = 'closed' THEN solved_at END,
			closed_at = CASE WHEN $3 = 'closed' THEN $4 END
		WHERE tenant_id = $1 AND id = $2`, tenantID, caseID, to, t.now)
	if err != nil {
		return nil, wrap(err, "change status")
	}
	data, _ := json.Marshal(map[string]any{"from": from, "to": to})
	if _, err := t.AddEvent(ctx, casedesk.Event{TenantID: tenantID, CaseID: caseID,
		Kind: casedesk.EventStatusChanged, Actor: by, Data: data}); err != nil {
		return nil, err
	}
	return t.FindCase(ctx, tenantID, caseID)
}

// AddParticipants adds contacts to a case; ones already on it are skipped.
func (t *tx) AddParticipants(ctx context.Context, tenantID, caseID int64, contactIDs ...int64) error {
	if len(contactIDs) == 0 {
		return nil
	}
	_, err := t.tx.Exec(ctx, `
		INSERT INTO case_participants (tenant_id, case_id, contact_id, added_at)
		SELECT $1, $2, unnest($3::bigint[]), $4
		ON CONFLICT DO NOTHING`, tenantID, caseID, contactIDs, t.now)
	return wrap(err, "add participants")
}

// ListParticipants returns the contacts on a case in the order they joined.
func (t *tx) ListParticipants(ctx context.Context, tenantID, caseID int64) ([]*casedesk.Contact, error) {
	// The two tables share only tenant_id, so the contact columns need no prefix.
	rows, err := t.tx.Query(ctx, `SELECT `+contactColumns+`
		FROM contacts JOIN case_participants p USING (tenant_id)
		WHERE tenant_id = $1 AND p.case_id = $2 AND p.contact_id = contacts.id
		ORDER BY p.added_at, contacts.id`, tenantID, caseID)
	if err != nil {
		return nil, wrap(err, "list participants")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Contact, error) { return scanContact(r) })
	return out, wrap(err, "list participants")
}

// AddEvent appends an event to a case's history.
func (t *tx) AddEvent(ctx context.Context, e casedesk.Event) (*casedesk.Event, error) {
	if e.Kind == "" {
		return nil, casedesk.Errorf(casedesk.EINVALID, "event kind is required")
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage(`{}`)
	}
	if !json.Valid(e.Data) {
		return nil, casedesk.Errorf(casedesk.EINVALID, "event data is not valid JSON")
	}
	actor, err := json.Marshal(e.Actor)
	if err != nil {
		return nil, fmt.Errorf("event actor: %w", err)
	}
	e.CreatedAt = t.now
	err = t.tx.QueryRow(ctx, `
		INSERT INTO events (tenant_id, case_id, kind, actor, data, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		e.TenantID, e.CaseID, clip(e.Kind, maxNameBytes), actor, e.Data, t.now).Scan(&e.ID)
	if err != nil {
		return nil, wrap(err, "add event")
	}
	return &e, nil
}

// ListEvents returns a case's history, oldest first.
func (t *tx) ListEvents(ctx context.Context, tenantID, caseID int64) ([]*casedesk.Event, error) {
	rows, err := t.tx.Query(ctx, `SELECT tenant_id, id, case_id, kind, actor, data, created_at
		FROM events WHERE tenant_id = $1 AND case_id = $2 ORDER BY id`, tenantID, caseID)
	if err != nil {
		return nil, wrap(err, "list events")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Event, error) {
		var e casedesk.Event
		var actor []byte
		if err := r.Scan(&e.TenantID, &e.ID, &e.CaseID, &e.Kind, &actor, &e.Data, &e.CreatedAt); err != nil {
			return nil, err
		}
		return &e, json.Unmarshal(actor, &e.Actor)
	})
	return out, wrap(err, "list events")
}
