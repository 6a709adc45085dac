package casestore

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// FindCasesByNumbers returns the tenant's cases among numbers; see
// casedesk.CaseOps.
func (t *tx) FindCasesByNumbers(ctx context.Context, tenantID int64, numbers []int64) ([]*casedesk.Case, error) {
	return t.findCases(ctx, "c.number", tenantID, numbers)
}

// FindCasesByIDs returns the tenant's cases among ids; see casedesk.CaseOps.
func (t *tx) FindCasesByIDs(ctx context.Context, tenantID int64, ids []int64) ([]*casedesk.Case, error) {
	return t.findCases(ctx, "c.id", tenantID, ids)
}

// findCases reads the cases whose column (one of the constants above, never
// input) is among keys, filled exactly as FindCase fills one.
func (t *tx) findCases(ctx context.Context, column string, tenantID int64, keys []int64) ([]*casedesk.Case, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT `+caseColumns+` FROM `+caseFrom+`
		WHERE c.tenant_id = $1 AND `+column+` = ANY($2::bigint[])`, tenantID, keys)
	if err != nil {
		return nil, wrap(err, "find cases")
	}
	cases, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Case, error) { return scanCase(r) })
	return cases, wrap(err, "find cases")
}

// participantEmailsSQL reads the parties of several cases in one statement.
// A contact's lower-cased email is unique within a tenant (contacts_email),
// so selecting each contact once gives each address once. The requester is
// named on its own as well, so it counts even if its participant row is
// missing. Each contact is read by its primary key: joining the tenant's
// contacts instead lets the planner scan all of them for every case.
const participantEmailsSQL = `
SELECT c.id,
	ARRAY(SELECT (SELECT lower(ct.email) FROM contacts ct WHERE ct.tenant_id = c.tenant_id AND ct.id = x.contact_id)
		FROM (SELECT p.contact_id FROM case_participants p WHERE p.tenant_id = c.tenant_id AND p.case_id = c.id
			UNION SELECT c.requester_id) AS x
		ORDER BY 1),
	ARRAY(SELECT DISTINCT lower(d) FROM unnest(a.domains) AS d ORDER BY 1)
FROM cases c
	LEFT JOIN accounts a ON a.tenant_id = c.tenant_id AND a.id = c.account_id
WHERE c.tenant_id = $1 AND c.id = ANY($2::bigint[])`

// ParticipantEmails returns the participants' addresses and account domains
// of the tenant's cases among caseIDs; see casedesk.CaseOps.
func (t *tx) ParticipantEmails(ctx context.Context, tenantID int64, caseIDs []int64) (map[int64]casedesk.CaseParties, error) {
	out := make(map[int64]casedesk.CaseParties, len(caseIDs))
	if len(caseIDs) == 0 {
		return out, nil
	}
	rows, err := t.tx.Query(ctx, participantEmailsSQL, tenantID, caseIDs)
	if err != nil {
		return nil, wrap(err, "participant emails")
	}
	var id int64
	var p casedesk.CaseParties
	_, err = pgx.ForEachRow(rows, []any{&id, &p.Emails, &p.AccountDomains}, func() error {
		out[id] = p
		// Fresh slices for the next row, so no two entries share one.
		p = casedesk.CaseParties{}
		return nil
	})
	if err != nil {
		return nil, wrap(err, "participant emails")
	}
	return out, nil
}

// FindErrorCase returns the newest open case with the error fingerprint.
// The conditions match the partial index cases_fingerprint, so the lookup
// uses it.
func (t *tx) FindErrorCase(ctx context.Context, tenantID int64, fingerprint string) (*casedesk.Case, error) {
	// Stored fingerprints are clipped by CreateCase; clip the same way so a
	// long one still matches. No case has an empty one (it is stored NULL).
	fp := clip(fingerprint, maxHeaderBytes)
	if fp == "" {
		return nil, casedesk.Errorf(casedesk.ENOTFOUND, "no open case with an empty error fingerprint")
	}
	c, err := scanCase(t.tx.QueryRow(ctx, `SELECT `+caseColumns+` FROM `+caseFrom+`
		WHERE c.tenant_id = $1 AND c.error_fingerprint = $2 AND c.status NOT IN ('solved', 'closed')
		ORDER BY c.created_at DESC, c.id DESC LIMIT 1`, tenantID, fp))
	if err != nil {
		return nil, notFound(err, "no open case with this error fingerprint")
	}
	return c, nil
}

// AddOccurrence bumps a case's occurrence count and writes an occurrence
// event with the new count.
func (t *tx) AddOccurrence(ctx context.Context, tenantID, caseID int64, by casedesk.Actor) error {
	var n int
	err := t.tx.QueryRow(ctx, `UPDATE cases SET occurrences = occurrences + 1, updated_at = $3
		WHERE tenant_id = $1 AND id = $2 RETURNING occurrences`, tenantID, caseID, t.now).Scan(&n)
	if err != nil {
		return notFound(err, "case %d not found", caseID)
	}
	data, _ := json.Marshal(map[string]any{"occurrences": n})
	_, err = t.AddEvent(ctx, casedesk.Event{TenantID: tenantID, CaseID: caseID,
		Kind: casedesk.EventOccurrence, Actor: by, Data: data})
	return err
}
