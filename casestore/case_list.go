package casestore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/casedesk/casedesk"
)

// sortKey is the SQL expression a case listing is ordered by, with its type
// for reading a cursor value back. Nullable columns are coalesced so the
// row comparison of keyset pagination never meets NULL.
type sortKey struct {
	expr, typ string
}

var caseSortKeys = map[string]sortKey{
	"number":        {"c.number", "bigint"},
	"subject":       {"lower(c.subject)", "text"},
	"status":        {"array_position(ARRAY['new','open','pending','solved','closed'], c.status)", "integer"},
	"priority":      {"array_position(ARRAY['low','normal','high','urgent'], c.priority)", "integer"},
	"category":      {"c.category", "text"},
	"requester":     {"lower(r.email)", "text"},
	"account":       {"coalesce(lower(a.name), '')", "text"},
	"assignee":      {"coalesce(lower(u.name), '')", "text"},
	"message_count": {"c.message_count", "integer"},
	"created_at":    {"c.created_at", "timestamptz"},
	"updated_at":    {"c.updated_at", "timestamptz"},
}

// caseCursor is where the previous page ended: the sort it belongs to, the
// last row's sort value (as PostgreSQL's text form) and its ID as the tie
// breaker. Rows inserted meanwhile land before or after it, never twice.
type caseCursor struct {
	Sort  string `json:"s"`
	Value string `json:"v"`
	ID    int64  `json:"i"`
}

func encodeCursor(c caseCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sort string) (*caseCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c caseCursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID <= 0 {
		return nil, casedesk.Errorf(casedesk.EINVALID, "cursor is not one this server issued")
	}
	if c.Sort != sort {
		return nil, casedesk.Errorf(casedesk.EINVALID, "cursor belongs to sort %q, not %q", c.Sort, sort)
	}
	return &c, nil
}

// where collects conditions and their positional arguments.
type where struct {
	conds []string
	args  []any
}

// add appends a condition; each "?" in cond becomes the next $n.
func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// ListCases returns one page of the tenant's cases, filtered and sorted,
// with keyset pagination.
func (t *tx) ListCases(ctx context.Context, tenantID int64, f casedesk.CaseFilter) (page *casedesk.CasePage, err error) {
	column, desc, err := casedesk.ParseSort(f.Sort)
	if err != nil {
		return nil, err
	}
	sort := f.Sort
	if sort == "" {
		sort = "-" + column
	}
	key := caseSortKeys[column]
	w, err := caseFilterWhere(tenantID, f)
	if err != nil {
		return nil, err
	}
	op, dir := ">", "ASC"
	if desc {
		op, dir = "<", "DESC"
	}
	if f.Cursor != "" {
		cur, err := decodeCursor(f.Cursor, sort)
		if err != nil {
			return nil, err
		}
		w.add(fmt.Sprintf("(%s, c.id) %s (?::text::%s, ?)", key.expr, op, key.typ), cur.Value, cur.ID)
	}
	limit := casedesk.PageSize(f.Limit)
	w.args = append(w.args, limit+1)
	query := fmt.Sprintf(`SELECT %s, (%s)::text FROM %s WHERE %s ORDER BY %s %s, c.id %s LIMIT $%d`,
		caseColumns, key.expr, caseFrom, w.String(), key.expr, dir, dir, len(w.args))
	if strings.TrimSpace(f.Q) != "" {
		parent := ctx
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.db.searchTimeout)
		defer cancel()
		defer func() {
			if err != nil && ctx.Err() != nil && parent.Err() == nil {
				page, err = nil, casedesk.Errorf(casedesk.EINVALID,
					"the search %q matches too much mail to finish in %s: add words or other filters",
					clean(f.Q), t.db.searchTimeout)
			}
		}()
	}
	rows, err := t.tx.Query(ctx, query, w.args...)
	if err != nil {
		return nil, wrap(err, "list cases")
	}
	defer rows.Close()
	page = &casedesk.CasePage{Cases: make([]*casedesk.Case, 0, limit)}
	var last string
	for rows.Next() {
		var value string
		c, err := scanCase(rows, &value)
		if err != nil {
			return nil, wrap(err, "list cases")
		}
		if len(page.Cases) == limit {
			page.NextCursor = encodeCursor(caseCursor{Sort: sort, Value: last, ID: page.Cases[limit-1].ID})
			break
		}
		page.Cases, last = append(page.Cases, c), value
	}
	return page, wrap(rows.Err(), "list cases")
}

func caseFilterWhere(tenantID int64, f casedesk.CaseFilter) (*where, error) {
	w := &where{}
	w.add("c.tenant_id = ?", tenantID)
	if len(f.Statuses) > 0 {
		for _, s := range f.Statuses {
			if !s.Valid() {
				return nil, casedesk.Errorf(casedesk.EINVALID, "unknown status %q", s)
			}
		}
		w.add("c.status = ANY(?)", f.Statuses)
	}
	if f.Priority != "" {
		if !f.Priority.Valid() {
			return nil, casedesk.Errorf(casedesk.EINVALID, "unknown priority %q", f.Priority)
		}
		w.add("c.priority = ?", f.Priority)
	}
	if f.Category != "" {
		w.add("c.category = ?", clean(f.Category))
	}
	if f.AssigneeID != 0 {
		w.add("c.assignee_id = ?", f.AssigneeID)
	}
	if f.AccountID != 0 {
		w.add("c.account_id = ?", f.AccountID)
	}
	if f.RequesterEmail != "" {
		w.add("lower(r.email) = lower(?)", clean(f.RequesterEmail))
	}
	// The matching cases, contacts and accounts are found by an
	// uncorrelated ARRAY(...) subquery, which PostgreSQL runs once, on its
	// own plan, through the search indexes. As a join, the generic plan
	// chose to scan all the tenant's cases and test each one's messages.
	if q := strings.TrimSpace(f.Q); q != "" {
		notes := ""
		if f.WithoutNotes {
			notes = "AND m.direction <> 'note'"
		}
		w.add(`c.id = ANY(ARRAY(
			SELECT m.case_id FROM message_search ms
				JOIN messages m ON m.tenant_id = ms.tenant_id AND m.id = ms.message_id `+notes+`
			WHERE ms.tenant_id = ? AND ms.vector @@ websearch_to_tsquery('simple', ?)
			UNION
			SELECT s.id FROM cases s WHERE s.tenant_id = ?
				AND to_tsvector('simple'::regconfig, s.subject) @@ websearch_to_tsquery('simple', ?)))`,
			tenantID, clean(q), tenantID, clean(q))
	}
	if p := strings.TrimSpace(f.Requester); p != "" {
		w.add(`c.requester_id = ANY(ARRAY(SELECT ct.id FROM contacts ct WHERE ct.tenant_id = ?
			AND (ct.email ILIKE ? OR ct.name ILIKE ?)))`, tenantID, likePattern(p), likePattern(p))
	}
	if p := strings.TrimSpace(f.Account); p != "" {
		w.add(`c.account_id = ANY(ARRAY(SELECT ac.id FROM accounts ac WHERE ac.tenant_id = ?
			AND ac.name ILIKE ?))`, tenantID, likePattern(p))
	}
	if !f.CreatedFrom.IsZero() {
		w.add("c.created_at >= ?", f.CreatedFrom)
	}
	if !f.CreatedTo.IsZero() {
		w.add("c.created_at < ?", f.CreatedTo)
	}
	return w, nil
}

// likePattern is an ILIKE pattern matching any text that contains s, with
// s's own wildcard characters taken literally.
func likePattern(s string) string {
	return "%" + likeEscaper.Replace(clean(s)) + "%"
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
