package ingest

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bytes to the parser and the classifier: neither
// may panic, a parsed message's attachments must match their hashes, and
// the classifier must never allow answering automatic or looping mail.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	more, _ := filepath.Glob(filepath.Join("testdata", "classify", "*.eml"))
	seeds = append(seeds, more...)
	for _, s := range seeds {
		raw, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("Subject: =?bogus?Q?x?=\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"))
	p := NewParser(1 << 20)
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := p.Parse(raw)
		if err != nil {
			return
		}
		if m.Size != len(raw) {
			t.Fatalf("size %d for %d bytes", m.Size, len(raw))
		}
		if !utf8.ValidString(m.Subject) && utf8.ValidString(string(raw)) {
			t.Fatalf("valid input gave an invalid subject %q", m.Subject)
		}
		for _, a := range m.Attachments {
			if a.SHA256 != sha256.Sum256(a.Content) {
				t.Fatalf("attachment hash mismatch")
			}
		}
		c := testClassifier.Classify(m)
		if c.MayAutoReply && (c.Class != ClassNormal || m.AutoSubmitted != "" && !strings.EqualFold(strings.TrimSpace(m.AutoSubmitted), "no") ||
			m.ListID != "" || m.XAutoResponseSuppress != "") {
			t.Fatalf("may auto-reply to %s mail (%s)", c.Class, c.Reason)
		}
		if (c.Class == ClassBounce) != (c.Bounce != nil) || (c.Class == ClassErrorReport) != (c.Report != nil) {
			t.Fatalf("class %s without its details", c.Class)
		}
	})
}
