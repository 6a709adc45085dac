package templates

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/casedesk/casedesk"
)

const (
	rawSubject     = `Printer shows <b>&"ERR 42"`
	escapedSubject = `Printer shows &lt;b&gt;&amp;&#34;ERR 42&#34;`
)

// facts are what each rendered default must say, in the text and the HTML
// body, whatever the language; "%" stands for the escaped HTML form.
var facts = map[casedesk.OutboxKind][]string{
	casedesk.OutboxAck:         {"#1234", "Cara Customer", "Acme Support", "support@acme.example"},
	casedesk.OutboxFollowUpAck: {"#1234", "#4711", "Cara Customer", "Acme Support"},
	casedesk.OutboxRelay:       {"#1234", "Alex Agent", "Thanks for the log file.", "Acme Support"},
	casedesk.OutboxReminder:    {"#1234", " 4 ", "Cara Customer", "Acme Support"},
	casedesk.OutboxSolved:      {"#1234", " 14 ", "Cara Customer", "Acme Support"},
	casedesk.OutboxInvoice:     {"INV-2031-0042", "Bea Billing", "Acme Support"},
}

// langFacts are the facts whose form depends on the language.
var langFacts = map[string]map[casedesk.OutboxKind][]string{
	"en": {
		casedesk.OutboxAck:         {"reply to this email", "keep the case\nnumber #1234 in the subject"},
		casedesk.OutboxFollowUpAck: {"was already\nclosed", "new case"},
		casedesk.OutboxRelay:       {"Reply to this email to answer; case #1234."},
		casedesk.OutboxReminder:    {"waiting for your answer", "4 days", "solved"},
		casedesk.OutboxSolved:      {"marked solved", "within 14 days", "reopened"},
		casedesk.OutboxInvoice:     {"1,234.56 EUR", "1 February 2031", "28 February 2031", "15 March 2031", "The PDF is attached"},
	},
	"de": {
		casedesk.OutboxAck:         {"Antworten\nSie einfach auf diese E-Mail", "Vorgangsnummer #1234 im Betreff"},
		casedesk.OutboxFollowUpAck: {"bereits\nabgeschlossen", "neuen Vorgang"},
		casedesk.OutboxRelay:       {"Antworten Sie einfach auf diese E-Mail; Vorgang #1234."},
		casedesk.OutboxReminder:    {"warten wir noch auf Ihre Antwort", "4 Tagen", "gelöst"},
		casedesk.OutboxSolved:      {"als gelöst markiert", "innerhalb von 14 Tagen"},
		casedesk.OutboxInvoice:     {"1.234,56 EUR", "01.02.2031", "28.02.2031", "15.03.2031", "als PDF bei"},
	},
}

func TestDefaultsRenderInEveryLanguage(t *testing.T) {
	if got := Langs(); !slices.Equal(got, []string{"de", "en"}) {
		t.Fatalf("Langs() = %v, want [de en]", got)
	}
	var none *Set
	for _, lang := range Langs() {
		for _, name := range Names() {
			t.Run(lang+"/"+string(name), func(t *testing.T) {
				if c := none.lookup(name, lang); c.lang != lang || c.override {
					t.Fatalf("lookup found %s, want the default in %q", c.describe(), lang)
				}
				r, err := none.Render(name, lang, Sample(name))
				if err != nil {
					t.Fatal(err)
				}
				if r.Subject == "" || strings.Contains(r.Subject, "#1234") {
					t.Errorf("subject %q: want one without the case number (the sender tags it)", r.Subject)
				}
				want := append(slices.Clone(facts[name]), langFacts[lang][name]...)
				for _, f := range want {
					if !strings.Contains(r.Text, f) {
						t.Errorf("text body lacks %q:\n%s", f, r.Text)
					}
					if !strings.Contains(collapse(r.HTML), collapse(f)) {
						t.Errorf("html body lacks %q:\n%s", f, r.HTML)
					}
				}
				if !strings.Contains(r.HTML, `<html lang="`+lang+`">`) {
					t.Errorf("html body is not marked as %q", lang)
				}
			})
		}
	}
}

// collapse joins lines, since the HTML bodies wrap where the text does not.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestDefaultsEscapeHTMLOnlyInHTML(t *testing.T) {
	for _, lang := range Langs() {
		for _, name := range Names() {
			t.Run(lang+"/"+string(name), func(t *testing.T) {
				r, err := Preview(name, lang, nil)
				if name == casedesk.OutboxRelay {
					// A text reply; HTML replies are TestRelayHTML's.
					d := Sample(name).(RelayData)
					d.HTML = ""
					var none *Set
					r, err = none.Render(name, lang, d)
				}
				if err != nil {
					t.Fatal(err)
				}
				raw, escaped := rawSubject, escapedSubject
				switch name {
				case casedesk.OutboxInvoice: // the account name is the outside text here
					raw, escaped = `Customer <b>&"Co"`, `Customer &lt;b&gt;&amp;&#34;Co&#34;`
				case casedesk.OutboxRelay: // the agent's text
					raw, escaped = `& try again: <it works> "now"`, `&amp; try again: &lt;it works&gt; &#34;now&#34;`
				}
				if name != casedesk.OutboxInvoice && !strings.Contains(r.Subject, rawSubject) {
					t.Errorf("subject %q lacks the case subject as it is", r.Subject)
				}
				if !strings.Contains(r.Text, raw) {
					t.Errorf("text body lacks %q as it is:\n%s", raw, r.Text)
				}
				if !strings.Contains(r.HTML, escaped) {
					t.Errorf("html body lacks %q:\n%s", escaped, r.HTML)
				}
				if strings.Contains(r.HTML, "<b>") {
					t.Errorf("html body holds an unescaped <b>:\n%s", r.HTML)
				}
			})
		}
	}
}

func TestRelayKeepsTheAgentsLineBreaks(t *testing.T) {
	var none *Set
	r, err := none.Render(casedesk.OutboxRelay, "en", RelayData{Case: Case{CaseNumber: 7, TenantName: "Acme"},
		Text: "line one\r\nline <two>\n\nline three"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "line one<br>\nline &lt;two&gt;<br>\n<br>\nline three"; !strings.Contains(r.HTML, want) {
		t.Errorf("html body lacks %q:\n%s", want, r.HTML)
	}
	if !strings.HasPrefix(r.Text, "line one\r\nline <two>\n\nline three\n") {
		t.Errorf("text body does not start with the agent's text as it is:\n%q", r.Text)
	}
	if r.Subject != "A reply to your request" {
		t.Errorf("subject of a case without one = %q", r.Subject)
	}
}

// overrideOf returns a valid override whose bodies carry a marker.
func overrideOf(name casedesk.OutboxKind, lang, subject string) casedesk.TemplateOverride {
	marker := "OVERRIDE " + string(name) + " " + lang
	return casedesk.TemplateOverride{Name: string(name), Lang: lang, Subject: subject,
		Text: marker + " from {{.TenantName}}\n", HTML: "<p>" + marker + " from {{.TenantName}}</p>\n"}
}

func TestRenderFallbackOrder(t *testing.T) {
	set, err := NewSet(
		overrideOf(casedesk.OutboxAck, "de", "DE {{.Subject}}"),
		overrideOf(casedesk.OutboxAck, "en", "EN {{.Subject}}"),
		overrideOf(casedesk.OutboxRelay, "en", ""),
		overrideOf(casedesk.OutboxReminder, "fr", "Rappel"),
		overrideOf(casedesk.OutboxInvoice, "de-AT", "Rechnung {{.InvoiceNumber}}"),
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     casedesk.OutboxKind
		lang     string
		wantText string // a line the text body starts with
		wantSubj string
	}{
		{casedesk.OutboxAck, "de", "OVERRIDE ack de", "DE " + rawSubject},                                // override in lang
		{casedesk.OutboxAck, "DE-at", "OVERRIDE ack de", "DE " + rawSubject},                             // override in the base language
		{casedesk.OutboxAck, "fr", "OVERRIDE ack en", "EN " + rawSubject},                                // no French: the English override
		{casedesk.OutboxAck, "", "OVERRIDE ack en", "EN " + rawSubject},                                  // no language: English
		{casedesk.OutboxAck, "not a tag!", "OVERRIDE ack en", "EN " + rawSubject},                        // not a language: English
		{casedesk.OutboxRelay, "de", "Thanks for the log file.", "Re: " + rawSubject},                    // German default beats English override
		{casedesk.OutboxRelay, "en", "OVERRIDE relay en", "Re: " + rawSubject},                           // empty subject keeps the default's
		{casedesk.OutboxRelay, "fr", "OVERRIDE relay en", "Re: " + rawSubject},                           // English override before English default
		{casedesk.OutboxReminder, "fr-CA", "OVERRIDE reminder fr", "Rappel"},                             // region falls back to the language
		{casedesk.OutboxReminder, "en", "Hello Cara Customer,", "Waiting for your reply: " + rawSubject}, // default in lang
		{casedesk.OutboxInvoice, "de", "Guten Tag Bea Billing,", "Zahlungserinnerung: Rechnung INV-2031-0042 von Acme Support ist überfällig"},
		{casedesk.OutboxInvoice, "de-AT", "OVERRIDE invoice de-AT", "Rechnung INV-2031-0042"},
		{casedesk.OutboxSolved, "it", "Hello Cara Customer,", "Your case is marked solved: " + rawSubject}, // nothing in Italian: English default
	}
	for _, tt := range tests {
		t.Run(string(tt.name)+"/"+tt.lang, func(t *testing.T) {
			r, err := set.Render(tt.name, tt.lang, Sample(tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.Text, tt.wantText) {
				t.Errorf("text body starts %q, want %q", firstLine(r.Text), tt.wantText)
			}
			if r.Subject != tt.wantSubj {
				t.Errorf("subject %q, want %q", r.Subject, tt.wantSubj)
			}
		})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func TestOverrideEscapesHTML(t *testing.T) {
	o := overrideOf(casedesk.OutboxAck, "en", "{{.Subject}}")
	o.HTML = "<p>OVERRIDE ack en {{.Subject}}</p>\n"
	set, err := NewSet(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := set.Render(casedesk.OutboxAck, "en", Sample(casedesk.OutboxAck))
	if err != nil {
		t.Fatal(err)
	}
	if want := "<p>OVERRIDE ack en " + escapedSubject + "</p>\n"; r.HTML != want {
		t.Errorf("html body %q, want %q", r.HTML, want)
	}
	if r.Subject != rawSubject {
		t.Errorf("subject %q, want %q", r.Subject, rawSubject)
	}
}

// TestSubjectIsOneLine checks that neither a customer's subject nor a
// tenant's subject template can add a header line.
func TestSubjectIsOneLine(t *testing.T) {
	set, err := NewSet(overrideOf(casedesk.OutboxReminder, "en", "Reminder\r\nBcc: all@example.com\n  {{.Subject}}\t"))
	if err != nil {
		t.Fatal(err)
	}
	evil := "Help\r\nBcc: victim@example.com\r\n\r\n<html>\u2028 x\x00y  "
	tests := []struct {
		name casedesk.OutboxKind
		want string
	}{
		{casedesk.OutboxAck, "We have received your request: Help Bcc: victim@example.com <html> x y"},
		{casedesk.OutboxReminder, "Reminder Bcc: all@example.com Help Bcc: victim@example.com <html> x y"},
	}
	for _, tt := range tests {
		t.Run(string(tt.name), func(t *testing.T) {
			data := ReminderData{Case: Case{CaseNumber: 1, Subject: evil}}
			var in any = data
			if tt.name == casedesk.OutboxAck {
				in = AckData{data.Case}
			}
			r, err := set.Render(tt.name, "en", in)
			if err != nil {
				t.Fatal(err)
			}
			if r.Subject != tt.want {
				t.Errorf("subject %q, want %q", r.Subject, tt.want)
			}
		})
	}
}

func TestRenderRefusesDataOfTheWrongType(t *testing.T) {
	var none *Set
	tests := []struct {
		name string
		data any
		ok   bool
	}{
		{"value", AckData{Case: Case{CaseNumber: 1}}, true},
		{"pointer", &AckData{Case: Case{CaseNumber: 1}}, true},
		{"nil pointer", (*AckData)(nil), false},
		{"nil", nil, false},
		{"another template's data", RelayData{Case: Case{CaseNumber: 1}}, false},
		{"the embedded part alone", Case{CaseNumber: 1}, false},
		{"a map", map[string]any{"CaseNumber": 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := none.Render(casedesk.OutboxAck, "en", tt.data)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
	_, err := none.Render("welcome", "en", AckData{})
	if casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Fatalf("unknown template: err = %v, want EINVALID", err)
	}
}

func TestNewSetRefusesABadOrDoubledOverride(t *testing.T) {
	bad := overrideOf(casedesk.OutboxAck, "de", "")
	bad.Text = "Hallo\n{{.Nope}}"
	_, err := NewSet(overrideOf(casedesk.OutboxAck, "en", ""), bad)
	want := `template "ack" in "de": text body, line 2: `
	if casedesk.ErrorCode(err) != casedesk.EINVALID || !strings.HasPrefix(casedesk.ErrorMessage(err), want) {
		t.Fatalf("err = %v, want EINVALID starting %q", err, want)
	}
	_, err = NewSet(overrideOf(casedesk.OutboxAck, "de", ""), overrideOf(casedesk.OutboxAck, "DE", "x"))
	if casedesk.ErrorCode(err) != casedesk.EINVALID || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("doubled override: err = %v", err)
	}
}

func TestPreview(t *testing.T) {
	o := overrideOf(casedesk.OutboxInvoice, "", "Ihre Rechnung {{.InvoiceNumber}} über {{money .AmountMinor .Currency}}")
	r, err := Preview(casedesk.OutboxInvoice, "de", &o)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Ihre Rechnung INV-2031-0042 über 1.234,56 EUR"; r.Subject != want {
		t.Errorf("subject %q, want %q", r.Subject, want)
	}
	if !strings.HasPrefix(r.Text, "OVERRIDE invoice ") {
		t.Errorf("text body %q is not the override's", r.Text)
	}
	o.Lang = "en"
	if _, err := Preview(casedesk.OutboxInvoice, "de", &o); casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Errorf("override for another language: err = %v, want EINVALID", err)
	}
	o.HTML = "<p>{{.Bogus}}</p>"
	if _, err := Preview(casedesk.OutboxInvoice, "en", &o); casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Errorf("bad override: err = %v, want EINVALID", err)
	}
	if _, err := Preview("welcome", "en", nil); casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Errorf("unknown template: err = %v, want EINVALID", err)
	}
}

func TestSampleSetsEveryField(t *testing.T) {
	for _, name := range Names() {
		s := Sample(name)
		if s == nil {
			t.Fatalf("no sample for %s", name)
		}
		if field, ok := zeroField(s); ok {
			t.Errorf("sample of %s leaves %s zero", name, field)
		}
	}
	if Sample("welcome") != nil {
		t.Error("sample for an unknown template")
	}
}

// TestRenderConcurrently lets the race detector look at one Set used by
// many senders at once.
func TestRenderConcurrently(t *testing.T) {
	set, err := NewSet(overrideOf(casedesk.OutboxAck, "en", ""))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, name := range Names() {
				if _, err := set.Render(name, "en", Sample(name)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func TestLoadDefaultsRefusesAnIncompleteSet(t *testing.T) {
	complete := fstest.MapFS{}
	for _, lang := range []string{"en", "de"} {
		for _, name := range Names() {
			for _, ext := range []string{".subject", ".txt", ".html"} {
				p := "defaults/" + lang + "/" + string(name) + ext
				b, err := defaultFiles.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				complete[p] = &fstest.MapFile{Data: b}
			}
		}
	}
	if _, err := loadDefaults(complete); err != nil {
		t.Fatalf("the embedded files copied: %v", err)
	}
	tests := []struct {
		name   string
		change func(fstest.MapFS)
	}{
		{"a file missing", func(m fstest.MapFS) { delete(m, "defaults/de/relay.html") }},
		{"a file renamed", func(m fstest.MapFS) {
			m["defaults/de/relay.htm"] = m["defaults/de/relay.html"]
			delete(m, "defaults/de/relay.html")
		}},
		{"no English", func(m fstest.MapFS) {
			for p := range m {
				if strings.HasPrefix(p, "defaults/en/") {
					delete(m, p)
				}
			}
		}},
		{"an unknown field", func(m fstest.MapFS) { m["defaults/de/ack.txt"] = &fstest.MapFile{Data: []byte("{{.Nope}}")} }},
		{"an empty subject", func(m fstest.MapFS) { m["defaults/en/ack.subject"] = &fstest.MapFile{Data: []byte("\n")} }},
		{"a directory that is no language", func(m fstest.MapFS) { m["defaults/En_gb/ack.txt"] = &fstest.MapFile{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := fstest.MapFS{}
			for p, f := range complete {
				m[p] = f
			}
			tt.change(m)
			if _, err := loadDefaults(m); err == nil {
				t.Fatal("loaded")
			}
		})
	}
}

// TestRelayHTML: an agent's HTML reply (sanitised by the sender) is the
// HTML part as it is; the text part is still the agent's text.
func TestRelayHTML(t *testing.T) {
	for _, lang := range Langs() {
		var none *Set
		r, err := none.Render(casedesk.OutboxRelay, lang, RelayData{Case: Case{CaseNumber: 7, TenantName: "Acme"},
			Text: "Restart it.", HTML: "<p>Restart <b>it</b>.</p>"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.HTML, "<p>Restart <b>it</b>.</p>") || strings.Contains(r.HTML, "Restart it.") {
			t.Errorf("%s: html part:\n%s", lang, r.HTML)
		}
		if !strings.Contains(r.Text, "Restart it.") || strings.Contains(r.Text, "<b>") {
			t.Errorf("%s: text part:\n%s", lang, r.Text)
		}
	}
}
