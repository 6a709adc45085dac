package notify

import (
	"bufio"
	"bytes"
	"fmt"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
	"github.com/jhillyerd/enmime/v2"
)

// parse builds o and reads it back with enmime, failing the test on any
// error, so every header is seen as a mail client would see it.
func parse(t testing.TB, o Outgoing) (*enmime.Envelope, []byte) {
	t.Helper()
	raw, err := o.Bytes()
	if err != nil {
		t.Fatalf("Bytes: %v", err)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("enmime: %v\n%s", err, raw)
	}
	for _, e := range env.Errors {
		if e.Severe {
			t.Errorf("enmime: %v", e)
		}
	}
	return env, raw
}

// headerKeys returns the top-level header field names of raw, sorted, as
// net/mail reads them.
func headerKeys(t testing.TB, raw []byte) []string {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("net/mail: %v\n%s", err, raw)
	}
	var keys []string
	for k := range msg.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestTagSubject(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		prefix  string
		number  int64
		want    string
	}{
		{"no tag", "Printer on fire", "", 7, "[Case #7] Printer on fire"},
		{"tag already there", "[Case #7] Printer on fire", "", 7, "[Case #7] Printer on fire"},
		{"tag at the end", "Re: Printer on fire [Case #7]", "", 7, "[Case #7] Re: Printer on fire"},
		{"other letter case", "Re: [case#7] Printer on fire", "", 7, "[Case #7] Re: Printer on fire"},
		{"other spacing", "Re: [ CASE  # 7 ] Printer", "", 7, "[Case #7] Re: Printer"},
		{"two tags", "[Case #7] Re: [Case #7] Printer", "", 7, "[Case #7] Re: Printer"},
		{"tag of another case", "Re: [Case #6] Printer", "", 7, "[Case #7] Re: Printer"},
		{"nested tags", "[Case [Case #7]#7] Printer", "", 7, "[Case #7] Printer"},
		{"not our tag", "[Ticket #7] [users] Printer", "", 7, "[Case #7] [Ticket #7] [users] Printer"},
		{"not a tag", "[Case #7a] Printer", "", 7, "[Case #7] [Case #7a] Printer"},
		{"tenant prefix", "[Case #7] Re: [Ticket #7] Printer", "Ticket", 7, "[Ticket #7] [Case #7] Re: Printer"},
		{"prefix of two words", "Re: [acme  support #9] x", "Acme Support", 9, "[Acme Support #9] Re: x"},
		{"empty subject", "", "", 7, "[Case #7]"},
		{"only the tag", " [Case #7] ", "", 7, "[Case #7]"},
		{"no case", "Your invoice [Case #7]", "", 0, "Your invoice [Case #7]"},
		{"line breaks", "Printer\r\n on\tfire", "", 7, "[Case #7] Printer on fire"},
		{"line break inside the tag", "[Case\r\n #7] Printer", "", 7, "[Case #7] Printer"},
		{"non-ASCII", "Drucker brennt – schnell!", "Fall", 3, "[Fall #3] Drucker brennt – schnell!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TagSubject(tt.subject, tt.prefix, tt.number); got != tt.want {
				t.Errorf("TagSubject(%q, %q, %d) = %q, want %q", tt.subject, tt.prefix, tt.number, got, tt.want)
			}
		})
	}
}

func TestTagSubjectCut(t *testing.T) {
	long := strings.Repeat("ü", 1000) // 2000 bytes
	got := TagSubject(long, "", 7)
	if len(got) > maxSubjectBytes || !strings.HasPrefix(got, "[Case #7] ü") || !strings.HasSuffix(got, "ü") {
		t.Errorf("cut subject: %d bytes, %q...%q", len(got), got[:12], got[len(got)-4:])
	}
}

// ids returns n Message-IDs "m1@x" ... "mn@x".
func ids(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("m%d@x", i))
	}
	return out
}

func TestReferenceChain(t *testing.T) {
	long := func(i int) string { return fmt.Sprintf("%03d.%s@example.com", i, strings.Repeat("a", 84)) } // 100 bytes
	var longs []string
	for i := 1; i <= 12; i++ {
		longs = append(longs, long(i))
	}
	tests := []struct {
		name      string
		refs      []string
		inReplyTo string
		self      string
		want      []string
	}{
		{"none", nil, "", "self@x", nil},
		{"only in-reply-to", nil, "<m1@x>", "self@x", []string{"m1@x"}},
		{"in-reply-to last", []string{"m1@x", "m2@x"}, "m3@x", "self@x", []string{"m1@x", "m2@x", "m3@x"}},
		{"in-reply-to already in the chain", []string{"m1@x", "m2@x"}, "m2@x", "self@x", []string{"m1@x", "m2@x"}},
		{"duplicates and brackets", []string{"<m1@x>", "m2@x", " <m1@x> ", "m2@x"}, "", "self@x", []string{"m1@x", "m2@x"}},
		{"self left out", []string{"m1@x", "self@x"}, "self@x", "self@x", []string{"m1@x"}},
		{"invalid ids dropped", []string{"m1@x", "bad id@x", "m<2>@x", "", "m\r\n3@x", "ü@x", strings.Repeat("a", 251)}, "m4@x", "self@x", []string{"m1@x", "m4@x"}},
		{"capped to 20: first and last 19", ids(30), "", "self@x", append([]string{"m1@x"}, ids(30)[11:]...)},
		{"exactly 20", ids(20), "", "self@x", ids(20)},
		{"capped to 900 bytes", longs, "", "self@x", append([]string{long(1)}, longs[5:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := referenceChain(tt.refs, tt.inReplyTo, tt.self)
			if !slices.Equal(got, tt.want) {
				t.Errorf("referenceChain = %q\nwant %q", got, tt.want)
			}
			if n := len("<" + strings.Join(got, "> <") + ">"); len(got) > 0 && n > maxReferencesBytes {
				t.Errorf("References value is %d bytes", n)
			}
		})
	}
}

func TestBuildAck(t *testing.T) {
	o := testOutgoing(2)
	o.Subject = "Re: printer on fire"
	o.References = append(ids(25), "original-7@customer.example") // a repeat of the parent stays where it was first
	o.References[0] = "original-7@customer.example"
	env, raw := parse(t, o)

	wantHeaders := map[string]string{
		"From":                     `"Acme Support" <support@acme.example>`,
		"To":                       `"Jane Customer" <jane@customer.example>`,
		"Cc":                       `<boss@customer.example>`,
		"Reply-To":                 `<support+c7-k3f9abcd@acme.example>`,
		"Subject":                  "[Case #7] Re: printer on fire",
		"Message-Id":               "<c7.m2.k3f9abcd@acme.example>",
		"In-Reply-To":              "<original-7@customer.example>",
		"Date":                     "Tue, 04 Mar 2025 05:06:07 +0000",
		"Auto-Submitted":           "auto-replied",
		"X-Auto-Response-Suppress": "All",
		"X-Loop":                   "casedesk@acme.example",
		"Mime-Version":             "1.0",
	}
	for k, want := range wantHeaders {
		if got := env.GetHeader(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// The original first, then the 19 most recent; the id repeated at the
	// end is a duplicate of the first and does not count.
	wantRefs := append([]string{"original-7@customer.example"}, ids(25)[6:]...)
	gotRefs := strings.Fields(env.GetHeader("References"))
	for i, r := range gotRefs {
		gotRefs[i] = strings.Trim(r, "<>")
	}
	if !slices.Equal(gotRefs, wantRefs) {
		t.Errorf("References = %q\nwant %q", gotRefs, wantRefs)
	}
	for _, k := range []string{"Precedence", "Bcc", "User-Agent", "X-Mailer"} {
		if v := env.GetHeader(k); v != "" {
			t.Errorf("unexpected %s: %q", k, v)
		}
	}
	if ct := env.Root.ContentType; ct != "multipart/alternative" {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	if crlf(o.Text) != env.Text || env.HTML != o.HTML {
		t.Errorf("Text = %q, HTML = %q; want %q, %q", env.Text, env.HTML, crlf(o.Text), o.HTML)
	}
	if d, err := env.Date(); err != nil || !d.Equal(o.Date) {
		t.Errorf("Date() = %v, %v", d, err)
	}
	checkLines(t, raw)
}

// crlf returns text with the CRLF line ends quoted-printable gives it.
func crlf(text string) string { return strings.ReplaceAll(text, "\n", "\r\n") }

// checkLines fails when a line of raw is longer than SMTP allows or a
// header line is not ASCII.
func checkLines(t testing.TB, raw []byte) {
	t.Helper()
	inHeader := true
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d is %d bytes long", i+1, len(line))
		}
		if inHeader && len(line) == 0 {
			inHeader = false
		}
		if inHeader && bytes.ContainsFunc(line, func(r rune) bool { return r > '~' || r < ' ' && r != '\t' }) {
			t.Errorf("header line %d is not printable ASCII: %q", i+1, line)
		}
	}
}

func TestBuildAutoHeaders(t *testing.T) {
	tests := []struct {
		name          string
		auto          AutoKind
		wantSubmitted string
		wantSuppress  string
	}{
		{"agent reply relayed", AutoNone, "", ""},
		{"acknowledgement", AutoReplied, "auto-replied", "All"},
		{"reminder", AutoGenerated, "auto-generated", "All"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOutgoing(1)
			o.Auto = tt.auto
			if tt.auto == AutoNone {
				o.From.Name = "Bob Agent via Acme Support"
			}
			env, raw := parse(t, o)
			if got := env.GetHeader("Auto-Submitted"); got != tt.wantSubmitted {
				t.Errorf("Auto-Submitted = %q, want %q", got, tt.wantSubmitted)
			}
			if got := env.GetHeader("X-Auto-Response-Suppress"); got != tt.wantSuppress {
				t.Errorf("X-Auto-Response-Suppress = %q, want %q", got, tt.wantSuppress)
			}
			if got := env.GetHeader("X-Loop"); got != "casedesk@acme.example" {
				t.Errorf("X-Loop = %q", got)
			}
			if tt.auto == AutoNone && slices.Contains(headerKeys(t, raw), "Auto-Submitted") {
				t.Error("a person's reply carries Auto-Submitted")
			}
		})
	}
}

func TestBuildNonASCII(t *testing.T) {
	o := testOutgoing(1)
	o.Subject = "Re: Drucker brennt – bitte schnell! 🔥 Ärger über Übergrößen"
	o.From.Name = "Jörg Müller via Acme Support"
	o.To[0].Name = "Zoë, \"the\" customer"
	env, raw := parse(t, o)
	if got, want := env.GetHeader("Subject"), "[Case #7] "+o.Subject; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	from, err := env.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != o.From.Name || from[0].Address != o.From.Email {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := env.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != o.To[0].Name {
		t.Errorf("To = %v, %v", to, err)
	}
	if !bytes.Contains(raw, []byte("=?UTF-8?q?")) {
		t.Errorf("no RFC 2047 encoded word in\n%s", raw)
	}
	checkLines(t, raw)
}

func TestBuildAttachments(t *testing.T) {
	o := testOutgoing(1)
	o.Auto = AutoGenerated
	o.CaseNumber = 0
	o.Subject = "Invoice 2025-03"
	o.HTML = `<p>Your invoice</p><img src="cid:logo@acme">`
	pdf := bytes.Repeat([]byte("%PDF-1.7 invoice\n"), 500)
	o.Attachments = []Attachment{
		{Name: "invoice-2025-03.pdf", ContentType: "application/pdf", Content: pdf},
		{Name: "logo.png", ContentType: "image/png", Content: []byte("\x89PNG..."), Inline: true, ContentID: "<logo@acme>"},
	}
	env, raw := parse(t, o)
	if got := env.GetHeader("Subject"); got != "Invoice 2025-03" {
		t.Errorf("Subject = %q, want no tag", got)
	}
	if ct := env.Root.ContentType; ct != "multipart/mixed" {
		t.Errorf("Content-Type = %q, want multipart/mixed", ct)
	}
	if len(env.Attachments) != 1 || env.Attachments[0].FileName != "invoice-2025-03.pdf" ||
		env.Attachments[0].ContentType != "application/pdf" || !bytes.Equal(env.Attachments[0].Content, pdf) {
		t.Errorf("attachments = %+v", env.Attachments)
	}
	if len(env.Inlines) != 1 || env.Inlines[0].ContentID != "logo@acme" || env.Inlines[0].ContentType != "image/png" {
		t.Errorf("inlines = %+v", env.Inlines)
	}
	if env.Text != crlf(o.Text) || env.HTML != o.HTML {
		t.Errorf("Text = %q, HTML = %q", env.Text, env.HTML)
	}
	for _, want := range []string{"multipart/related", "multipart/alternative"} {
		if !bytes.Contains(raw, []byte("Content-Type: "+want)) {
			t.Errorf("no %s part", want)
		}
	}
}

func TestBuildSinglePart(t *testing.T) {
	for _, tt := range []struct{ name, text, html, wantType string }{
		{"text only", "hello", "", "text/plain"},
		{"HTML only", "", "<p>hello</p>", "text/html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := testOutgoing(1)
			o.Text, o.HTML = tt.text, tt.html
			env, _ := parse(t, o)
			if env.Root.ContentType != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", env.Root.ContentType, tt.wantType)
			}
		})
	}
}

func TestBuildInvalid(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Outgoing)
	}{
		{"no recipient", func(o *Outgoing) { o.To = nil }},
		{"bad recipient", func(o *Outgoing) { o.To[0].Email = "jane at customer" }},
		{"recipient with a name inside", func(o *Outgoing) { o.To[0].Email = "Jane <jane@customer.example>" }},
		{"bad cc", func(o *Outgoing) { o.Cc[0].Email = "@x" }},
		{"bad sender", func(o *Outgoing) { o.From.Email = "" }},
		{"bad reply-to", func(o *Outgoing) { o.ReplyTo = "support+c7" }},
		{"no message-id", func(o *Outgoing) { o.MessageID = "" }},
		{"message-id without @", func(o *Outgoing) { o.MessageID = "c7.m1" }},
		{"message-id too long", func(o *Outgoing) { o.MessageID = strings.Repeat("a", 250) + "@x" }},
		{"no date", func(o *Outgoing) { o.Date = time.Time{} }},
		{"no body", func(o *Outgoing) { o.Text, o.HTML = "", "" }},
		{"unknown auto kind", func(o *Outgoing) { o.Auto = "auto-notified" }},
		{"negative case", func(o *Outgoing) { o.CaseNumber = -1 }},
		{"no X-Loop", func(o *Outgoing) { o.Loop = "" }},
		{"non-ASCII X-Loop", func(o *Outgoing) { o.Loop = "casedesk@äcme.example" }},
		{"bad content-id", func(o *Outgoing) {
			o.Attachments = []Attachment{{Name: "a.png", Inline: true, ContentID: "a b"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOutgoing(1)
			tt.change(&o)
			_, err := Build(o)
			if casedesk.ErrorCode(err) != casedesk.EINVALID || !IsPermanent(err) {
				t.Errorf("Build: %v, want EINVALID", err)
			}
		})
	}
}

func TestRawIsStable(t *testing.T) {
	o := testOutgoing(1)
	o.Attachments = []Attachment{{Name: "a.pdf", ContentType: "application/pdf", Content: []byte("pdf")}}
	m, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	first, err := Raw(m)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Raw(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("writing a message twice gave different bytes:\n%s\n---\n%s", first, second)
	}
}

// injection is header text that tries to end its field and add others.
const injection = "x\r\nBcc: attacker@evil.example\r\nX-Injected: yes\r\n\r\nbody"

func TestBuildHeaderInjection(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Outgoing)
		wantErr bool
	}{
		{"subject", func(o *Outgoing) { o.Subject = injection }, false},
		{"subject, LF only", func(o *Outgoing) { o.Subject = strings.ReplaceAll(injection, "\r", "") }, false},
		{"subject, CR only", func(o *Outgoing) { o.Subject = strings.ReplaceAll(injection, "\n", "") }, false},
		{"subject, Unicode line breaks", func(o *Outgoing) { o.Subject = "x\u2028Bcc: a@evil.example\u0085X-Injected: yes" }, false},
		{"tag prefix", func(o *Outgoing) { o.TagPrefix = injection }, false},
		{"from name", func(o *Outgoing) { o.From.Name = injection }, false},
		{"to name", func(o *Outgoing) { o.To[0].Name = injection }, false},
		{"cc name", func(o *Outgoing) { o.Cc[0].Name = injection }, false},
		{"attachment name", func(o *Outgoing) {
			o.Attachments = []Attachment{{Name: injection, ContentType: "text/plain", Content: []byte("a")}}
		}, false},
		{"attachment type", func(o *Outgoing) {
			o.Attachments = []Attachment{{Name: "a.txt", ContentType: "text/plain\r\nX-Injected: yes", Content: []byte("a")}}
		}, false},
		{"in-reply-to", func(o *Outgoing) { o.InReplyTo = "a@b>\r\nX-Injected: yes" }, false},
		{"references", func(o *Outgoing) { o.References = []string{"a@b>\r\nX-Injected: yes"} }, false},
		{"reply-to", func(o *Outgoing) { o.ReplyTo = "support@acme.example\r\nX-Injected: yes" }, true},
		{"to address", func(o *Outgoing) { o.To[0].Email = "jane@customer.example\r\nX-Injected: yes" }, true},
		{"message-id", func(o *Outgoing) { o.MessageID = "c7.m1@acme.example>\r\nX-Injected: yes" }, true},
		{"x-loop", func(o *Outgoing) { o.Loop = "casedesk\r\nX-Injected: yes" }, true},
		{"content-id", func(o *Outgoing) {
			o.Attachments = []Attachment{{Name: "a.png", Inline: true, ContentID: "a@b>\r\nX-Injected: yes"}}
		}, true},
	}
	clean := testOutgoing(1)
	_, cleanRaw := parse(t, clean)
	wantKeys := headerKeys(t, cleanRaw)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOutgoing(1)
			tt.change(&o)
			raw, err := o.Bytes()
			if tt.wantErr {
				if casedesk.ErrorCode(err) != casedesk.EINVALID {
					t.Errorf("Bytes: %v, want EINVALID", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Bytes: %v", err)
			}
			checkNoInjection(t, raw)
			keys := headerKeys(t, raw)
			keys = slices.DeleteFunc(keys, func(k string) bool { return k == "In-Reply-To" || k == "References" })
			want := slices.DeleteFunc(slices.Clone(wantKeys), func(k string) bool { return k == "In-Reply-To" || k == "References" })
			if len(o.Attachments) > 0 {
				want = slices.Clone(keys) // the Content-Type changes; checkNoInjection covers the rest
			}
			if !slices.Equal(keys, want) {
				t.Errorf("header fields = %q\nwant %q", keys, want)
			}
		})
	}
}

// checkNoInjection fails when any line of raw, in any part, starts an
// injected header field.
func checkNoInjection(t testing.TB, raw []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.ToLower(sc.Text())
		if strings.HasPrefix(line, "bcc:") || strings.HasPrefix(line, "x-injected:") {
			t.Errorf("injected header line %q in\n%s", sc.Text(), raw)
		}
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("enmime: %v", err)
	}
	if env.GetHeader("Bcc") != "" || env.GetHeader("X-Injected") != "" {
		t.Errorf("injected header parsed back:\n%s", raw)
	}
}

func TestBuildLongHeaders(t *testing.T) {
	o := testOutgoing(1)
	o.Subject = strings.Repeat("x", 5000)
	o.From.Name = strings.Repeat("n", 5000)
	var refs []string
	for i := range 100 {
		refs = append(refs, fmt.Sprintf("%d.%s@example.com", i, strings.Repeat("r", 230)))
	}
	o.References = refs
	_, raw := parse(t, o)
	checkLines(t, raw)
}

func FuzzBuildHeaders(f *testing.F) {
	f.Add("Printer on fire", "Jane", "Case", "orig@x")
	f.Add(injection, injection, injection, injection)
	f.Add("[Case #7] Re: [case#7] \u2028", "Zoë \"Q\" <x>", "", "<a@b> <c@d>")
	f.Fuzz(func(t *testing.T, subject, name, prefix, ref string) {
		o := testOutgoing(1)
		o.Subject, o.To[0].Name, o.TagPrefix = subject, name, prefix
		o.InReplyTo, o.References = ref, []string{ref, "orig@x"}
		raw, err := o.Bytes()
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		checkNoInjection(t, raw)
		keys := headerKeys(t, raw)
		for _, k := range keys {
			if !slices.Contains(allowedHeaders, k) {
				t.Errorf("unexpected header field %q", k)
			}
		}
		env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		// Our tag comes first, so ingest finds this case in the subject.
		if n, ok := threading.FindTag(env.GetHeader("Subject"), headerText(prefix)); len(prefix) < 100 && (!ok || n != 7) {
			t.Errorf("subject %q: FindTag = %d, %v; want 7", env.GetHeader("Subject"), n, ok)
		}
	})
}

// allowedHeaders are the header fields Build may write for testOutgoing.
var allowedHeaders = []string{
	"Auto-Submitted", "Cc", "Content-Type", "Date", "From", "In-Reply-To", "Message-Id",
	"Mime-Version", "References", "Reply-To", "Subject", "To", "X-Auto-Response-Suppress", "X-Loop",
}
