package casedesk

import (
	"math"
	"strings"
	"testing"
	"time"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func validInvoice() NewInvoice {
	return NewInvoice{AccountID: 1, Number: "INV-2026-001", Currency: "EUR",
		PeriodStart: date(2026, 10, 1), PeriodEnd: date(2026, 10, 31), IssueDate: date(2026, 11, 1), DueDate: date(2026, 11, 30),
		Lines: []InvoiceLine{{Description: "Plan", Quantity: 2, UnitPriceMinor: 1000}, {Description: "Rabatt", Quantity: 1, UnitPriceMinor: -500}}}
}

func TestNewInvoiceValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(n *NewInvoice)
		field  string // in the error message; "" means valid
	}{
		{"valid", func(n *NewInvoice) {}, ""},
		{"amount given and right", func(n *NewInvoice) { n.AmountMinor = ptrTo(int64(1500)) }, ""},
		{"amount given and wrong", func(n *NewInvoice) { n.AmountMinor = ptrTo(int64(1501)) }, `"amount_minor"`},
		{"no account", func(n *NewInvoice) { n.AccountID = 0 }, `"account_id"`},
		{"no number", func(n *NewInvoice) { n.Number = "" }, `"number"`},
		{"number with slash", func(n *NewInvoice) { n.Number = "INV/1" }, `"number"`},
		{"number with dot first", func(n *NewInvoice) { n.Number = ".." }, `"number"`},
		{"number too long", func(n *NewInvoice) { n.Number = strings.Repeat("9", 65) }, `"number"`},
		{"number longest", func(n *NewInvoice) { n.Number = strings.Repeat("9", 64) }, ""},
		{"lower-case currency", func(n *NewInvoice) { n.Currency = "eur" }, `"currency"`},
		{"unknown currency", func(n *NewInvoice) { n.Currency = "XYZ" }, `"currency"`},
		{"JPY", func(n *NewInvoice) { n.Currency = "JPY" }, ""},
		{"unknown status", func(n *NewInvoice) { n.Status = "late" }, `"status"`},
		{"period end before start", func(n *NewInvoice) { n.PeriodEnd = date(2026, 9, 30) }, `"period_end"`},
		{"one-day period", func(n *NewInvoice) { n.PeriodEnd = n.PeriodStart }, ""},
		{"due before issue", func(n *NewInvoice) { n.DueDate = date(2026, 10, 31) }, `"due_date"`},
		{"no due date", func(n *NewInvoice) { n.DueDate = time.Time{} }, `"due_date"`},
		{"no issue date", func(n *NewInvoice) { n.IssueDate = time.Time{} }, `"issue_date"`},
		{"no lines", func(n *NewInvoice) { n.Lines = nil }, `"lines"`},
		{"zero quantity", func(n *NewInvoice) { n.Lines[1].Quantity = 0 }, `"lines[1].quantity"`},
		{"negative total", func(n *NewInvoice) { n.Lines[1].UnitPriceMinor = -5000 }, "negative"},
		{"empty description", func(n *NewInvoice) { n.Lines[0].Description = "" }, ""},
		{"long description", func(n *NewInvoice) { n.Lines[0].Description = strings.Repeat("ü", 1001) }, `"lines[0].description"`},
		{"bad UTF-8", func(n *NewInvoice) { n.Lines[0].Description = "\xff" }, `"lines[0].description"`},
		{"line overflow", func(n *NewInvoice) { n.Lines[0].Quantity = 1 << 32; n.Lines[0].UnitPriceMinor = 1 << 32 }, "lines[0]"},
		{"sum overflow", func(n *NewInvoice) {
			n.Lines = []InvoiceLine{{Quantity: 1, UnitPriceMinor: math.MaxInt64}, {Quantity: 1, UnitPriceMinor: 1}}
		}, "too large"},
		{"largest amount", func(n *NewInvoice) { n.Lines = []InvoiceLine{{Quantity: 1, UnitPriceMinor: math.MaxInt64}} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := validInvoice()
			tt.change(&n)
			_, err := n.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.field != "" && (ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tt.field)):
				t.Fatalf("error %v, want invalid naming %s", err, tt.field)
			}
		})
	}
	n := validInvoice()
	n.IssueDate = time.Date(2026, 11, 1, 23, 59, 0, 0, time.FixedZone("", 9*3600))
	total, err := n.Validate()
	if err != nil || total != 1500 || n.Status != InvoiceOpen || !n.IssueDate.Equal(date(2026, 11, 1)) {
		t.Errorf("Validate = %d, %v; status %q, issue date %v", total, err, n.Status, n.IssueDate)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestMulInt64(t *testing.T) {
	tests := []struct {
		a, b, want int64
		ok         bool
	}{
		{3, -4, -12, true},
		{math.MaxInt64, 1, math.MaxInt64, true},
		{math.MaxInt64, 2, 0, false},
		{math.MinInt64, 1, math.MinInt64, true},
		{math.MinInt64, -1, 0, false},
		{-1 << 31, 1 << 32, math.MinInt64, true},
		{1 << 31, 1 << 32, 0, false},
	}
	for _, tt := range tests {
		if got, ok := mulInt64(tt.a, tt.b); got != tt.want || ok != tt.ok {
			t.Errorf("mulInt64(%d, %d) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckInvoiceTransition(t *testing.T) {
	all := []InvoiceStatus{InvoiceOpen, InvoiceOverdue, InvoicePaid, InvoiceVoid}
	allowed := map[[2]InvoiceStatus]bool{
		{InvoiceOpen, InvoicePaid}: true, {InvoiceOpen, InvoiceOverdue}: true, {InvoiceOpen, InvoiceVoid}: true,
		{InvoiceOverdue, InvoicePaid}: true, {InvoiceOverdue, InvoiceVoid}: true,
	}
	for _, from := range all {
		for _, to := range all {
			err := CheckInvoiceTransition(from, to)
			if want := from == to || allowed[[2]InvoiceStatus{from, to}]; (err == nil) != want {
				t.Errorf("%s -> %s: %v, want allowed %v", from, to, err, want)
			}
		}
	}
	if err := CheckInvoiceTransition(InvoiceOpen, "late"); ErrorCode(err) != EINVALID {
		t.Errorf("unknown status: %v", err)
	}
}

func TestInvoiceMailDue(t *testing.T) {
	today := time.Date(2026, 11, 15, 23, 0, 0, 0, time.UTC)
	sent := date(2026, 11, 1)
	tests := []struct {
		name string
		inv  Invoice
		want InvoiceMailKind
	}{
		{"new", Invoice{Status: InvoiceOpen, IssueDate: date(2026, 11, 1), DueDate: date(2026, 11, 30)}, InvoiceMailNew},
		{"issued today", Invoice{Status: InvoiceOpen, IssueDate: date(2026, 11, 15), DueDate: date(2026, 11, 30)}, InvoiceMailNew},
		{"issued tomorrow", Invoice{Status: InvoiceOpen, IssueDate: date(2026, 11, 16), DueDate: date(2026, 11, 30)}, InvoiceMailNone},
		{"sent", Invoice{Status: InvoiceOpen, IssueDate: date(2026, 11, 1), DueDate: date(2026, 11, 30), SentAt: sent}, InvoiceMailNone},
		{"due today is not late", Invoice{Status: InvoiceOpen, IssueDate: date(2026, 11, 1), DueDate: date(2026, 11, 15), SentAt: sent}, InvoiceMailNone},
		{"late", Invoice{Status: InvoiceOpen, IssueDate: date(2026, 10, 1), DueDate: date(2026, 11, 14), SentAt: sent}, InvoiceMailOverdue},
		{"late, never sent: the reminder only", Invoice{Status: InvoiceOpen, IssueDate: date(2026, 10, 1), DueDate: date(2026, 11, 14)}, InvoiceMailOverdue},
		{"marked overdue by hand", Invoice{Status: InvoiceOverdue, IssueDate: date(2026, 10, 1), DueDate: date(2026, 11, 14), SentAt: sent}, InvoiceMailOverdue},
		{"reminded", Invoice{Status: InvoiceOverdue, IssueDate: date(2026, 10, 1), DueDate: date(2026, 11, 14), SentAt: sent, RemindedAt: sent}, InvoiceMailNone},
		{"overdue before its due date, never sent", Invoice{Status: InvoiceOverdue, IssueDate: date(2026, 11, 1), DueDate: date(2026, 11, 30)}, InvoiceMailNone},
		{"paid", Invoice{Status: InvoicePaid, IssueDate: date(2026, 10, 1), DueDate: date(2026, 11, 14)}, InvoiceMailNone},
		{"void", Invoice{Status: InvoiceVoid, IssueDate: date(2026, 11, 1), DueDate: date(2026, 11, 30)}, InvoiceMailNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InvoiceMailDue(&tt.inv, today); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFormatMinor(t *testing.T) {
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{123456, "EUR", "1,234.56 EUR"},
		{1500, "JPY", "1,500 JPY"},
		{1234567, "KWD", "1,234.567 KWD"},
		{5, "USD", "0.05 USD"},
		{-5, "USD", "-0.05 USD"},
		{0, "CHF", "0.00 CHF"},
		{9007199254740993, "USD", "90,071,992,547,409.93 USD"},
		{math.MinInt64, "JPY", "-9,223,372,036,854,775,808 JPY"},
	}
	for _, tt := range tests {
		if got := FormatMinor(tt.amount, tt.currency); got != tt.want {
			t.Errorf("FormatMinor(%d, %s) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestInvoiceFileName(t *testing.T) {
	for in, want := range map[string]string{"INV-1.a_b": "invoice-INV-1.a_b.pdf", "../x/y\"z": "invoice-_x_y_z.pdf", "": "invoice-.pdf"} {
		if got := InvoiceFileName(in); got != want {
			t.Errorf("InvoiceFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
