package invoicepdf

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ledongthuc/pdf"

	"github.com/casedesk/casedesk"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func line(desc string, qty, unit int64) casedesk.InvoiceLine {
	return casedesk.InvoiceLine{Description: desc, Quantity: qty, UnitPriceMinor: unit}
}

func sample(number string, currency string, lines ...casedesk.InvoiceLine) *casedesk.Invoice {
	total, err := casedesk.InvoiceTotal(lines)
	if err != nil {
		panic(err)
	}
	return &casedesk.Invoice{ID: 7, Number: number, Currency: currency, AmountMinor: total, Status: casedesk.InvoiceOpen,
		PeriodStart: day(2026, 10, 1), PeriodEnd: day(2026, 10, 31), IssueDate: day(2026, 11, 1), DueDate: day(2026, 11, 30),
		Lines:          lines,
		Account:        &casedesk.Account{ID: 3, Name: "Müller GmbH"},
		BillingContact: &casedesk.Contact{Name: "Zoë Øster", Email: "zoe@mueller.example"}}
}

// extract reads a PDF back with a PDF reader (not ours): its text, with
// the fonts' ToUnicode maps applied, and its number of pages.
func extract(t testing.TB, doc []byte) (string, int) {
	t.Helper()
	if !bytes.HasPrefix(doc, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %.20q", doc)
	}
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		t.Fatalf("parse PDF: %v", err)
	}
	rd, err := r.GetPlainText()
	if err != nil {
		t.Fatalf("extract text: %v", err)
	}
	text, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return string(text), r.NumPage()
}

func TestRenderShowsNumberAndTotal(t *testing.T) {
	tests := []struct {
		currency string
		lines    []casedesk.InvoiceLine
		total    string
		unit     string
	}{
		{"EUR", []casedesk.InvoiceLine{line("Support plan Gold", 2, 50000), line("Überstunden à 95 €", 3, 7818)}, "1,234.54 EUR", "500.00 EUR"},
		{"JPY", []casedesk.InvoiceLine{line("Lizenz", 3, 500)}, "1,500 JPY", "500 JPY"},
		{"KWD", []casedesk.InvoiceLine{line("Consulting", 1, 1234567)}, "1,234.567 KWD", "1,234.567 KWD"},
		{"USD", []casedesk.InvoiceLine{line("Everything", 1, 9007199254740993)}, "90,071,992,547,409.93 USD", "90,071,992,547,409.93 USD"},
	}
	for _, tt := range tests {
		t.Run(tt.currency, func(t *testing.T) {
			inv := sample("INV-2026.11_"+tt.currency, tt.currency, tt.lines...)
			doc, err := Render("Acme Support Ltd", inv)
			if err != nil {
				t.Fatal(err)
			}
			text, pages := extract(t, doc)
			for _, want := range []string{inv.Number, tt.total, tt.unit, "Acme Support Ltd", "Invoice", "Müller GmbH",
				"Zoë Øster", "zoe@mueller.example", "2026-11-30", "2026-10-01 to 2026-10-31", tt.lines[0].Description, "Total"} {
				if !strings.Contains(text, want) {
					t.Errorf("the PDF's text lacks %q:\n%s", want, text)
				}
			}
			if pages != 1 {
				t.Errorf("%d pages, want 1", pages)
			}
		})
	}
}

// TestRenderOddInput: whatever the text, Render returns a PDF that parses
// and still shows the number and the total.
func TestRenderOddInput(t *testing.T) {
	many := make([]casedesk.InvoiceLine, 500)
	for i := range many {
		many[i] = casedesk.InvoiceLine{Description: fmt.Sprintf("Line %d of many", i+1), Quantity: int64(i + 1), UnitPriceMinor: 1}
	}
	longWord := strings.Repeat("W", 3000)
	longText := strings.Repeat("lorem ipsum dolor sit amet ", 200)
	tests := []struct {
		name   string
		vendor string
		inv    *casedesk.Invoice
		pages  int // at least
		also   []string
	}{
		{"empty description", "Acme", sample("E-1", "EUR", line("", 1, 100)), 1, nil},
		{"500 lines", "Acme", sample("M-1", "EUR", many...), 5, []string{"Line 1 of many", "Line 500 of many", "Invoice (continued)"}},
		{"long word", "Acme", sample("W-1", "EUR", line(longWord, 1, 100)), 1, []string{"WWWWWWWWWW", "…"}},
		{"long text", "Acme", sample("T-1", "EUR", line(longText, 1, 100)), 1, []string{"lorem ipsum"}},
		{"scripts the font lacks", "株式会社", sample("C-1", "JPY", line("サポート 🚀 Ελληνικά Кириллица", 1, 100)), 1,
			[]string{"Ελληνικά Кириллица", "??"}},
		{"control characters and bad UTF-8", "Ac\x00me\r\n", sample("X-1", "EUR", line("a\tb\nc\x1b[31m\xff\xfe", 1, 100)), 1,
			[]string{"a b c"}},
		{"no account, contact or dates", "", &casedesk.Invoice{Number: "N-1", Currency: "EUR", AmountMinor: 0,
			Lines: []casedesk.InvoiceLine{line("x", 1, 0)}}, 1, []string{"0.00 EUR"}},
		{"long account name", "Acme", func() *casedesk.Invoice {
			inv := sample("L-1", "EUR", line("x", 1, 1))
			inv.Account.Name = strings.Repeat("Müller ", 100)
			return inv
		}(), 1, []string{"Müller Müller"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Render(tt.vendor, tt.inv)
			if err != nil {
				t.Fatal(err)
			}
			text, pages := extract(t, doc)
			if pages < tt.pages {
				t.Errorf("%d pages, want at least %d", pages, tt.pages)
			}
			total := casedesk.FormatMinor(tt.inv.AmountMinor, tt.inv.Currency)
			for _, want := range append([]string{tt.inv.Number, total}, tt.also...) {
				if !strings.Contains(text, want) {
					t.Errorf("the PDF's text lacks %q:\n%.3000s", want, text)
				}
			}
		})
	}
}

// TestRenderLineOverflow: a line whose amount does not fit in 64 bits
// (stored before validation) is an error, not a wrong number.
func TestRenderLineOverflow(t *testing.T) {
	inv := sample("O-1", "EUR", line("x", 1, 1))
	inv.Lines[0].Quantity = 1 << 40
	inv.Lines[0].UnitPriceMinor = 1 << 40
	if _, err := Render("Acme", inv); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("err = %v, want too large", err)
	}
}

func FuzzRender(f *testing.F) {
	f.Add("Acme", "INV-1", "Müller GmbH", "Support", int64(2), int64(1999), "EUR")
	f.Add("", "", "", "", int64(1), int64(-5), "JPY")
	f.Add("株式会社\x00", "A\nB", "\xff\xfe", strings.Repeat("x", 2000), int64(1)<<40, int64(3), "KWD")
	f.Fuzz(func(t *testing.T, vendor, number, account, desc string, qty, unit int64, currency string) {
		inv := &casedesk.Invoice{Number: number, Currency: currency, IssueDate: day(2026, 1, 1), DueDate: day(2026, 2, 1),
			Account: &casedesk.Account{Name: account}, Lines: []casedesk.InvoiceLine{line(desc, qty, unit), line(desc, 1, 1)}}
		inv.AmountMinor, _ = casedesk.InvoiceTotal(inv.Lines)
		doc, err := Render(vendor, inv)
		if err != nil {
			if _, lerr := inv.Lines[0].TotalMinor(); lerr == nil {
				t.Fatalf("Render: %v", err)
			}
			return
		}
		if text, _ := extract(t, doc); !strings.Contains(text, casedesk.FormatMinor(inv.AmountMinor, currency)) && currency == strings.TrimSpace(currency) && isPrintable(currency) {
			t.Errorf("the PDF lacks its total %q", casedesk.FormatMinor(inv.AmountMinor, currency))
		}
	})
}

// isPrintable reports whether s prints as itself: plain ASCII letters.
func isPrintable(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// BenchmarkRender renders a typical invoice of 12 lines, and one of 500.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{12, 500} {
		lines := make([]casedesk.InvoiceLine, n)
		for i := range lines {
			lines[i] = casedesk.InvoiceLine{Description: fmt.Sprintf("Support hours, week %d: remote sessions and follow-up mail", i+1),
				Quantity: int64(i%7 + 1), UnitPriceMinor: 9550}
		}
		inv := sample("INV-2026-00042", "EUR", lines...)
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				doc, err := Render("Acme Support Ltd", inv)
				if err != nil {
					b.Fatal(err)
				}
				size = len(doc)
			}
			b.ReportMetric(float64(size), "bytes/pdf")
		})
	}
}
