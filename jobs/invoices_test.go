package jobs

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/internal/testlog"
	"github.com/casedesk/casedesk/invoicepdf"
)

func (e *env) invoices(batchSize int) Job {
	return Invoices(e.db, InvoicesOptions{Logger: testlog.New(), BatchSize: batchSize, Render: invoicepdf.Render})
}

func invoiceSummary(sent, reminders, overdue, undeliverable int) Summary {
	return Summary{KeyInvoicesSent: sent, KeyInvoiceReminders: reminders, KeyInvoicesOverdue: overdue, KeyUndeliverable: undeliverable}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// billedAccount creates an account whose billing contact is the fixture's
// requester (or none, with billing false).
func (f *tenantFixture) billedAccount(name string, billing bool) *casedesk.Account {
	f.t.Helper()
	var a *casedesk.Account
	f.update(func(tx casedesk.Tx) (err error) {
		n := casedesk.NewAccount{TenantID: f.tenant.ID, Name: name}
		if billing {
			n.BillingContactID = f.requester.ID
		}
		a, err = tx.CreateAccount(context.Background(), n)
		return err
	})
	return a
}

// invoice creates an open invoice issued and due on the days given.
func (f *tenantFixture) invoice(acct *casedesk.Account, number string, issue, due time.Time) {
	f.t.Helper()
	f.update(func(tx casedesk.Tx) error {
		_, err := tx.CreateInvoices(context.Background(), f.tenant.ID, []casedesk.NewInvoice{{AccountID: acct.ID,
			Number: number, Currency: "EUR", PeriodStart: issue.AddDate(0, -1, 0), PeriodEnd: issue.AddDate(0, 0, -1),
			IssueDate: issue, DueDate: due, Lines: []casedesk.InvoiceLine{{Description: "Support", Quantity: 3, UnitPriceMinor: 41152}}}})
		return err
	})
}

func (f *tenantFixture) invoiceStatus(number string) *casedesk.Invoice {
	f.t.Helper()
	var inv *casedesk.Invoice
	f.update(func(tx casedesk.Tx) (err error) {
		inv, err = tx.FindInvoiceByNumber(context.Background(), f.tenant.ID, number)
		return err
	})
	return inv
}

// invoiceMail lists the numbers of the invoices mailed, in order, with
// "!" after a reminder's.
func invoiceMail(ms []mail) []string {
	var out []string
	for _, m := range ms {
		if m.Kind == casedesk.OutboxInvoice {
			n := m.Payload["invoice_number"].(string)
			if m.Payload["overdue"] == true {
				n += "!"
			}
			out = append(out, n)
		}
	}
	return out
}

func TestInvoicesJob(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	billed, unbilled := f.billedAccount("Müller GmbH", true), f.billedAccount("No Billing Ltd", false)
	f.invoice(billed, "NEW-1", date(2026, 3, 1), date(2026, 3, 31))
	f.invoice(billed, "LATER-1", date(2026, 3, 10), date(2026, 4, 10))
	f.invoice(billed, "LATE-1", date(2026, 1, 1), date(2026, 2, 1)) // past due before it was ever sent
	f.invoice(unbilled, "NOBODY-1", date(2026, 2, 1), date(2026, 3, 1))
	f.invoice(billed, "PAID-1", date(2026, 3, 1), date(2026, 3, 31))
	f.update(func(tx casedesk.Tx) error {
		_, err := tx.SetInvoiceStatus(context.Background(), f.tenant.ID, "PAID-1", casedesk.InvoicePaid)
		return err
	})
	job := e.invoices(2)

	// 2 March: NEW-1 goes out; LATE-1 gets its reminder (with the PDF)
	// and is overdue; NOBODY-1 is overdue, with no one to tell.
	wantSummary(t, "2 March", e.run(job, t0), invoiceSummary(1, 1, 2, 0))
	mails := f.outbox()
	if got := invoiceMail(mails); strings.Join(got, " ") != "NEW-1 LATE-1!" {
		t.Fatalf("mail after 2 March: %v, want NEW-1 and the reminder of LATE-1", got)
	}
	for _, m := range mails {
		if m.To != "cara@customer.example" || m.CaseID != 0 {
			t.Errorf("invoice mail to %q on case %d", m.To, m.CaseID)
		}
		f.checkAttachedPDF(m)
	}
	for number, want := range map[string]casedesk.InvoiceStatus{"NEW-1": "open", "LATE-1": "overdue", "NOBODY-1": "overdue", "PAID-1": "paid"} {
		if got := f.invoiceStatus(number); got.Status != want {
			t.Errorf("%s is %s, want %s", number, got.Status, want)
		}
	}
	// Again, the same day and an hour later: nothing.
	wantSummary(t, "2 March again", e.run(job, t0), invoiceSummary(0, 0, 0, 0))
	wantSummary(t, "2 March later", e.run(job, t0.Add(time.Hour)), invoiceSummary(0, 0, 0, 0))

	// 10 March LATER-1 is issued; NOBODY-1's account gets a billing
	// contact, so its reminder goes now.
	f.update(func(tx casedesk.Tx) error {
		_, err := tx.UpdateAccount(context.Background(), f.tenant.ID, unbilled.ID, casedesk.AccountUpdate{BillingContactID: &f.requester.ID})
		return err
	})
	wantSummary(t, "10 March", e.run(job, date(2026, 3, 10).Add(8*time.Hour)), invoiceSummary(1, 1, 0, 0))
	// 31 March NEW-1 is due, not late; 1 April it is.
	wantSummary(t, "31 March", e.run(job, date(2026, 3, 31).Add(23*time.Hour)), invoiceSummary(0, 0, 0, 0))
	wantSummary(t, "1 April", e.run(job, date(2026, 4, 1)), invoiceSummary(0, 1, 1, 0))
	wantSummary(t, "1 April again", e.run(job, date(2026, 4, 1).Add(time.Minute)), invoiceSummary(0, 0, 0, 0))
	if got := invoiceMail(f.outbox()); strings.Join(got, " ") != "NEW-1 LATE-1! LATER-1 NOBODY-1! NEW-1!" {
		t.Errorf("all mail: %v", got)
	}
}

// checkAttachedPDF fails the test unless the mail's attachment is a
// stored blob of the tenant that parses as the invoice's PDF.
func (f *tenantFixture) checkAttachedPDF(m mail) {
	f.t.Helper()
	atts, _ := m.Payload["attachments"].([]any)
	if len(atts) != 1 {
		f.t.Fatalf("attachments %v", m.Payload["attachments"])
	}
	a := atts[0].(map[string]any)
	number := m.Payload["invoice_number"].(string)
	if a["name"] != "invoice-"+number+".pdf" || a["content_type"] != "application/pdf" {
		f.t.Errorf("attachment %v", a)
	}
	sum, _ := hex.DecodeString(a["sha256"].(string))
	var content []byte
	f.update(func(tx casedesk.Tx) (err error) {
		content, err = tx.AttachmentContent(context.Background(), f.tenant.ID, sum)
		return err
	})
	r, err := pdf.NewReader(bytes.NewReader(content), int64(len(content)))
	if err != nil {
		f.t.Fatalf("attachment of %s is no PDF: %v", number, err)
	}
	rd, err := r.GetPlainText()
	if err != nil {
		f.t.Fatal(err)
	}
	text, _ := io.ReadAll(rd)
	for _, want := range []string{number, "1,234.56 EUR", "Müller GmbH", "Acme acme"} {
		if !bytes.Contains(text, []byte(want)) && !(want == "Müller GmbH" && number == "NOBODY-1") {
			f.t.Errorf("the PDF of %s lacks %q", number, want)
		}
	}
}

// TestInvoicesJobConcurrent: runs at the same time (without the job's
// lock, as two replicas whose lock failed would) mail every invoice once.
func TestInvoicesJobConcurrent(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	acct := f.billedAccount("Müller GmbH", true)
	const n = 60
	for i := range n {
		due := date(2026, 3, 31)
		if i%2 == 1 {
			due = date(2026, 2, 20) // reminders
		}
		f.invoice(acct, fmt.Sprintf("C-%03d", i), date(2026, 2, 1), due)
	}
	job := e.invoices(7)
	e.clock.Set(t0)
	var wg sync.WaitGroup
	sums := make([]Summary, 4)
	for i := range sums {
		wg.Go(func() {
			s, err := job.Run(context.Background(), t0)
			if err != nil {
				t.Error(err)
			}
			sums[i] = s
		})
	}
	wg.Wait()
	total := Summary{}
	for _, s := range sums {
		for k, v := range s {
			total[k] += v
		}
	}
	wantSummary(t, "four runs together", total, invoiceSummary(n/2, n/2, n/2, 0))
	count := map[string]int{}
	for _, number := range invoiceMail(f.outbox()) {
		count[strings.TrimSuffix(number, "!")]++
	}
	if len(count) != n {
		t.Errorf("%d invoices mailed, want %d", len(count), n)
	}
	for number, c := range count {
		if c != 1 {
			t.Errorf("%s mailed %d times", number, c)
		}
	}
}
