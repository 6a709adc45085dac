package ingest

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func parseFile(t *testing.T, name string) *Message {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewParser(0).Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseMultipart(t *testing.T) {
	m := parseFile(t, "multipart.eml")
	checks := []struct {
		name      string
		got, want any
	}{
		{"message-id", m.MessageID, "CAF=abc123@mail.customer.example"},
		{"in-reply-to", m.InReplyTo, []string{"c12.m34.k3f9a@acme.example"}},
		{"references", m.References, []string{"first@customer.example", "c12.m34.k3f9a@acme.example"}},
		{"from", m.From.Name + " <" + m.From.Email + ">", "Cara Müller <cara@customer.example>"},
		{"to", len(m.To), 2},
		{"to quoted comma", m.To[1].Name, "Ops, Team"},
		{"cc", m.Cc[0].Email, "boss@customer.example"},
		{"subject", m.Subject, "Re: [Case #12] Drucker brennt"},
		{"date", m.Date, time.Date(2026, 11, 23, 8, 15, 0, 0, time.UTC)},
		{"return-path", m.ReturnPath, "cara@customer.example"},
		{"delivered-to", m.DeliveredTo, []string{"support@acme.example"}},
		{"thread-topic", m.ThreadTopic, "Drucker brennt"},
		{"text from latin-1", strings.TrimSpace(m.Text), "Der Drucker brennt immer noch. Grüße"},
		{"attachments", len(m.Attachments), 2},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	for _, bad := range []string{"<script", "onclick", "alert(1)"} {
		if strings.Contains(m.HTML, bad) {
			t.Errorf("sanitised HTML still holds %q: %s", bad, m.HTML)
		}
	}
	if !strings.Contains(m.HTML, "<b>brennt</b>") || !strings.Contains(m.HTML, `src="cid:logo@x"`) {
		t.Errorf("sanitising removed what is safe: %s", m.HTML)
	}
	pdf, logo := m.Attachments[0], m.Attachments[1]
	if pdf.Name != "Rechnung für November.pdf" || pdf.ContentType != "application/pdf" || pdf.Inline ||
		!strings.HasPrefix(string(pdf.Content), "%PDF-1.7") || pdf.SHA256 != sha256.Sum256(pdf.Content) {
		t.Errorf("pdf attachment = %q %q inline=%v", pdf.Name, pdf.ContentType, pdf.Inline)
	}
	if logo.Name != "logo.png" || !logo.Inline || logo.ContentID != "logo@x" {
		t.Errorf("inline image = %+v", logo)
	}
}

func TestParseHTMLOnlyAndAutomaticHeaders(t *testing.T) {
	m := parseFile(t, "html-only.eml")
	if m.MessageID != "no-brackets@vendor.example" {
		t.Errorf("message-id without brackets = %q", m.MessageID)
	}
	if !strings.Contains(m.Text, "Your order & invoice are ready.") || strings.Contains(m.Text, "<p>") {
		t.Errorf("text derived from HTML = %q", m.Text)
	}
	if !m.HasReturnPath || m.ReturnPath != "" {
		t.Errorf("empty return path: has=%v %q", m.HasReturnPath, m.ReturnPath)
	}
	if m.AutoSubmitted != "Auto-Replied" || !slices.Equal(m.XLoop, []string{"support@acme.example", "other@example.com"}) {
		t.Errorf("auto-submitted %q x-loop %v", m.AutoSubmitted, m.XLoop)
	}
}

func TestParseTooLarge(t *testing.T) {
	raw := []byte("Subject: big\r\n\r\n" + strings.Repeat("x", 2000))
	_, err := NewParser(1000).Parse(raw)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := NewParser(5000).Parse(raw); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
}

func TestParseIDList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"<a@x> <b@y>", []string{"a@x", "b@y"}},
		{"<a@x>\r\n\t<b@y>", []string{"a@x", "b@y"}},
		{"<a@x>,<b@y>", []string{"a@x", "b@y"}},
		{"a@x b@y", []string{"a@x", "b@y"}},
		{"Your message of Monday <a@x>", []string{"a@x"}},
		{"<>", nil},
		{"", nil},
		{"<unterminated@x", []string{"unterminated@x"}},
	}
	for _, tt := range tests {
		if got := parseIDList(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("parseIDList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseBrokenAddressListKeepsGoodOnes(t *testing.T) {
	raw := "From: Cara <cara@customer.example>\r\nTo: good@acme.example, broken <<@>, \"Ann\" <ann@acme.example>\r\nSubject: x\r\n\r\nhi\r\n"
	m, err := NewParser(0).Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range m.To {
		got = append(got, a.Email)
	}
	if !slices.Contains(got, "good@acme.example") || !slices.Contains(got, "ann@acme.example") {
		t.Errorf("To = %v, want the two good addresses", got)
	}
}

func equal(a, b any) bool {
	switch a := a.(type) {
	case []string:
		return slices.Equal(a, b.([]string))
	case time.Time:
		return a.Equal(b.(time.Time))
	}
	return a == b
}
