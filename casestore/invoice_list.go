package casestore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// invoiceSortKeys are the expressions an invoice listing is ordered by,
// one per casedesk.InvoiceSortColumns entry. sent_at is coalesced so that
// the row comparison of keyset pagination never meets NULL; numbers and
// currencies compare byte-wise (COLLATE "C"), the same on every server.
var invoiceSortKeys = map[string]sortKey{
	"number":       {`i.number COLLATE "C"`, "text"},
	"account":      {"lower(a.name)", "text"},
	"period_start": {"i.period_start", "date"},
	"period_end":   {"i.period_end", "date"},
	"issue_date":   {"i.issue_date", "date"},
	"due_date":     {"i.due_date", "date"},
	"amount_minor": {"i.amount_minor", "bigint"},
	"currency":     {`i.currency COLLATE "C"`, "text"},
	"status":       {"array_position(ARRAY['open','overdue','paid','void'], i.status)", "integer"},
	"sent_at":      {"coalesce(i.sent_at, '-infinity')", "timestamptz"},
	"created_at":   {"i.created_at", "timestamptz"},
	"updated_at":   {"i.updated_at", "timestamptz"},
}

// ListInvoices returns one page of the tenant's invoices, filtered and
// sorted, with their accounts; see casedesk.InvoiceOps.
//
// Pages are cut by a keyset cursor on (sort value, ID), as case listings
// are, rather than by an offset: a page costs one index range scan however
// deep the listing goes, and invoices created or changed while a client
// pages never make it skip or repeat a row that stayed put. The cursor
// carries the sort it was issued for, so it cannot be replayed on another.
func (t *tx) ListInvoices(ctx context.Context, tenantID int64, f casedesk.InvoiceFilter) (*casedesk.InvoicePage, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	key, ok := invoiceSortKeys[f.Sort]
	if !ok {
		return nil, fmt.Errorf("invoice sort %q has no SQL", f.Sort) // InvoiceSortColumns and the map disagree
	}
	sort := "invoices:" + f.Sort
	op, dir := ">", "ASC"
	if f.Desc {
		sort, op, dir = "invoices:-"+f.Sort, "<", "DESC"
	}
	w := invoiceFilterWhere(tenantID, f)
	if f.Cursor != "" {
		cur, err := decodeCursor(f.Cursor, sort)
		if err != nil {
			return nil, err
		}
		w.add(fmt.Sprintf("(%s, i.id) %s (?::text::%s, ?)", key.expr, op, key.typ), cur.Value, cur.ID)
	}
	limit := casedesk.PageSize(f.Limit)
	w.args = append(w.args, limit+1)
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT %s, (%s)::text FROM %s WHERE %s ORDER BY %s %s, i.id %s LIMIT $%d`,
		invoiceColumns, key.expr, invoiceFrom, w.String(), key.expr, dir, dir, len(w.args)), w.args...)
	if err != nil {
		return nil, wrap(err, "list invoices")
	}
	type row struct {
		inv   *casedesk.Invoice
		value string
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		var err error
		x.inv, err = scanInvoice(r, false, &x.value)
		return x, err
	})
	if err != nil {
		return nil, wrap(err, "list invoices")
	}
	page := &casedesk.InvoicePage{Invoices: make([]*casedesk.Invoice, 0, min(len(rs), limit))}
	for i, x := range rs {
		if i == limit {
			last := rs[limit-1]
			page.NextCursor = encodeCursor(caseCursor{Sort: sort, Value: last.value, ID: last.inv.ID})
			break
		}
		page.Invoices = append(page.Invoices, x.inv)
	}
	return page, nil
}

func invoiceFilterWhere(tenantID int64, f casedesk.InvoiceFilter) *where {
	w := &where{}
	w.add("i.tenant_id = ?", tenantID)
	if f.AccountID != 0 {
		w.add("i.account_id = ?", f.AccountID)
	}
	if len(f.Statuses) > 0 {
		w.add("i.status = ANY(?)", f.Statuses)
	}
	// Periods that overlap [PeriodFrom, PeriodTo].
	if !f.PeriodFrom.IsZero() {
		w.add("i.period_end >= ?", casedesk.Day(f.PeriodFrom))
	}
	if !f.PeriodTo.IsZero() {
		w.add("i.period_start <= ?", casedesk.Day(f.PeriodTo))
	}
	return w
}
