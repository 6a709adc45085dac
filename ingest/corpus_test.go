package ingest

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusDir is the shared real-world mail, beside the project checkout.
const corpusDir = "../../shared/corpus/mime"

// TestCorpusParsesOrErrors runs every message of the shared corpus through
// the parser: each parses, or fails with an error the caller can quarantine
// with; none panics, and a parsed message keeps its decoded parts.
func TestCorpusParsesOrErrors(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir, "*", "*.eml"))
	if len(files) == 0 {
		if _, err := os.Stat(corpusDir); err == nil {
			t.Fatalf("%s exists but holds no messages", corpusDir)
		}
		t.Skipf("no shared corpus at %s", corpusDir)
	}
	p := NewParser(0)
	parsed := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := p.Parse(raw)
		if err != nil {
			t.Logf("%s: quarantined: %v", f, err)
			continue
		}
		parsed++
		if m.Size != len(raw) {
			t.Errorf("%s: size %d, want %d", f, m.Size, len(raw))
		}
	}
	t.Logf("%d of %d corpus messages parsed", parsed, len(files))
	if parsed < len(files)*9/10 {
		t.Errorf("only %d of %d messages parsed", parsed, len(files))
	}
}
