package notify

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/invoicepdf"
)

// TestWorkerSendsInvoicePDF: an invoice queued as the admin API and the
// invoices job queue it reaches the SMTP server addressed to the billing
// contact, with the invoice's PDF attached; the PDF parses and shows the
// number and the total. A reminder says it is one.
func TestWorkerSendsInvoicePDF(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	var invs []*casedesk.Invoice
	err := e.db.Update(ctx, func(tx casedesk.Tx) error {
		bea, err := tx.UpsertContact(ctx, e.tenant.ID, casedesk.Address{Name: "Bea Bührer", Email: "bea@customer.example"})
		if err != nil {
			return err
		}
		acct, err := tx.CreateAccount(ctx, casedesk.NewAccount{TenantID: e.tenant.ID, Name: "Müller GmbH", BillingContactID: bea.ID})
		if err != nil {
			return err
		}
		day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
		var ns []casedesk.NewInvoice
		for _, number := range []string{"INV-2026-0042", "INV-2026-0043"} {
			ns = append(ns, casedesk.NewInvoice{AccountID: acct.ID, Number: number, Currency: "EUR",
				PeriodStart: day(10, 1), PeriodEnd: day(10, 31), IssueDate: day(11, 1), DueDate: day(11, 30),
				Lines: []casedesk.InvoiceLine{{Description: "Support plan", Quantity: 2, UnitPriceMinor: 61728}}})
		}
		if _, err := tx.CreateInvoices(ctx, e.tenant.ID, ns); err != nil {
			return err
		}
		for _, n := range ns {
			inv, err := tx.FindInvoiceByNumber(ctx, e.tenant.ID, n.Number)
			if err != nil {
				return err
			}
			invs = append(invs, inv)
		}
		if _, err := casedesk.QueueInvoiceMail(ctx, tx, e.tenant, invs[:1], casedesk.InvoiceMailNew, invoicepdf.Render); err != nil {
			return err
		}
		_, err = casedesk.QueueInvoiceMail(ctx, tx, e.tenant, invs[1:], casedesk.InvoiceMailOverdue, invoicepdf.Render)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats := e.drain(); stats.Sent != 2 || stats.Failed != 0 {
		t.Fatalf("stats = %+v", stats)
	}
	for i, inv := range invs {
		env, rec := e.captured(i)
		if !slices.Equal(rec.To, []string{"bea@customer.example"}) {
			t.Errorf("%s sent to %v", inv.Number, rec.To)
		}
		subject := env.GetHeader("Subject")
		if !strings.Contains(subject, inv.Number) || strings.Contains(subject, "Reminder") != (i == 1) {
			t.Errorf("subject %q", subject)
		}
		if !strings.Contains(env.Text, "Bea Bührer") || !strings.Contains(env.Text, "1,234.56 EUR") {
			t.Errorf("text:\n%s", env.Text)
		}
		if len(env.Attachments) != 1 {
			t.Fatalf("%d attachments", len(env.Attachments))
		}
		a := env.Attachments[0]
		if a.ContentType != "application/pdf" || a.FileName != "invoice-"+inv.Number+".pdf" {
			t.Errorf("attachment %s %q", a.ContentType, a.FileName)
		}
		r, err := pdf.NewReader(bytes.NewReader(a.Content), int64(len(a.Content)))
		if err != nil {
			t.Fatalf("the attachment is no PDF: %v", err)
		}
		rd, err := r.GetPlainText()
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(rd)
		for _, want := range []string{inv.Number, "1,234.56 EUR", "Müller GmbH", "Acme Support"} {
			if !bytes.Contains(text, []byte(want)) {
				t.Errorf("the PDF lacks %q:\n%s", want, text)
			}
		}
	}
}
