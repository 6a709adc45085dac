package ingest

import (
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// The poller tests keep checkpoints, locks and quarantined mail in a real
// PostgreSQL database of their own.
func TestMain(m *testing.M) { casestoretest.Main(m) }

// testLogger discards logs unless CASEDESK_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CASEDESK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
