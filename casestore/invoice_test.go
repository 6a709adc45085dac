package casestore_test

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// newInvoice is a valid one-line invoice of the account.
func newInvoice(accountID int64, number string, amount int64, currency string) casedesk.NewInvoice {
	return casedesk.NewInvoice{AccountID: accountID, Number: number, Currency: currency,
		PeriodStart: day(2026, 10, 1), PeriodEnd: day(2026, 10, 31), IssueDate: day(2026, 11, 1), DueDate: day(2026, 11, 30),
		Lines: []casedesk.InvoiceLine{{Description: "Support plan", Quantity: 1, UnitPriceMinor: amount}}}
}

func (f *fixture) createInvoices(t testing.TB, ns ...casedesk.NewInvoice) []*casedesk.Invoice {
	t.Helper()
	var out []*casedesk.Invoice
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		out, err = tx.CreateInvoices(ctx(), f.tenant.ID, ns)
		return err
	})
	return out
}

func (f *fixture) invoice(t testing.TB, number string) (*casedesk.Invoice, error) {
	t.Helper()
	var inv *casedesk.Invoice
	err := f.db.View(ctx(), func(tx casedesk.Tx) (err error) {
		inv, err = tx.FindInvoiceByNumber(ctx(), f.tenant.ID, number)
		return err
	})
	return inv, err
}

// TestInvoiceRoundTrip: amounts beyond float64's exact range, currencies
// of 0, 2 and 3 decimals, lines and dates come back exactly as created.
func TestInvoiceRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	acct := f.accountOf(t, "Müller GmbH")
	big := casedesk.NewInvoice{AccountID: acct.ID, Number: "INV-2026.0001_a", Currency: "USD",
		PeriodStart: time.Date(2026, 10, 1, 23, 30, 0, 0, time.FixedZone("x", -5*3600)), // 1 October where it was written
		PeriodEnd:   day(2026, 10, 31), IssueDate: day(2026, 11, 1), DueDate: day(2026, 12, 1),
		Lines: []casedesk.InvoiceLine{
			{Description: "Plan über alles ✓", Quantity: 1, UnitPriceMinor: 9007199254740993},
			{Description: "", Quantity: 3, UnitPriceMinor: -1},
		},
		AmountMinor: ptr(int64(9007199254740990))}
	created := f.createInvoices(t, big, newInvoice(acct.ID, "JPY-1", 1500, "JPY"), newInvoice(acct.ID, "KWD-1", 1234567, "KWD"))
	if created[0].AmountMinor != 9007199254740990 || created[1].Currency != "JPY" || created[2].AmountMinor != 1234567 {
		t.Fatalf("created = %+v", created)
	}
	for _, want := range created {
		got, err := f.invoice(t, want.Number)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || got.AmountMinor != want.AmountMinor || got.Currency != want.Currency ||
			!reflect.DeepEqual(got.Lines, want.Lines) || got.Status != casedesk.InvoiceOpen ||
			!got.PeriodStart.Equal(want.PeriodStart) || !got.DueDate.Equal(want.DueDate) || !got.IssueDate.Equal(want.IssueDate) ||
			!got.CreatedAt.Equal(now) || !got.SentAt.IsZero() || got.Account.Name != "Müller GmbH" {
			t.Errorf("stored %+v\nwant    %+v", got, want)
		}
	}
	if got, _ := f.invoice(t, "INV-2026.0001_a"); !got.PeriodStart.Equal(day(2026, 10, 1)) || got.Lines[0].UnitPriceMinor != 9007199254740993 {
		t.Errorf("period start %v, first unit price %d", got.PeriodStart, got.Lines[0].UnitPriceMinor)
	}
}

// TestCreateInvoicesRefuses: a batch is all or nothing, and a taken
// number, a number given twice or another tenant's account is refused
// with the right code.
func TestCreateInvoicesRefuses(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	acct, foreign := f.accountOf(t, "Acme"), other.accountOf(t, "Foreign")
	f.createInvoices(t, newInvoice(acct.ID, "INV-1", 100, "EUR"))
	tests := []struct {
		name  string
		batch []casedesk.NewInvoice
		code  string
	}{
		{"taken number", []casedesk.NewInvoice{newInvoice(acct.ID, "INV-2", 1, "EUR"), newInvoice(acct.ID, "INV-1", 1, "EUR")}, casedesk.ECONFLICT},
		{"number twice", []casedesk.NewInvoice{newInvoice(acct.ID, "INV-2", 1, "EUR"), newInvoice(acct.ID, "INV-2", 1, "EUR")}, casedesk.ECONFLICT},
		{"foreign account", []casedesk.NewInvoice{newInvoice(acct.ID, "INV-2", 1, "EUR"), newInvoice(foreign.ID, "INV-3", 1, "EUR")}, casedesk.EINVALID},
		{"bad currency", []casedesk.NewInvoice{newInvoice(acct.ID, "INV-2", 1, "eur")}, casedesk.EINVALID},
		{"wrong amount", []casedesk.NewInvoice{func() casedesk.NewInvoice {
			n := newInvoice(acct.ID, "INV-2", 100, "EUR")
			n.AmountMinor = ptr(int64(99))
			return n
		}()}, casedesk.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
				_, err := tx.CreateInvoices(ctx(), f.tenant.ID, tt.batch)
				return err
			})
			wantCode(t, err, tt.code)
			if _, err := f.invoice(t, "INV-2"); casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
				t.Errorf("INV-2 after a refused batch: %v, want not found", err)
			}
		})
	}
	// The same number in another tenant is another invoice.
	other.createInvoices(t, newInvoice(foreign.ID, "INV-1", 7, "EUR"))
	if inv, err := f.invoice(t, "INV-1"); err != nil || inv.AmountMinor != 100 {
		t.Errorf("tenant A's INV-1 = %+v, %v", inv, err)
	}
	if _, err := other.invoice(t, "INV-9"); casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
		t.Errorf("unknown number: %v", err)
	}
}

func TestSetInvoiceStatus(t *testing.T) {
	now := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	acct := f.accountOf(t, "Acme")
	f.createInvoices(t, newInvoice(acct.ID, "A", 100, "EUR"))
	set := func(fx *fixture, number string, to casedesk.InvoiceStatus) (*casedesk.Invoice, error) {
		var inv *casedesk.Invoice
		err := fx.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
			inv, err = tx.SetInvoiceStatus(ctx(), fx.tenant.ID, number, to)
			return err
		})
		return inv, err
	}
	now = now.Add(time.Hour)
	if inv, err := set(f, "A", casedesk.InvoiceOverdue); err != nil || inv.Status != casedesk.InvoiceOverdue || !inv.UpdatedAt.Equal(now) {
		t.Fatalf("open -> overdue: %+v, %v", inv, err)
	}
	if _, err := set(f, "A", casedesk.InvoiceOpen); casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Errorf("overdue -> open: %v, want invalid", err)
	}
	if inv, err := set(f, "A", casedesk.InvoicePaid); err != nil || inv.Status != casedesk.InvoicePaid {
		t.Fatalf("overdue -> paid: %+v, %v", inv, err)
	}
	if _, err := set(f, "A", casedesk.InvoiceVoid); casedesk.ErrorCode(err) != casedesk.EINVALID || !strings.Contains(err.Error(), "final") {
		t.Errorf("paid -> void: %v, want invalid (final)", err)
	}
	if _, err := set(other, "A", casedesk.InvoiceVoid); casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
		t.Errorf("another tenant's invoice: %v, want not found", err)
	}
}

// TestListInvoicesSorts: every sort column, both ways, paged two by two,
// gives the order Go computes from the same invoices; filters select.
func TestListInvoicesSorts(t *testing.T) {
	now := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	zed, alpha := f.accountOf(t, "Zed Ltd"), f.accountOf(t, "alpha AG")
	other.createInvoices(t, newInvoice(other.accountOf(t, "Other").ID, "X-1", 5, "EUR"))
	var all []*casedesk.Invoice
	specs := []struct {
		acct     int64
		number   string
		amount   int64
		currency string
		month    time.Month
		status   casedesk.InvoiceStatus
	}{
		{zed.ID, "INV-10", 500, "EUR", 1, ""}, {alpha.ID, "INV-9", 900, "USD", 2, casedesk.InvoicePaid},
		{zed.ID, "B-1", 500, "JPY", 3, casedesk.InvoiceVoid}, {alpha.ID, "a-2", 100, "EUR", 2, casedesk.InvoiceOverdue},
		{zed.ID, "C-7", 7, "KWD", 4, ""},
	}
	for i, s := range specs {
		n := newInvoice(s.acct, s.number, s.amount, s.currency)
		n.Status = s.status
		n.PeriodStart, n.PeriodEnd = day(2026, s.month, 1), day(2026, s.month, 28)
		n.IssueDate, n.DueDate = day(2026, s.month+1, 1), day(2026, s.month+1, 10+i)
		now = now.Add(time.Minute)
		all = append(all, f.createInvoices(t, n)...)
	}
	// One of them was sent; updated later.
	now = now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.MarkInvoicesMailed(ctx(), f.tenant.ID, []int64{all[1].ID}, casedesk.InvoiceMailNew)
	})
	all[1].SentAt = now
	names := map[int64]string{zed.ID: "zed ltd", alpha.ID: "alpha ag"}
	key := func(col string, inv *casedesk.Invoice) any {
		switch col {
		case "number":
			return inv.Number
		case "account":
			return names[inv.AccountID]
		case "period_start":
			return inv.PeriodStart.Unix()
		case "period_end":
			return inv.PeriodEnd.Unix()
		case "issue_date":
			return inv.IssueDate.Unix()
		case "due_date":
			return inv.DueDate.Unix()
		case "amount_minor":
			return inv.AmountMinor
		case "currency":
			return inv.Currency
		case "status":
			return slices.Index([]casedesk.InvoiceStatus{"open", "overdue", "paid", "void"}, inv.Status)
		case "sent_at":
			if inv.SentAt.IsZero() {
				return int64(math.MinInt64)
			}
			return inv.SentAt.UnixMicro()
		case "created_at", "updated_at":
			return inv.CreatedAt.UnixMicro()
		}
		t.Fatalf("no key for %s", col)
		return nil
	}
	compare := func(a, b any) int {
		switch a := a.(type) {
		case string:
			return strings.Compare(a, b.(string))
		case int64:
			return cmp.Compare(a, b.(int64))
		case int:
			return cmp.Compare(a, b.(int))
		}
		panic("type")
	}
	for _, col := range casedesk.InvoiceSortColumns {
		for _, desc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s desc=%v", col, desc), func(t *testing.T) {
				want := slices.Clone(all)
				slices.SortStableFunc(want, func(a, b *casedesk.Invoice) int {
					c := compare(key(col, a), key(col, b))
					if c == 0 {
						c = cmp.Compare(a.ID, b.ID)
					}
					if desc {
						c = -c
					}
					return c
				})
				got := f.listInvoices(t, casedesk.InvoiceFilter{Sort: col, Desc: desc, Limit: 2})
				if !slices.Equal(invoiceNumbers(got), invoiceNumbers(want)) {
					t.Errorf("order %v, want %v", invoiceNumbers(got), invoiceNumbers(want))
				}
			})
		}
	}
	filters := []struct {
		name string
		f    casedesk.InvoiceFilter
		want []string
	}{
		{"default: newest issue date first", casedesk.InvoiceFilter{}, []string{"C-7", "B-1", "a-2", "INV-9", "INV-10"}},
		{"account", casedesk.InvoiceFilter{AccountID: alpha.ID, Sort: "number"}, []string{"INV-9", "a-2"}},
		{"statuses", casedesk.InvoiceFilter{Statuses: []casedesk.InvoiceStatus{"open", "overdue"}, Sort: "number"}, []string{"C-7", "INV-10", "a-2"}},
		{"period overlaps", casedesk.InvoiceFilter{PeriodFrom: day(2026, 2, 28), PeriodTo: day(2026, 3, 1), Sort: "number"}, []string{"B-1", "INV-9", "a-2"}},
		{"period from", casedesk.InvoiceFilter{PeriodFrom: day(2026, 3, 29), Sort: "number"}, []string{"C-7"}},
		{"period to", casedesk.InvoiceFilter{PeriodTo: day(2026, 1, 31), Sort: "number"}, []string{"INV-10"}},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			if got := invoiceNumbers(f.listInvoices(t, tt.f)); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	var err error
	for _, bad := range []casedesk.InvoiceFilter{{Sort: "amount"}, {Statuses: []casedesk.InvoiceStatus{"late"}},
		{Cursor: "bm9wZQ"}, {PeriodFrom: day(2026, 2, 1), PeriodTo: day(2026, 1, 1)}} {
		err = f.db.View(ctx(), func(tx casedesk.Tx) error {
			_, err := tx.ListInvoices(ctx(), f.tenant.ID, bad)
			return err
		})
		wantCode(t, err, casedesk.EINVALID)
	}
	// A cursor of one sort is refused by another.
	var page *casedesk.InvoicePage
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		page, err = tx.ListInvoices(ctx(), f.tenant.ID, casedesk.InvoiceFilter{Sort: "number", Limit: 1})
		return err
	})
	err = f.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.ListInvoices(ctx(), f.tenant.ID, casedesk.InvoiceFilter{Sort: "number", Desc: true, Cursor: page.NextCursor})
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
}

// listInvoices follows the cursor to the end.
func (f *fixture) listInvoices(t *testing.T, filter casedesk.InvoiceFilter) []*casedesk.Invoice {
	t.Helper()
	var out []*casedesk.Invoice
	for range 100 {
		var page *casedesk.InvoicePage
		err := f.db.View(ctx(), func(tx casedesk.Tx) (err error) {
			page, err = tx.ListInvoices(ctx(), f.tenant.ID, filter)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Invoices...)
		if page.NextCursor == "" {
			return out
		}
		filter.Cursor = page.NextCursor
	}
	t.Fatal("the listing does not end")
	return nil
}

func invoiceNumbers(invs []*casedesk.Invoice) []string {
	out := make([]string, len(invs))
	for i, inv := range invs {
		out[i] = inv.Number
	}
	return out
}

// TestLockDueInvoices: the invoices selected are exactly those
// InvoiceMailDue gives mail to, of accounts with a billing contact; locked
// ones are skipped by a second transaction, and marking them takes them
// out.
func TestLockDueInvoices(t *testing.T) {
	now := time.Date(2026, 11, 15, 8, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	billed, unbilled := f.accountOf(t, "Billed"), f.accountOf(t, "Unbilled")
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.UpdateAccount(ctx(), f.tenant.ID, billed.ID, casedesk.AccountUpdate{BillingContactID: &f.requester.ID})
		return err
	})
	mk := func(acct int64, number string, issue, due time.Time, status casedesk.InvoiceStatus) casedesk.NewInvoice {
		n := newInvoice(acct, number, 100, "EUR")
		n.IssueDate, n.DueDate, n.Status = issue, due, status
		return n
	}
	f.createInvoices(t,
		mk(billed.ID, "new", day(2026, 11, 1), day(2026, 11, 30), ""),
		mk(billed.ID, "future", day(2026, 11, 16), day(2026, 11, 30), ""),
		mk(billed.ID, "late", day(2026, 10, 1), day(2026, 11, 14), ""),
		mk(billed.ID, "due-today", day(2026, 10, 1), day(2026, 11, 15), ""),
		mk(billed.ID, "paid", day(2026, 10, 1), day(2026, 11, 1), casedesk.InvoicePaid),
		mk(billed.ID, "void", day(2026, 11, 1), day(2026, 11, 30), casedesk.InvoiceVoid),
		mk(billed.ID, "overdue", day(2026, 10, 1), day(2026, 11, 1), casedesk.InvoiceOverdue),
		mk(unbilled.ID, "nobody", day(2026, 11, 1), day(2026, 11, 30), ""),
	)
	today := now
	lock := func(tx casedesk.Tx) []*casedesk.Invoice {
		invs, err := tx.LockDueInvoices(ctx(), f.tenant.ID, casedesk.DueInvoiceFilter{Today: today, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return invs
	}
	var got []*casedesk.Invoice
	update(t, f.db, func(tx casedesk.Tx) error {
		got = lock(tx)
		// A second transaction meanwhile finds them all locked.
		update(t, f.db, func(tx2 casedesk.Tx) error {
			if again := lock(tx2); len(again) != 0 {
				t.Errorf("a concurrent transaction got %v", invoiceNumbers(again))
			}
			return nil
		})
		return nil
	})
	if want := []string{"new", "late", "due-today", "overdue"}; !slices.Equal(invoiceNumbers(got), want) {
		t.Fatalf("due = %v, want %v", invoiceNumbers(got), want)
	}
	for _, inv := range got {
		if inv.BillingContact == nil || inv.BillingContact.Email != "cara@customer.example" || inv.Account.Name != "Billed" {
			t.Errorf("%s: account %+v, billing %+v", inv.Number, inv.Account, inv.BillingContact)
		}
		if k := casedesk.InvoiceMailDue(inv, today); k == casedesk.InvoiceMailNone {
			t.Errorf("%s selected, but InvoiceMailDue says none", inv.Number)
		}
	}
	ids := func(invs ...*casedesk.Invoice) []int64 {
		var out []int64
		for _, inv := range invs {
			out = append(out, inv.ID)
		}
		return out
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		if err := tx.MarkInvoicesMailed(ctx(), f.tenant.ID, ids(got[0], got[2]), casedesk.InvoiceMailNew); err != nil {
			return err
		}
		return tx.MarkInvoicesMailed(ctx(), f.tenant.ID, ids(got[1], got[3]), casedesk.InvoiceMailOverdue)
	})
	update(t, f.db, func(tx casedesk.Tx) error {
		if again := lock(tx); len(again) != 0 {
			t.Errorf("after marking, due = %v", invoiceNumbers(again))
		}
		return nil
	})
	late, _ := f.invoice(t, "late")
	if late.Status != casedesk.InvoiceOverdue || !late.RemindedAt.Equal(now) || !late.SentAt.Equal(now) {
		t.Errorf("reminded invoice = %+v", late)
	}
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		return tx.MarkInvoicesMailed(ctx(), f.tenant.ID, ids(late), casedesk.InvoiceMailOverdue)
	})
	wantCode(t, err, casedesk.ECONFLICT)
	// The next day "future" is issued and "due-today" due for its
	// reminder; "nobody" waits for its billing contact.
	today = today.Add(24 * time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		if again := lock(tx); !slices.Equal(invoiceNumbers(again), []string{"future", "due-today"}) {
			t.Errorf("next day, due = %v", invoiceNumbers(again))
		}
		n, err := tx.MarkInvoicesOverdue(ctx(), f.tenant.ID, today, 0)
		if n != 1 {
			t.Errorf("MarkInvoicesOverdue moved %d, want 1 (due-today; nobody is due on the 30th)", n)
		}
		return err
	})
}

func TestSaveBlobs(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	pdf := bytes.Repeat([]byte("%PDF-1.7 compressible "), 200)
	var sums [][]byte
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		sums, err = tx.SaveBlobs(ctx(), f.tenant.ID, [][]byte{pdf, []byte("x"), pdf})
		return err
	})
	if len(sums) != 3 || !bytes.Equal(sums[0], sums[2]) || bytes.Equal(sums[0], sums[1]) {
		t.Fatalf("sums = %x", sums)
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.AttachmentContent(ctx(), f.tenant.ID, sums[0])
		if err != nil || !bytes.Equal(got, pdf) {
			t.Errorf("content = %d bytes, %v", len(got), err)
		}
		_, err = tx.AttachmentContent(ctx(), other.tenant.ID, sums[0])
		wantCode(t, err, casedesk.ENOTFOUND)
		return nil
	})
}
