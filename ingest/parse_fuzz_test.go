package ingest

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary bytes to the parser: it must never panic, and a
// parsed message must have text the store can hold and attachments whose
// hashes match their content.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
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
			if a.SHA256 != sha(a.Content) {
				t.Fatalf("attachment hash mismatch")
			}
		}
	})
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }
