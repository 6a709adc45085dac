package casestore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// invoiceColumns are an invoice's own columns (alias i), then its
// account's (alias a), as scanInvoice reads them.
const invoiceColumns = `i.tenant_id, i.id, i.account_id, i.number, i.period_start, i.period_end,
	i.issue_date, i.due_date, i.amount_minor, i.currency, i.status, i.lines, i.sent_at, i.reminded_at,
	i.created_at, i.updated_at,
	a.name, a.domains, a.sla_tier, coalesce(a.billing_contact_id, 0), a.created_at, a.updated_at`

// billingColumns are the billing contact's columns (alias b, LEFT JOINed:
// all NULL when the account has none).
const billingColumns = `b.id, b.email, b.name, b.phone`

// invoiceFrom joins an invoice's account; every join stays in the tenant.
const invoiceFrom = `invoices i JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id`

// billingJoin adds the account's billing contact.
const billingJoin = ` LEFT JOIN contacts b ON b.tenant_id = a.tenant_id AND b.id = a.billing_contact_id`

// scanInvoice reads invoiceColumns, and billingColumns when withBilling,
// plus any extra destinations.
func scanInvoice(row pgx.Row, withBilling bool, extra ...any) (*casedesk.Invoice, error) {
	var inv casedesk.Invoice
	var a casedesk.Account
	var lines []byte
	var sent, reminded *time.Time
	dest := []any{&inv.TenantID, &inv.ID, &inv.AccountID, &inv.Number, &inv.PeriodStart, &inv.PeriodEnd,
		&inv.IssueDate, &inv.DueDate, &inv.AmountMinor, &inv.Currency, &inv.Status, &lines, &sent, &reminded,
		&inv.CreatedAt, &inv.UpdatedAt,
		&a.Name, &a.Domains, &a.SLATier, &a.BillingContactID, &a.CreatedAt, &a.UpdatedAt}
	var bID *int64
	var bEmail, bName, bPhone *string
	if withBilling {
		dest = append(dest, &bID, &bEmail, &bName, &bPhone)
	}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(lines, &inv.Lines); err != nil {
		return nil, fmt.Errorf("invoice %d: lines: %w", inv.ID, err)
	}
	inv.SentAt, inv.RemindedAt = timeOf(sent), timeOf(reminded)
	for _, d := range []*time.Time{&inv.PeriodStart, &inv.PeriodEnd, &inv.IssueDate, &inv.DueDate} {
		*d = d.UTC()
	}
	a.TenantID, a.ID = inv.TenantID, inv.AccountID
	inv.Account = &a
	if bID != nil {
		inv.BillingContact = &casedesk.Contact{TenantID: inv.TenantID, ID: *bID, Email: *bEmail, Name: *bName,
			Phone: *bPhone}
	}
	return &inv, nil
}

// createInvoicesSQL inserts a batch of invoices of one tenant in input
// order. A number the tenant has already is left out (ON CONFLICT), so
// that the caller can name it; the transaction stays usable.
const createInvoicesSQL = `
INSERT INTO invoices AS i (tenant_id, account_id, number, period_start, period_end, issue_date, due_date,
	amount_minor, currency, status, lines, created_at, updated_at)
SELECT $1, n.account_id, n.number, n.period_start, n.period_end, n.issue_date, n.due_date,
	n.amount_minor, n.currency, n.status, n.lines::jsonb, $12, $12
FROM unnest($2::bigint[], $3::text[], $4::date[], $5::date[], $6::date[], $7::date[], $8::bigint[],
	$9::text[], $10::text[], $11::text[])
	WITH ORDINALITY AS n(account_id, number, period_start, period_end, issue_date, due_date, amount_minor,
		currency, status, lines, ord)
ORDER BY n.ord
ON CONFLICT (tenant_id, number) DO NOTHING
RETURNING i.id, i.number`

// CreateInvoices creates invoices of one tenant in two round trips (their
// accounts, then one INSERT) whatever their number; see
// casedesk.InvoiceOps.
func (t *tx) CreateInvoices(ctx context.Context, tenantID int64, ns []casedesk.NewInvoice) ([]*casedesk.Invoice, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	cols := newInvoiceColumns(len(ns))
	seen := make(map[string]int, len(ns))
	for i := range ns {
		n := ns[i] // a copy: Validate normalises it
		if n.TenantID != 0 && n.TenantID != tenantID {
			return nil, casedesk.Errorf(casedesk.EINVALID, "one batch holds invoices of one tenant")
		}
		amount, err := n.Validate()
		if err != nil {
			return nil, itemError(err, "invoice", i, len(ns))
		}
		if j, ok := seen[n.Number]; ok {
			return nil, casedesk.Errorf(casedesk.ECONFLICT, "invoice number %q is given twice (invoices %d and %d)", n.Number, j, i)
		}
		seen[n.Number] = i
		if err := cols.add(n, amount); err != nil {
			return nil, err
		}
	}
	accounts, err := t.findAccounts(ctx, tenantID, cols.accountIDs)
	if err != nil {
		return nil, err
	}
	for i, id := range cols.accountIDs {
		if accounts[id] == nil {
			return nil, itemError(casedesk.Errorf(casedesk.EINVALID, "no such account %d", id), "invoice", i, len(ns))
		}
	}
	rows, err := t.tx.Query(ctx, createInvoicesSQL, tenantID, cols.accountIDs, cols.numbers, cols.periodStarts,
		cols.periodEnds, cols.issueDates, cols.dueDates, cols.amounts, cols.currencies, cols.statuses, cols.lines, t.now)
	if err != nil {
		return nil, wrap(err, "create invoices")
	}
	created := map[string]int64{}
	var id int64
	var number string
	_, err = pgx.ForEachRow(rows, []any{&id, &number}, func() error { created[number] = id; return nil })
	if err != nil {
		return nil, wrap(err, "create invoices")
	}
	out := make([]*casedesk.Invoice, len(ns))
	for i := range ns {
		id, ok := created[cols.numbers[i]]
		if !ok {
			return nil, casedesk.Errorf(casedesk.ECONFLICT, "an invoice numbered %q exists", cols.numbers[i])
		}
		out[i] = cols.invoice(i, tenantID, id, accounts[cols.accountIDs[i]], t.now)
	}
	return out, nil
}

// invoiceColumnsIn holds a batch of new invoices column by column, as
// createInvoicesSQL takes them.
type invoiceColumnsIn struct {
	accountIDs, amounts                            []int64
	numbers, currencies, statuses, lines           []string
	periodStarts, periodEnds, issueDates, dueDates []time.Time
	parsed                                         [][]casedesk.InvoiceLine
}

func newInvoiceColumns(n int) *invoiceColumnsIn {
	return &invoiceColumnsIn{accountIDs: make([]int64, 0, n), amounts: make([]int64, 0, n)}
}

func (c *invoiceColumnsIn) add(n casedesk.NewInvoice, amount int64) error {
	lines, err := json.Marshal(n.Lines)
	if err != nil {
		return fmt.Errorf("encode invoice lines: %w", err)
	}
	c.accountIDs, c.amounts = append(c.accountIDs, n.AccountID), append(c.amounts, amount)
	c.numbers, c.currencies = append(c.numbers, n.Number), append(c.currencies, n.Currency)
	c.statuses, c.lines = append(c.statuses, string(n.Status)), append(c.lines, string(lines))
	c.periodStarts, c.periodEnds = append(c.periodStarts, n.PeriodStart), append(c.periodEnds, n.PeriodEnd)
	c.issueDates, c.dueDates = append(c.issueDates, n.IssueDate), append(c.dueDates, n.DueDate)
	c.parsed = append(c.parsed, slices.Clone(n.Lines))
	return nil
}

// invoice is the i-th invoice as stored, without reading it back.
func (c *invoiceColumnsIn) invoice(i int, tenantID, id int64, a *casedesk.Account, now time.Time) *casedesk.Invoice {
	return &casedesk.Invoice{ID: id, TenantID: tenantID, AccountID: c.accountIDs[i], Number: c.numbers[i],
		PeriodStart: c.periodStarts[i], PeriodEnd: c.periodEnds[i], IssueDate: c.issueDates[i], DueDate: c.dueDates[i],
		AmountMinor: c.amounts[i], Currency: c.currencies[i], Status: casedesk.InvoiceStatus(c.statuses[i]),
		Lines: c.parsed[i], CreatedAt: now, UpdatedAt: now, Account: a}
}

// findAccounts returns the tenant's accounts among ids, by ID.
func (t *tx) findAccounts(ctx context.Context, tenantID int64, ids []int64) (map[int64]*casedesk.Account, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+accountColumns+` FROM accounts WHERE tenant_id = $1 AND id = ANY($2)`,
		tenantID, ids)
	if err != nil {
		return nil, wrap(err, "find accounts")
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, wrap(err, "find accounts")
	}
	out := make(map[int64]*casedesk.Account, len(as))
	for _, a := range as {
		out[a.ID] = a
	}
	return out, nil
}

// FindInvoiceByNumber returns an invoice with its account and billing
// contact; see casedesk.InvoiceOps.
func (t *tx) FindInvoiceByNumber(ctx context.Context, tenantID int64, number string) (*casedesk.Invoice, error) {
	inv, err := scanInvoice(t.tx.QueryRow(ctx, `SELECT `+invoiceColumns+`, `+billingColumns+` FROM `+invoiceFrom+billingJoin+`
		WHERE i.tenant_id = $1 AND i.number = $2`, tenantID, clean(number)), true)
	if err != nil {
		return nil, notFound(err, "invoice %q not found", clip(number, 100))
	}
	return inv, nil
}

// SetInvoiceStatus moves an invoice along its lifecycle; see
// casedesk.InvoiceOps. The row is locked while the move is checked, so
// two concurrent changes are judged one after the other.
func (t *tx) SetInvoiceStatus(ctx context.Context, tenantID int64, number string, to casedesk.InvoiceStatus) (*casedesk.Invoice, error) {
	var from casedesk.InvoiceStatus
	err := t.tx.QueryRow(ctx, `SELECT status FROM invoices WHERE tenant_id = $1 AND number = $2 FOR UPDATE`,
		tenantID, clean(number)).Scan(&from)
	if err != nil {
		return nil, notFound(err, "invoice %q not found", clip(number, 100))
	}
	if err := casedesk.CheckInvoiceTransition(from, to); err != nil {
		return nil, casedesk.Errorf(casedesk.EINVALID, "invoice %s: %s", number, casedesk.ErrorMessage(err))
	}
	if from != to {
		_, err = t.tx.Exec(ctx, `UPDATE invoices SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND number = $2`,
			tenantID, number, to, t.now)
		if err != nil {
			return nil, wrap(err, "set invoice status")
		}
	}
	return t.FindInvoiceByNumber(ctx, tenantID, number)
}

// lockDueInvoicesSQL selects what casedesk.InvoiceMailDue gives mail to on
// day $3, for accounts with a billing contact, through invoices_mail_due.
const lockDueInvoicesSQL = `SELECT ` + invoiceColumns + `, ` + billingColumns + `
FROM invoices i
JOIN accounts a ON a.tenant_id = i.tenant_id AND a.id = i.account_id
JOIN contacts b ON b.tenant_id = a.tenant_id AND b.id = a.billing_contact_id
WHERE i.tenant_id = $1 AND i.id > $2
	AND i.status IN ('open', 'overdue') AND (i.sent_at IS NULL OR i.reminded_at IS NULL)
	AND ((i.due_date < $3 AND i.reminded_at IS NULL)
		OR (i.due_date >= $3 AND i.status = 'open' AND i.sent_at IS NULL AND i.issue_date <= $3))
ORDER BY i.id
LIMIT $4
FOR UPDATE OF i SKIP LOCKED`

// LockDueInvoices locks the invoices due for mail; see casedesk.InvoiceOps.
func (t *tx) LockDueInvoices(ctx context.Context, tenantID int64, f casedesk.DueInvoiceFilter) ([]*casedesk.Invoice, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := t.tx.Query(ctx, lockDueInvoicesSQL, tenantID, f.AfterID, casedesk.Day(f.Today), limit)
	if err != nil {
		return nil, wrap(err, "lock due invoices")
	}
	invs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Invoice, error) { return scanInvoice(r, true) })
	return invs, wrap(err, "lock due invoices")
}

// MarkInvoicesMailed records queued mail; see casedesk.InvoiceOps. A
// reminder is recorded only where none was: the condition, checked on the
// row's latest version, keeps two transactions from both recording one.
func (t *tx) MarkInvoicesMailed(ctx context.Context, tenantID int64, ids []int64, kind casedesk.InvoiceMailKind) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil
	}
	var sql string
	switch kind {
	case casedesk.InvoiceMailNew:
		sql = `UPDATE invoices SET sent_at = coalesce(sent_at, $3) WHERE tenant_id = $1 AND id = ANY($2)`
	case casedesk.InvoiceMailOverdue:
		sql = `UPDATE invoices SET reminded_at = $3, sent_at = coalesce(sent_at, $3),
			status = CASE WHEN status = 'open' THEN 'overdue' ELSE status END,
			updated_at = CASE WHEN status = 'open' THEN $3 ELSE updated_at END
			WHERE tenant_id = $1 AND id = ANY($2) AND reminded_at IS NULL`
	default:
		return casedesk.Errorf(casedesk.EINVALID, "unknown kind of invoice mail %d", kind)
	}
	tag, err := t.tx.Exec(ctx, sql, tenantID, ids, t.now)
	if err != nil {
		return wrap(err, "mark invoices mailed")
	}
	if n := tag.RowsAffected(); n != int64(len(ids)) {
		if kind == casedesk.InvoiceMailOverdue {
			return casedesk.Errorf(casedesk.ECONFLICT, "%d of %d invoices were reminded already or do not exist", int64(len(ids))-n, len(ids))
		}
		return casedesk.Errorf(casedesk.ENOTFOUND, "%d of %d invoices not found", int64(len(ids))-n, len(ids))
	}
	return nil
}

// MarkInvoicesOverdue moves open invoices past their due date to overdue;
// see casedesk.InvoiceOps. Rows another transaction holds are skipped.
func (t *tx) MarkInvoicesOverdue(ctx context.Context, tenantID int64, today time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 1000
	}
	tag, err := t.tx.Exec(ctx, `UPDATE invoices SET status = 'overdue', updated_at = $3
		WHERE tenant_id = $1 AND id IN (SELECT id FROM invoices
			WHERE tenant_id = $1 AND status = 'open' AND due_date < $2
			ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)`,
		tenantID, casedesk.Day(today), t.now, limit)
	if err != nil {
		return 0, wrap(err, "mark invoices overdue")
	}
	return int(tag.RowsAffected()), nil
}

// SaveBlobs stores contents as the tenant's blobs; see casedesk.InvoiceOps.
func (t *tx) SaveBlobs(ctx context.Context, tenantID int64, contents [][]byte) ([][]byte, error) {
	if len(contents) == 0 {
		return nil, nil
	}
	sums := make([][]byte, len(contents))
	sizes := make([]int64, len(contents))
	methods := make([]string, len(contents))
	data := make([][]byte, len(contents))
	for i, c := range contents {
		sum := sha256.Sum256(c)
		sums[i], sizes[i] = sum[:], int64(len(c))
		methods[i], data[i] = t.db.compress(c)
	}
	// A content given twice inserts once: DO NOTHING skips the second row.
	_, err := t.tx.Exec(ctx, `INSERT INTO blobs (tenant_id, sha256, size, compression, data, created_at)
		SELECT $1, b.sha256, b.size, b.compression, b.data, $6
		FROM unnest($2::bytea[], $3::bigint[], $4::text[], $5::bytea[]) AS b(sha256, size, compression, data)
		ON CONFLICT DO NOTHING`, tenantID, sums, sizes, methods, data, t.now)
	if err != nil {
		return nil, wrap(err, "save blobs")
	}
	return sums, nil
}
