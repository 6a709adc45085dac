package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ledongthuc/pdf"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// invoiceBody is a request body for one invoice of one line.
func invoiceBody(accountID int64, number, currency string, unit int64) map[string]any {
	return map[string]any{"account_id": accountID, "number": number, "currency": currency,
		"period_start": "2026-10-01", "period_end": "2026-10-31", "issue_date": "2026-11-01", "due_date": "2026-11-30",
		"lines": []map[string]any{{"description": "Support plan", "quantity": 1, "unit_price_minor": unit}}}
}

// newInvoice creates an invoice of f's account, whose billing contact it
// makes Cara.
func (e *apiEnv) newInvoice(f *tenantFix) *casedesk.Invoice {
	e.t.Helper()
	var invs []*casedesk.Invoice
	ctx := context.Background()
	e.update(func(tx casedesk.Tx) (err error) {
		cara := f.cases[0].RequesterID
		if _, err := tx.UpdateAccount(ctx, f.tenant.ID, f.account.ID, casedesk.AccountUpdate{BillingContactID: &cara}); err != nil {
			return err
		}
		n := casedesk.NewInvoice{AccountID: f.account.ID, Number: fmt.Sprintf("INV-%d", e.seq()), Currency: "EUR",
			PeriodStart: day(2026, 10, 1), PeriodEnd: day(2026, 10, 31), IssueDate: day(2026, 11, 1), DueDate: day(2026, 11, 30),
			Lines: []casedesk.InvoiceLine{{Description: "Support plan", Quantity: 2, UnitPriceMinor: 61728}}}
		invs, err = tx.CreateInvoices(ctx, f.tenant.ID, []casedesk.NewInvoice{n})
		return err
	})
	return invs[0]
}

// invoiceMail is an invoice mail in the outbox.
type invoiceMail struct {
	To      string
	Payload struct {
		InvoiceNumber string `json:"invoice_number"`
		AmountMinor   int64  `json:"amount_minor"`
		Overdue       bool   `json:"overdue"`
		Attachments   []struct {
			Name, ContentType, SHA256 string
		} `json:"attachments"`
	}
}

// invoiceOutbox returns the invoice mail queued in f, oldest first.
func (e *apiEnv) invoiceOutbox(f *tenantFix) []invoiceMail {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, casestoretest.URL(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT to_addr, payload FROM outbox WHERE tenant_id = $1 AND kind = 'invoice' ORDER BY id`, f.tenant.ID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (invoiceMail, error) {
		var m invoiceMail
		var raw []byte
		if err := r.Scan(&m.To, &raw); err != nil {
			return m, err
		}
		return m, json.Unmarshal(raw, &m.Payload)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func pdfText(t *testing.T, doc []byte) string {
	t.Helper()
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatalf("not a PDF: %v", err)
	}
	rd, err := r.GetPlainText()
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(rd)
	return string(text)
}

// TestInvoiceAmountsRoundTrip: amounts in minor units, beyond what a
// float64 holds exactly, and currencies of 0, 2 and 3 decimals come back
// exactly as sent, in the JSON's own digits.
func TestInvoiceAmountsRoundTrip(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	for _, tt := range []struct {
		currency string
		unit     int64
	}{{"USD", 9007199254740993}, {"JPY", 1500}, {"KWD", 1234567}, {"EUR", 9223372036854775807}} {
		number := "RT-" + tt.currency
		res := e.do(admin, "POST", "/v1/invoices", invoiceBody(e.a.account.ID, number, tt.currency, tt.unit))
		if res.status != 201 {
			t.Fatalf("create %s: %d %s", number, res.status, res.body)
		}
		res = e.do(admin, "GET", "/v1/invoices/"+number, nil)
		digits := fmt.Sprint(tt.unit)
		if res.status != 200 || !bytes.Contains(res.body, []byte(`"amount_minor":`+digits+`,`)) ||
			!bytes.Contains(res.body, []byte(`"unit_price_minor":`+digits)) || !bytes.Contains(res.body, []byte(`"currency":"`+tt.currency+`"`)) {
			t.Errorf("GET %s: %d %s", number, res.status, res.body)
		}
		var inv invoiceJSON
		res.decode(t, &inv)
		if inv.AmountMinor != tt.unit || inv.Lines[0].AmountMinor != tt.unit || inv.Account.Name != "Customer Inc alpha" {
			t.Errorf("decoded %+v", inv)
		}
	}
}

func TestCreateInvoices(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	acct := e.a.account.ID

	res := e.do(admin, "POST", "/v1/invoices", map[string]any{"invoices": []any{
		invoiceBody(acct, "B-2", "EUR", 100), invoiceBody(acct, "B-1", "JPY", 200)}})
	var batch struct{ Invoices []invoiceJSON }
	res.decode(t, &batch)
	if res.status != 201 || len(batch.Invoices) != 2 || batch.Invoices[0].Number != "B-2" || batch.Invoices[1].Currency != "JPY" ||
		batch.Invoices[0].Status != "open" || batch.Invoices[0].IssueDate != "2026-11-01" {
		t.Fatalf("batch: %d %s", res.status, res.body)
	}
	noIssue := invoiceBody(acct, "TODAY-1", "EUR", 1)
	delete(noIssue, "issue_date")
	noIssue["due_date"] = "2999-12-31"
	if res := e.do(admin, "POST", "/v1/invoices", noIssue); res.status != 201 || !strings.Contains(string(res.body), `"issue_date":"20`) {
		t.Errorf("no issue date: %d %s", res.status, res.body)
	}

	bad := func(change func(m map[string]any)) map[string]any {
		m := invoiceBody(acct, "C-1", "EUR", 100)
		change(m)
		return m
	}
	tests := []struct {
		name   string
		body   any
		status int
		says   string
	}{
		{"not JSON", "{", 400, "invalid JSON"},
		{"unknown field", bad(func(m map[string]any) { m["vat"] = 19 }), 400, `unknown field "vat"`},
		{"amount as a float", bad(func(m map[string]any) { m["amount_minor"] = 100.5 }), 400, `"amount_minor"`},
		{"amount that is not the sum", bad(func(m map[string]any) { m["amount_minor"] = 99 }), 400, "add up to 100"},
		{"bad currency", bad(func(m map[string]any) { m["currency"] = "EURO" }), 400, `"currency"`},
		{"bad date", bad(func(m map[string]any) { m["due_date"] = "30.11.2026" }), 400, `"due_date"`},
		{"number with a slash", bad(func(m map[string]any) { m["number"] = "2026/1" }), 400, `"number"`},
		{"no lines", bad(func(m map[string]any) { m["lines"] = []any{} }), 400, `"lines"`},
		{"another tenant's account", bad(func(m map[string]any) { m["account_id"] = e.b.account.ID }), 400, "no such account"},
		{"taken number", invoiceBody(acct, "B-1", "EUR", 1), 409, `"B-1" exists`},
		{"both forms", map[string]any{"number": "X", "invoices": []any{invoiceBody(acct, "C-1", "EUR", 1)}}, 400, "not both"},
		{"empty batch", map[string]any{"invoices": []any{}}, 400, "empty"},
		{"batch with a bad invoice", map[string]any{"invoices": []any{invoiceBody(acct, "C-1", "EUR", 1),
			bad(func(m map[string]any) { m["number"] = "C-2"; m["period_end"] = "2026-09-01" })}}, 400, `invoices[1] field "period_end"`},
		{"batch with a taken number", map[string]any{"invoices": []any{invoiceBody(acct, "C-1", "EUR", 1),
			invoiceBody(acct, "B-2", "EUR", 1)}}, 409, "B-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			res := e.do(admin, "POST", "/v1/invoices", tt.body)
			if res.status != tt.status || !strings.Contains(res.errorMessage(), tt.says) {
				t.Errorf("%d %s, want %d saying %q", res.status, res.body, tt.status, tt.says)
			}
			// All or none: C-1 of a refused batch is not there.
			if res := e.do(admin, "GET", "/v1/invoices/C-1", nil); res.status != 404 {
				t.Errorf("C-1 after a refused request: %d", res.status)
			}
		})
	}
}

func TestListInvoicesAPI(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	var other *casedesk.Account
	e.update(func(tx casedesk.Tx) (err error) {
		other, err = tx.CreateAccount(context.Background(), casedesk.NewAccount{TenantID: e.a.tenant.ID, Name: "Aardvark AG"})
		return err
	})
	bodies := []map[string]any{invoiceBody(e.a.account.ID, "L-1", "EUR", 300), invoiceBody(other.ID, "L-2", "EUR", 100),
		invoiceBody(e.a.account.ID, "L-3", "JPY", 200)}
	bodies[1]["period_start"], bodies[1]["period_end"] = "2026-12-01", "2026-12-31"
	bodies[1]["issue_date"], bodies[1]["due_date"] = "2027-01-01", "2027-01-31"
	if res := e.do(admin, "POST", "/v1/invoices", map[string]any{"invoices": bodies}); res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	if res := e.do(admin, "PATCH", "/v1/invoices/L-3", map[string]any{"status": "paid"}); res.status != 200 {
		t.Fatalf("pay L-3: %d %s", res.status, res.body)
	}
	list := func(query string) []string {
		t.Helper()
		var numbers []string
		path := "/v1/invoices?limit=1&" + query
		for range 10 {
			res := e.do(admin, "GET", path, nil)
			var page struct {
				Invoices   []invoiceJSON
				NextCursor *string `json:"next_cursor"`
			}
			res.decode(t, &page)
			if res.status != 200 {
				t.Fatalf("GET %s: %d %s", path, res.status, res.body)
			}
			for _, inv := range page.Invoices {
				numbers = append(numbers, inv.Number)
			}
			if page.NextCursor == nil {
				return numbers
			}
			path = "/v1/invoices?limit=1&" + query + "&cursor=" + *page.NextCursor
		}
		t.Fatal("no end")
		return nil
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"L-2", "L-3", "L-1"}}, // newest issue date first, then newest ID
		{"sort=amount_minor", []string{"L-2", "L-3", "L-1"}},
		{"sort=amount_minor&order=desc", []string{"L-1", "L-3", "L-2"}},
		{"sort=account", []string{"L-2", "L-1", "L-3"}},
		{"sort=account&order=desc", []string{"L-3", "L-1", "L-2"}},
		{"sort=status&order=desc", []string{"L-3", "L-2", "L-1"}},
		{"status=paid", []string{"L-3"}},
		{"status=open,overdue&sort=number", []string{"L-1", "L-2"}},
		{fmt.Sprintf("account=%d&sort=number", other.ID), []string{"L-2"}},
		{"period_from=2026-11-01&period_to=2026-12-15", []string{"L-2"}},
		{"period_to=2026-10-31&sort=number", []string{"L-1", "L-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			e.t = t
			if got := list(tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	e.t = t
	for _, q := range []string{"sort=price", "order=up", "status=late", "period_from=yesterday", "account=x", "cursor=junk"} {
		if res := e.do(admin, "GET", "/v1/invoices?"+q, nil); res.status != 400 {
			t.Errorf("GET ?%s: %d %s, want 400", q, res.status, res.body)
		}
	}
}

func TestPatchInvoice(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	inv := e.newInvoice(e.a)
	path := "/v1/invoices/" + inv.Number
	steps := []struct {
		body   any
		status int
		want   string
	}{
		{map[string]any{"status": "overdue"}, 200, "overdue"},
		{map[string]any{"status": "overdue"}, 200, "overdue"}, // the same: a no-op
		{map[string]any{"status": "open"}, 400, "cannot go from overdue to open"},
		{map[string]any{"status": "void"}, 200, "void"},
		{map[string]any{"status": "paid"}, 400, "final"},
		{map[string]any{"status": "late"}, 400, "unknown invoice status"},
		{map[string]any{}, 400, `"status" is required`},
		{map[string]any{"amount_minor": 5}, 400, "unknown field"},
	}
	for _, s := range steps {
		res := e.do(admin, "PATCH", path, s.body)
		text := string(res.body)
		if res.status != 200 {
			text = res.errorMessage()
		}
		if res.status != s.status || !strings.Contains(text, s.want) {
			t.Errorf("PATCH %v: %d %s, want %d with %q", s.body, res.status, res.body, s.status, s.want)
		}
	}
	if res := e.do(admin, "PATCH", "/v1/invoices/NOPE-1", map[string]any{"status": "paid"}); res.status != 404 {
		t.Errorf("unknown number: %d", res.status)
	}
	var entries []*casedesk.AuditEntry
	e.update(func(tx casedesk.Tx) (err error) {
		entries, err = tx.ListAudit(context.Background(), e.a.tenant.ID, casedesk.AuditFilter{Action: "invoice.update", Limit: 100})
		return err
	})
	if len(entries) != 3 || entries[0].TargetID != inv.Number {
		t.Errorf("audit entries %d, want one per accepted change", len(entries))
	}
}

func TestInvoicePDF(t *testing.T) {
	e := newAPIEnv(t)
	inv := e.newInvoice(e.a)
	res := e.do(e.a.keys[casedesk.RoleFinance], "GET", "/v1/invoices/"+inv.Number+"/pdf", nil)
	if res.status != 200 || res.header.Get("Content-Type") != "application/pdf" ||
		res.header.Get("Content-Disposition") != `attachment; filename="invoice-`+inv.Number+`.pdf"` {
		t.Fatalf("%d %v", res.status, res.header)
	}
	text := pdfText(t, res.body)
	for _, want := range []string{inv.Number, "1,234.56 EUR", "Customer Inc alpha", "Acme alpha", "cara@customer.example"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF lacks %q:\n%s", want, text)
		}
	}
	if res := e.do(e.b.keys[casedesk.RoleAdmin], "GET", "/v1/invoices/"+inv.Number+"/pdf", nil); res.status != 404 {
		t.Errorf("another tenant's PDF: %d", res.status)
	}
}

// TestSendInvoice: finance queues the invoice's mail, its PDF attached, to
// the billing contact; again queues another; a void invoice or an account
// without a billing contact is refused, saying why.
func TestSendInvoice(t *testing.T) {
	e := newAPIEnv(t)
	finance := e.a.keys[casedesk.RoleFinance]
	inv := e.newInvoice(e.a)
	for i := range 2 {
		res := e.do(finance, "POST", "/v1/invoices/"+inv.Number+"/send", nil)
		if res.status != 202 || !strings.Contains(string(res.body), `"to":"cara@customer.example"`) {
			t.Fatalf("send %d: %d %s", i, res.status, res.body)
		}
	}
	mails := e.invoiceOutbox(e.a)
	if len(mails) != 2 {
		t.Fatalf("%d invoice mails queued, want 2", len(mails))
	}
	m := mails[0]
	if m.To != "cara@customer.example" || m.Payload.InvoiceNumber != inv.Number || m.Payload.AmountMinor != 123456 ||
		m.Payload.Overdue || len(m.Payload.Attachments) != 1 {
		t.Fatalf("mail %+v", m)
	}
	var content []byte
	e.update(func(tx casedesk.Tx) (err error) {
		var sum []byte
		fmt.Sscanf(m.Payload.Attachments[0].SHA256, "%x", &sum)
		content, err = tx.AttachmentContent(context.Background(), e.a.tenant.ID, sum)
		return err
	})
	if text := pdfText(t, content); !strings.Contains(text, inv.Number) || !strings.Contains(text, "1,234.56 EUR") {
		t.Errorf("the attached PDF says:\n%s", text)
	}
	res := e.do(finance, "GET", "/v1/invoices/"+inv.Number, nil)
	if res.status != 200 || strings.Contains(string(res.body), `"sent_at":null`) {
		t.Errorf("after send: %s", res.body)
	}

	// Overdue: the mail reads as a reminder.
	late := e.newInvoice(e.a)
	e.do(e.a.keys[casedesk.RoleAdmin], "PATCH", "/v1/invoices/"+late.Number, map[string]any{"status": "overdue"})
	if res := e.do(finance, "POST", "/v1/invoices/"+late.Number+"/send", nil); res.status != 202 || !strings.Contains(string(res.body), `"overdue":true`) {
		t.Errorf("send overdue: %d %s", res.status, res.body)
	}
	void := e.newInvoice(e.a)
	e.do(e.a.keys[casedesk.RoleAdmin], "PATCH", "/v1/invoices/"+void.Number, map[string]any{"status": "void"})
	if res := e.do(finance, "POST", "/v1/invoices/"+void.Number+"/send", nil); res.status != 400 || !strings.Contains(res.errorMessage(), "void") {
		t.Errorf("send void: %d %s", res.status, res.body)
	}
	e.update(func(tx casedesk.Tx) error {
		none := int64(0)
		_, err := tx.UpdateAccount(context.Background(), e.a.tenant.ID, e.a.account.ID, casedesk.AccountUpdate{BillingContactID: &none})
		return err
	})
	if res := e.do(finance, "POST", "/v1/invoices/"+inv.Number+"/send", nil); res.status != 400 || !strings.Contains(res.errorMessage(), "no billing contact") {
		t.Errorf("send without billing contact: %d %s", res.status, res.body)
	}
	if got := len(e.invoiceOutbox(e.a)); got != 3 {
		t.Errorf("%d invoice mails queued, want 3", got)
	}
	if res := e.do(finance, "POST", "/v1/invoices/NOPE/send", nil); res.status != 404 {
		t.Errorf("unknown number: %d", res.status)
	}
}

// TestInvoicePermissions: finance reads and sends but cannot create or
// change; support and technical users get 403 everywhere.
func TestInvoicePermissions(t *testing.T) {
	e := newAPIEnv(t)
	inv := e.newInvoice(e.a)
	tests := []struct {
		role, method, path string
		body               any
		want               int
	}{
		{casedesk.RoleFinance, "GET", "/v1/invoices", nil, 200},
		{casedesk.RoleFinance, "GET", "/v1/invoices/" + inv.Number, nil, 200},
		{casedesk.RoleFinance, "POST", "/v1/invoices/" + inv.Number + "/send", nil, 202},
		{casedesk.RoleFinance, "POST", "/v1/invoices", invoiceBody(e.a.account.ID, "F-1", "EUR", 1), 403},
		{casedesk.RoleFinance, "PATCH", "/v1/invoices/" + inv.Number, map[string]any{"status": "paid"}, 403},
		{casedesk.RoleSupport, "GET", "/v1/invoices", nil, 403},
		{casedesk.RoleSupport, "GET", "/v1/invoices/" + inv.Number + "/pdf", nil, 403},
		{casedesk.RoleSupport, "POST", "/v1/invoices/" + inv.Number + "/send", nil, 403},
		{casedesk.RoleTechnical, "GET", "/v1/invoices/" + inv.Number, nil, 403},
		{casedesk.RoleTechnical, "POST", "/v1/invoices/" + inv.Number + "/send", nil, 403},
		{casedesk.RoleAdmin, "POST", "/v1/invoices", invoiceBody(e.a.account.ID, "A-1", "EUR", 1), 201},
	}
	for _, tt := range tests {
		if res := e.do(e.a.keys[tt.role], tt.method, tt.path, tt.body); res.status != tt.want {
			t.Errorf("%s %s %s: %d %s, want %d", tt.role, tt.method, tt.path, res.status, res.body, tt.want)
		}
	}
}
