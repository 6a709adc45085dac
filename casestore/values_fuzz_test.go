package casestore

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/casedesk/casedesk"
)

// FuzzDecodeCursor feeds arbitrary cursors, as an API client could: the
// decoder either refuses with EINVALID or returns a usable cursor of the
// requested sort.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(caseCursor{Sort: "-created_at", Value: "2026-01-01 00:00:00+00", ID: 5}), "-created_at")
	f.Add("eyJzIjoibnVtYmVyIiwidiI6IjEiLCJpIjowfQ", "number")
	f.Add("%%%", "number")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, cursor, sort string) {
		c, err := decodeCursor(cursor, sort)
		if err != nil {
			if casedesk.ErrorCode(err) != casedesk.EINVALID {
				t.Fatalf("error code %q for bad cursor", casedesk.ErrorCode(err))
			}
			return
		}
		if c.Sort != sort || c.ID <= 0 {
			t.Fatalf("accepted cursor %+v for sort %q", c, sort)
		}
		again, err := decodeCursor(encodeCursor(*c), sort)
		if err != nil || *again != *c {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}

// FuzzClip checks that any text from the wild becomes storable: valid
// UTF-8, no NUL, within the limit, and unchanged when it already was fine.
func FuzzClip(f *testing.F) {
	f.Add("Printer on fire", 100)
	f.Add("nul\x00byte", 4)
	f.Add("\xff\xfe broken \xc3", 3)
	f.Add("ÜÜÜÜ", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := clip(s, n)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 || len(got) > n {
			t.Fatalf("clip(%q, %d) = %q", s, n, got)
		}
		if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && len(s) <= n && got != s {
			t.Fatalf("clip changed storable text %q to %q", s, got)
		}
	})
}
