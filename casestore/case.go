package casestore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	c.pending_since, c.solved_at, c.closed_at, c.last_agent_reply_at, c.reminded_for,
	r.email, r.name, coalesce(a.name, ''), coalesce(u.name, '')`

const caseFrom = `cases c` + caseJoins

// caseJoins join the requester, account and assignee to a row set "c" of
// cases' columns.
const caseJoins = `
	JOIN contacts r ON r.tenant_id = c.tenant_id AND r.id = c.requester_id
	LEFT JOIN accounts a ON a.tenant_id = c.tenant_id AND a.id = c.account_id
	LEFT JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.assignee_id`

// scanCase scans caseColumns plus any extra destinations.
func scanCase(row pgx.Row, extra ...any) (*casedesk.Case, error) {
	var c casedesk.Case
	var firstResp, pending, solved, closed, lastAgent, reminded *time.Time
	req := &casedesk.Contact{}
	dest := []any{&c.TenantID, &c.ID, &c.Number, &c.Subject, &c.Status, &c.Priority, &c.Category,
		&c.RequesterID, &c.AccountID, &c.AssigneeID, &c.Fields,
		&c.FollowUpOf, &c.MergedInto, &c.ErrorFingerprint,
		&c.Occurrences, &c.MessageCount, &c.CreatedAt, &c.UpdatedAt, &firstResp,
		&pending, &solved, &closed, &lastAgent, &reminded,
		&req.Email, &req.Name, &c.AccountName, &c.AssigneeName}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	c.FirstResponseAt, c.PendingSince = timeOf(firstResp), timeOf(pending)
	c.SolvedAt, c.ClosedAt, c.LastAgentReplyAt = timeOf(solved), timeOf(closed), timeOf(lastAgent)
	c.RemindedFor = timeOf(reminded)
	req.ID, req.TenantID, req.AccountID = c.RequesterID, c.TenantID, c.AccountID
	c.Requester = req
	return &c, nil
}

// CreateCase allocates the next number from the tenant's counter row; see
// CreateCases.
func (t *tx) CreateCase(ctx context.Context, n casedesk.NewCase) (*casedesk.Case, error) {
	cs, err := t.CreateCases(ctx, []casedesk.NewCase{n})
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// createCasesSQL creates a batch of cases of one tenant in one statement.
// It takes all their numbers with one update of the tenant's counter row,
// which stays locked until the transaction ends: concurrent creators queue
// behind it, and a rollback gives the numbers back, so there are no gaps
// and no repeats. Then it inserts the cases in input order, their
// requesters as participants and their created events, and returns the
// cases as FindCase reads them. An unknown tenant has no counter row, and
// nothing is written.
const createCasesSQL = `
WITH counter AS (
	UPDATE case_counters SET last_number = last_number + $2::bigint
	WHERE tenant_id = $1 RETURNING last_number - $2::bigint AS base
), input AS (
	SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
		$8::bigint[], $9::bigint[], $10::text[], $11::bigint[], $12::text[])
	WITH ORDINALITY AS i(subject, status, priority, category, requester_id, account_id,
		assignee_id, fields, follow_up_of, error_fingerprint, ord)
), c AS (
	INSERT INTO cases (tenant_id, number, subject, status, priority, category, requester_id,
		account_id, assignee_id, fields, follow_up_of, error_fingerprint, created_at, updated_at,
		pending_since)
	SELECT $1, counter.base + i.ord, i.subject, i.status, i.priority, i.category, i.requester_id,
		coalesce(i.account_id,
			(SELECT ct.account_id FROM contacts ct WHERE ct.tenant_id = $1 AND ct.id = i.requester_id)),
		i.assignee_id, i.fields::jsonb, i.follow_up_of, i.error_fingerprint, $13, $13,
		CASE WHEN i.status = 'pending' THEN $13::timestamptz END
	FROM counter, input i ORDER BY i.ord
	RETURNING *
), p AS (
	INSERT INTO case_participants (tenant_id, case_id, contact_id, added_at)
	SELECT tenant_id, id, requester_id, $13 FROM c
	ON CONFLICT DO NOTHING
), e AS (
	INSERT INTO events (tenant_id, case_id, kind, actor, data, created_at)
	SELECT tenant_id, id, $14, $15::jsonb, jsonb_build_object('number', number, 'status', status), $13
	FROM c ORDER BY number
)
SELECT ` + caseColumns + ` FROM c` + caseJoins + `
ORDER BY c.number`

// CreateCases creates cases of one tenant, numbered consecutively in input
// order, in one statement; see casedesk.CaseOps.
func (t *tx) CreateCases(ctx context.Context, ns []casedesk.NewCase) ([]*casedesk.Case, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	cols, err := newCaseInput(ns)
	if err != nil {
		return nil, err
	}
	actor, _ := json.Marshal(casedesk.SystemActor)
	tenantID := ns[0].TenantID
	rows, err := t.tx.Query(ctx, createCasesSQL, append([]any{tenantID, len(ns)},
		append(cols.args(), t.now, casedesk.EventCreated, string(actor))...)...)
	if err != nil {
		return nil, wrap(err, "create cases")
	}
	cases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Case, error) { return scanCase(r) })
	switch {
	case err != nil:
		return nil, wrap(err, "create cases")
	case len(cases) == 0:
		return nil, casedesk.Errorf(casedesk.ENOTFOUND, "tenant %d not found", tenantID)
	case len(cases) != len(ns):
		return nil, fmt.Errorf("create cases: %d of %d cases created", len(cases), len(ns))
	}
	return cases, nil
}

// caseInput holds the per-column arrays of createCasesSQL.
type caseInput struct {
	subject, status, priority, category, fields []string
	requester                                   []int64
	account, assignee, followUpOf               []*int64
	fingerprint                                 []*string
}

// newCaseInput validates the new cases of a batch, all of one tenant,
// and cleans them into the columns of createCasesSQL. The input is not
// changed.
func newCaseInput(ns []casedesk.NewCase) (*caseInput, error) {
	c := &caseInput{}
	for i, n := range ns {
		if err := n.Validate(); err != nil {
			return nil, itemError(err, "case", i, len(ns))
		}
		if n.TenantID != ns[0].TenantID {
			return nil, casedesk.Errorf(casedesk.EINVALID, "one batch holds cases of one tenant")
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
		c.subject = append(c.subject, clip(n.Subject, maxSubjectBytes))
		c.status, c.priority = append(c.status, string(n.Status)), append(c.priority, string(n.Priority))
		c.category = append(c.category, clip(n.Category, maxNameBytes))
		c.requester = append(c.requester, n.RequesterID)
		c.account, c.assignee = append(c.account, nullID(n.AccountID)), append(c.assignee, nullID(n.AssigneeID))
		c.fields, c.followUpOf = append(c.fields, string(fields)), append(c.followUpOf, nullID(n.FollowUpOf))
		c.fingerprint = append(c.fingerprint, fp)
	}
	return c, nil
}

func (c *caseInput) args() []any {
	return []any{c.subject, c.status, c.priority, c.category, c.requester, c.account, c.assignee,
		c.fields, c.followUpOf, c.fingerprint}
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
	// The row is locked, so the change cannot meet a concurrent one.
	err = t.ChangeStatuses(ctx, tenantID, []casedesk.StatusChange{{CaseID: caseID, From: from, To: to, By: by}})
	if err != nil {
		return nil, err
	}
	return t.FindCase(ctx, tenantID, caseID)
}

// changeStatusesSQL moves each case of $2 from the status in $3 to the one
// in $4 and writes the events of the changes ($7..$10) of the cases it
// moved, in input order. A case no longer in its from status is left alone
// (its row is checked again after waiting for a concurrent writer). It
// returns the cases it did not move, and whether they exist at all.
const changeStatusesSQL = `
WITH moves AS (
	SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::boolean[])
		AS m(case_id, first_from, last_to, stamp_solved)
), moved AS (
	UPDATE cases c SET status = m.last_to, updated_at = $6::timestamptz,
		pending_since = CASE WHEN m.last_to = 'pending' THEN $6::timestamptz END,
		solved_at = CASE WHEN m.stamp_solved THEN $6::timestamptz
			WHEN m.last_to = 'closed' THEN c.solved_at END,
		closed_at = CASE WHEN m.last_to = 'closed' THEN $6::timestamptz END
	FROM moves m
	WHERE c.tenant_id = $1 AND c.id = m.case_id AND c.status = m.first_from
	RETURNING c.id
), e AS (
	INSERT INTO events (tenant_id, case_id, kind, actor, data, created_at)
	SELECT $1, i.case_id, $11, i.actor::jsonb, jsonb_build_object('from', i.from_status, 'to', i.to_status), $6
	FROM unnest($7::bigint[], $8::text[], $9::text[], $10::text[])
		WITH ORDINALITY AS i(case_id, from_status, to_status, actor, ord)
	WHERE i.case_id IN (SELECT id FROM moved)
	ORDER BY i.ord
)
SELECT m.case_id, m.first_from, EXISTS (SELECT 1 FROM cases c WHERE c.tenant_id = $1 AND c.id = m.case_id)
FROM moves m WHERE m.case_id NOT IN (SELECT id FROM moved)
ORDER BY m.case_id`

// ChangeStatuses applies status changes in one statement; see
// casedesk.CaseOps. A change to the status the case is in is not allowed
// (EINVALID), as CheckTransition says: the caller names From, so such a
// change is a mistake, not a no-op. An unknown case, or one of another
// tenant, is ENOTFOUND, as in ChangeStatus. The timestamps end as if
// ChangeStatus had made the changes one after another.
func (t *tx) ChangeStatuses(ctx context.Context, tenantID int64, changes []casedesk.StatusChange) error {
	if len(changes) == 0 {
		return nil
	}
	moves, err := planMoves(changes)
	if err != nil {
		return err
	}
	n := len(changes)
	caseIDs, froms, tos, actors := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	for i, ch := range changes {
		actor, err := json.Marshal(ch.By)
		if err != nil {
			return fmt.Errorf("event actor: %w", err)
		}
		caseIDs[i], froms[i], tos[i], actors[i] = ch.CaseID, string(ch.From), string(ch.To), string(actor)
	}
	rows, err := t.tx.Query(ctx, changeStatusesSQL, append(moves.args(tenantID), t.now,
		caseIDs, froms, tos, actors, casedesk.EventStatusChanged)...)
	if err != nil {
		return wrap(err, "change statuses")
	}
	var caseID int64
	var from string
	var exists bool
	var missing, raced []string
	_, err = pgx.ForEachRow(rows, []any{&caseID, &from, &exists}, func() error {
		if !exists {
			missing = append(missing, fmt.Sprintf("case %d not found", caseID))
		} else {
			raced = append(raced, fmt.Sprintf("case %d is no longer %s", caseID, from))
		}
		return nil
	})
	switch {
	case err != nil:
		return wrap(err, "change statuses")
	case len(missing) > 0:
		return casedesk.Errorf(casedesk.ENOTFOUND, "%s", strings.Join(missing, ", "))
	case len(raced) > 0:
		return casedesk.Errorf(casedesk.ECONFLICT, "case status changed concurrently (%s); roll back and read again",
			strings.Join(raced, ", "))
	}
	return nil
}

// caseMoves are where a batch of status changes takes each case: from the
// From of its first change to the To of its last, ordered by case ID so
// that concurrent batches lock rows in the same order.
type caseMoves struct {
	caseIDs     []int64
	from, to    []string
	stampSolved []bool // solved_at becomes now; otherwise closed keeps it and the rest clear it
}

// planMoves checks each change and that each follows on from the previous
// change of its case, and folds the changes of each case into one move.
func planMoves(changes []casedesk.StatusChange) (*caseMoves, error) {
	type move struct {
		from, to    casedesk.Status
		stampSolved bool
	}
	byCase := make(map[int64]*move, len(changes))
	for i, ch := range changes {
		if err := casedesk.CheckTransition(ch.From, ch.To); err != nil {
			return nil, itemError(err, "change", i, len(changes))
		}
		m := byCase[ch.CaseID]
		switch {
		case m == nil:
			m = &move{from: ch.From}
			byCase[ch.CaseID] = m
		case m.to != ch.From:
			return nil, casedesk.Errorf(casedesk.EINVALID,
				"change %d: case %d is %s after its previous change, not %s", i, ch.CaseID, m.to, ch.From)
		}
		m.to = ch.To
		// As ChangeStatus stamps solved_at: now on solving, kept on
		// closing, cleared on any other move.
		switch ch.To {
		case casedesk.StatusSolved:
			m.stampSolved = true
		case casedesk.StatusClosed:
		default:
			m.stampSolved = false
		}
	}
	ids := slices.Sorted(maps.Keys(byCase))
	out := &caseMoves{caseIDs: ids}
	for _, id := range ids {
		m := byCase[id]
		out.from, out.to = append(out.from, string(m.from)), append(out.to, string(m.to))
		out.stampSolved = append(out.stampSolved, m.stampSolved)
	}
	return out, nil
}

func (m *caseMoves) args(tenantID int64) []any {
	return []any{tenantID, m.caseIDs, m.from, m.to, m.stampSolved}
}

// AddParticipants adds contacts to a case; ones already on it are skipped.
func (t *tx) AddParticipants(ctx context.Context, tenantID, caseID int64, contactIDs ...int64) error {
	ps := make([]casedesk.CaseParticipant, len(contactIDs))
	for i, id := range contactIDs {
		ps[i] = casedesk.CaseParticipant{CaseID: caseID, ContactID: id}
	}
	return t.AddCaseParticipants(ctx, tenantID, ps)
}

// AddCaseParticipants adds contacts to cases of the tenant in one
// statement; pairs already present are skipped. A case or contact of
// another tenant breaks a foreign key: EINVALID, as for AddParticipants.
// Rows go in (case, contact) order, so that concurrent batches meet in the
// same order.
func (t *tx) AddCaseParticipants(ctx context.Context, tenantID int64, ps []casedesk.CaseParticipant) error {
	if len(ps) == 0 {
		return nil
	}
	caseIDs, contactIDs := make([]int64, len(ps)), make([]int64, len(ps))
	for i, p := range ps {
		caseIDs[i], contactIDs[i] = p.CaseID, p.ContactID
	}
	_, err := t.tx.Exec(ctx, `
		INSERT INTO case_participants (tenant_id, case_id, contact_id, added_at)
		SELECT $1, p.case_id, p.contact_id, $4
		FROM unnest($2::bigint[], $3::bigint[]) AS p(case_id, contact_id)
		ORDER BY p.case_id, p.contact_id
		ON CONFLICT DO NOTHING`, tenantID, caseIDs, contactIDs, t.now)
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
