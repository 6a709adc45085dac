package templates

import (
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

// FuzzValidate feeds arbitrary override parts, as a tenant admin could:
// Validate must not panic and refuses with EINVALID only, and what it
// accepts must render with one-line subjects.
func FuzzValidate(f *testing.F) {
	for _, lang := range Langs() {
		for _, name := range Names() {
			var p [3][]byte
			for i, ext := range []string{".subject", ".txt", ".html"} {
				p[i], _ = defaultFiles.ReadFile("defaults/" + lang + "/" + string(name) + ext)
			}
			f.Add(string(name), string(p[0]), string(p[1]), string(p[2]))
		}
	}
	f.Add("ack", "{{.Subject}}\r\nBcc: x", "{{if}}", `<a href="{{.Subject}}`)
	f.Fuzz(func(t *testing.T, name, subject, text, html string) {
		o := casedesk.TemplateOverride{Name: name, Lang: "en", Subject: subject, Text: text, HTML: html}
		err := Validate(o)
		if err != nil {
			if code := casedesk.ErrorCode(err); code != casedesk.EINVALID {
				t.Fatalf("code %q for %v", code, err)
			}
			return
		}
		set, err := NewSet(o)
		if err != nil {
			t.Fatalf("valid override refused by NewSet: %v", err)
		}
		r, err := set.Render(casedesk.OutboxKind(name), "en", Sample(casedesk.OutboxKind(name)))
		if err != nil {
			t.Fatalf("valid override does not render its sample: %v", err)
		}
		if r.Subject == "" || strings.ContainsAny(r.Subject, "\r\n") {
			t.Fatalf("subject %q", r.Subject)
		}
	})
}
