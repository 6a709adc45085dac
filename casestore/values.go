package casestore

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on stored text. Mail from the wild is stored, not refused: text is
// made valid UTF-8 without NUL bytes (PostgreSQL text cannot hold them) and
// over-long header-like values are cut. The raw bytes keep the original.
const (
	maxSubjectBytes = 4000
	maxHeaderBytes  = 4000
	maxNameBytes    = 500
)

// clean returns s as valid UTF-8 without NUL bytes.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// clip cleans s and cuts it to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	s = clean(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// nullID maps the zero ID to SQL NULL.
func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// timeOf reads a nullable timestamp scanned into a pointer.
func timeOf(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}

// Compression of raw mail and attachment content. Stored compressed only
// when that saves space; incompressible content (images, zip files) is
// stored as it is.
const (
	compressionZstd = "zstd"
	compressionNone = "none"
)

func (db *DB) compress(b []byte) (string, []byte) {
	z := db.enc.EncodeAll(b, make([]byte, 0, len(b)/3+64))
	if len(z) >= len(b) {
		return compressionNone, b
	}
	return compressionZstd, z
}

func (db *DB) decompress(method string, b []byte) ([]byte, error) {
	switch method {
	case compressionNone:
		return b, nil
	case compressionZstd:
		out, err := db.dec.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown compression %q", method)
}
