package templates

import (
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

// TestInvoiceReminderVariant: the invoice mail reads as a reminder when
// the invoice is overdue, and as the invoice otherwise, in each language.
func TestInvoiceReminderVariant(t *testing.T) {
	tests := []struct {
		lang    string
		overdue bool
		subject string
		says    []string
		never   string
	}{
		{"en", false, "Invoice INV-2031-0042 from Acme Support", []string{"Please find attached invoice INV-2031-0042"}, "overdue"},
		{"en", true, "Reminder: invoice INV-2031-0042 from Acme Support is overdue",
			[]string{"was\ndue on 15 March 2031 and has not been paid yet", "1,234.56 EUR"}, "Please find attached"},
		{"de", false, "Rechnung INV-2031-0042 von Acme Support", []string{"anbei erhalten Sie die Rechnung INV-2031-0042"}, "überfällig"},
		{"de", true, "Zahlungserinnerung: Rechnung INV-2031-0042 von Acme Support ist überfällig",
			[]string{"war am 15.03.2031\nfällig", "1.234,56 EUR"}, "anbei"},
	}
	var none *Set
	for _, tt := range tests {
		data := Sample(casedesk.OutboxInvoice).(InvoiceData)
		data.Overdue = tt.overdue
		r, err := none.Render(casedesk.OutboxInvoice, tt.lang, data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Subject != tt.subject {
			t.Errorf("%s overdue=%v: subject %q, want %q", tt.lang, tt.overdue, r.Subject, tt.subject)
		}
		for _, want := range tt.says {
			if !strings.Contains(r.Text, want) {
				t.Errorf("%s overdue=%v: text lacks %q:\n%s", tt.lang, tt.overdue, want, r.Text)
			}
			if first := strings.SplitN(want, "\n", 2)[0]; !strings.Contains(string(r.HTML), first) {
				t.Errorf("%s overdue=%v: HTML lacks %q", tt.lang, tt.overdue, first)
			}
		}
		if strings.Contains(r.Text, tt.never) || strings.Contains(string(r.HTML), tt.never) {
			t.Errorf("%s overdue=%v: says %q:\n%s", tt.lang, tt.overdue, tt.never, r.Text)
		}
	}
}
