package templates

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

func TestValidateRefusesBrokenOverrides(t *testing.T) {
	ok := overrideOf(casedesk.OutboxAck, "en", "Got it: {{.Subject}}")
	tests := []struct {
		name   string
		change func(o *casedesk.TemplateOverride)
		want   string // the start of the error message
	}{
		{"parse error on line 3 of the html", func(o *casedesk.TemplateOverride) {
			o.HTML = "<p>Hello</p>\n<p>Case {{.CaseNumber}}</p>\n<p>{{if}}{{.Subject}}{{end}}</p>\n"
		}, "html body, line 3: missing value for if"},
		{"unknown field on line 2 of the text", func(o *casedesk.TemplateOverride) {
			o.Text = "Hello,\nyour case {{.CaseNumber}} about {{.Topic}}\n"
		}, "text body, line 2: <.Topic>: can't evaluate field Topic in type templates.AckData"},
		{"field of another template", func(o *casedesk.TemplateOverride) {
			o.HTML = "<p>\n{{.AgentName}}</p>"
		}, "html body, line 2: <.AgentName>: can't evaluate field AgentName"},
		{"unknown field only when a field is empty", func(o *casedesk.TemplateOverride) {
			o.Text = "Hello\n{{if .RequesterName}}{{.RequesterName}}{{else}}\n\n{{.Customer}}{{end}}"
		}, "text body, line 4: <.Customer>: can't evaluate field Customer"},
		{"unknown function", func(o *casedesk.TemplateOverride) { o.Subject = "{{shout .Subject}}" },
			`subject, line 1: function "shout" not defined`},
		{"unknown function in the html", func(o *casedesk.TemplateOverride) { o.HTML = "<p>\n\n\n{{nl2p .Subject}}</p>" },
			`html body, line 4: function "nl2p" not defined`},
		{"nl2br in the text", func(o *casedesk.TemplateOverride) { o.Text = "{{nl2br .Subject}}" },
			`text body, line 1: function "nl2br" not defined`},
		{"unclosed action", func(o *casedesk.TemplateOverride) { o.Text = "Hello\n\n\nCase {{.CaseNumber\n" },
			"text body, line 4: unclosed action"},
		{"unclosed if", func(o *casedesk.TemplateOverride) { o.HTML = "<p>\n{{if .Subject}}\n" },
			"html body, line 3: unexpected EOF"}, // where the input ends
		{"html ending inside an attribute", func(o *casedesk.TemplateOverride) { o.HTML = `<a href="mailto:{{.SupportAddress}}>x</a>` },
			"html body: ends inside a tag, attribute, comment or script"},
		{"range", func(o *casedesk.TemplateOverride) { o.HTML = "<p>\n{{range 1000000000}}x{{end}}</p>" },
			"html body, line 2: {{range}} is not allowed"},
		{"define", func(o *casedesk.TemplateOverride) { o.Text = "a\n{{define \"x\"}}{{template \"x\"}}{{end}}b" },
			"text body, line 2: {{define}} and {{block}} are not allowed"},
		{"template call", func(o *casedesk.TemplateOverride) { o.Text = "a\nb\n{{template \"text\"}}" },
			"text body, line 3: {{template}} and {{block}} are not allowed"},
		{"printf", func(o *casedesk.TemplateOverride) { o.Text = "a\n{{if true}}{{printf \"%999999d\" 1}}{{end}}" },
			`text body, line 2: function "printf" is not allowed`},
		{"call in a nested pipeline", func(o *casedesk.TemplateOverride) { o.HTML = "<p>{{with .Subject}}\n{{len (html .)}}{{end}}</p>" },
			`html body, line 2: function "html" is not allowed`},
		{"nl2br too often", func(o *casedesk.TemplateOverride) {
			o.HTML = strings.Repeat("<p>{{nl2br .Subject}}</p>\n", maxNL2BR) + "{{if nl2br .Subject}}x{{end}}"
		}, fmt.Sprintf("html body, line %d: nl2br is called more than %d times", maxNL2BR+1, maxNL2BR)},
		{"subject that renders empty", func(o *casedesk.TemplateOverride) { o.Subject = "{{if false}}x{{end}}\r\n" },
			"subject renders empty"},
		{"empty text", func(o *casedesk.TemplateOverride) { o.Text = " \n" }, "text body is empty"},
		{"empty html", func(o *casedesk.TemplateOverride) { o.HTML = "" }, "html body is empty"},
		{"text too long", func(o *casedesk.TemplateOverride) { o.Text = strings.Repeat("x", MaxBodyBytes+1) },
			"text body is longer than 65536 bytes"},
		{"subject too long", func(o *casedesk.TemplateOverride) { o.Subject = strings.Repeat("x", MaxSubjectBytes+1) },
			"subject is longer than 1024 bytes"},
		{"wrong name", func(o *casedesk.TemplateOverride) { o.Name = "welcome" },
			`template "welcome" is unknown; the templates are ack, followup_ack, relay, reminder, solved_notice, invoice`},
		{"name in upper case", func(o *casedesk.TemplateOverride) { o.Name = "ACK" }, `template "ACK" is unknown`},
		{"bad lang", func(o *casedesk.TemplateOverride) { o.Lang = "english!" }, `language "english!" is not a language tag`},
		{"one-letter lang", func(o *casedesk.TemplateOverride) { o.Lang = "e" }, `language "e" is not a language tag`},
		{"lang with underscore", func(o *casedesk.TemplateOverride) { o.Lang = "de_DE" }, `language "de_DE" is not a language tag`},
		{"no lang", func(o *casedesk.TemplateOverride) { o.Lang = "" }, `language "" is not a language tag`},
	}
	if err := Validate(ok); err != nil {
		t.Fatalf("the override the cases start from: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.change(&o)
			err := Validate(o)
			if got := casedesk.ErrorCode(err); got != casedesk.EINVALID {
				t.Fatalf("error %v has code %q, want %q", err, got, casedesk.EINVALID)
			}
			if msg := casedesk.ErrorMessage(err); !strings.HasPrefix(msg, tt.want) {
				t.Fatalf("message %q, want one starting %q", msg, tt.want)
			}
		})
	}
}

func TestValidateAcceptsGoodOverrides(t *testing.T) {
	tests := []casedesk.TemplateOverride{
		{Name: "ack", Lang: "en", Text: "Case {{.CaseNumber}}", HTML: "<p>{{.Subject}}</p>"},
		{Name: "ack", Lang: "de-AT", Subject: "Eingang: {{.Subject}}", Text: "Vorgang {{.CaseNumber}}", HTML: "<b>{{.CaseNumber}}</b>"},
		{Name: "invoice", Lang: "fr", Subject: "Facture {{.InvoiceNumber}}",
			Text: "{{money .AmountMinor .Currency}} avant le {{date .DueDate}}",
			HTML: `<a href="mailto:{{.SupportAddress}}">{{.TenantName}}</a>{{nl2br .AccountName}}`},
		{Name: "relay", Lang: "EN-us", Text: "{{with .AgentName}}{{.}}{{else}}Support{{end}}: {{.Text}}",
			HTML: "{{if and .AgentName (gt .CaseNumber 0)}}{{.AgentName | len}}{{end}}{{if not (eq .Text \"\")}}{{nl2br .Text}}{{end}}"},
		{Name: "reminder", Lang: "nl", Text: "{{.SolveInDays}} dagen", HTML: "{{.SolveInDays}} dagen"},
		{Name: "solved_notice", Lang: "en", Text: "{{/* a comment */}}{{.ReopenDays}}", HTML: "<p>{{.ReopenDays}}</p>"},
		{Name: "followup_ack", Lang: "en", Text: "#{{.PreviousCaseNumber}}", HTML: "<p>#{{.PreviousCaseNumber}}</p>"},
	}
	for _, o := range tests {
		t.Run(o.Name+"/"+o.Lang, func(t *testing.T) {
			if err := Validate(o); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRenderCapsOutput: a part may render at most 1 MiB, however large
// the data.
func TestRenderCapsOutput(t *testing.T) {
	o := casedesk.TemplateOverride{Name: "relay", Lang: "en", Text: "{{.Text}}{{.Text}}", HTML: "{{nl2br .Text}}"}
	set, err := NewSet(o)
	if err != nil {
		t.Fatal(err)
	}
	data := RelayData{Case: Case{CaseNumber: 1}, Text: strings.Repeat("x", maxOutputBytes/2)}
	if _, err := set.Render(casedesk.OutboxRelay, "en", data); err != nil {
		t.Fatalf("1 MiB: %v", err)
	}
	data.Text += "x"
	_, err = set.Render(casedesk.OutboxRelay, "en", data)
	if !strings.Contains(err.Error(), "text body: renders more than 1048576 bytes") {
		t.Fatalf("1 MiB and 2 bytes: err = %v", err)
	}
}

// zeroField returns the name of a field of v (a struct, looking into
// embedded ones) that holds its zero value.
func zeroField(v any) (string, bool) {
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		f, sf := rv.Field(i), rv.Type().Field(i)
		if sf.Anonymous {
			if name, ok := zeroField(f.Interface()); ok {
				return name, true
			}
			continue
		}
		if f.IsZero() {
			return sf.Name, true
		}
	}
	return "", false
}
