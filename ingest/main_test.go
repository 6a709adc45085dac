package ingest

import (
	"log/slog"
	"testing"

	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/internal/testlog"
)

// The poller tests keep checkpoints, locks and quarantined mail in a real
// PostgreSQL database of their own.
func TestMain(m *testing.M) { casestoretest.Main(m) }

// testLogger discards logs unless CASEDESK_TEST_LOG is set.
func testLogger() *slog.Logger { return testlog.New() }
