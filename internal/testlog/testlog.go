// Package testlog gives tests a logger that is silent unless
// CASEDESK_TEST_LOG is set.
package testlog

import (
	"io"
	"log/slog"
	"os"
)

// New discards logs unless CASEDESK_TEST_LOG is set, then writes debug
// logs to standard error.
func New() *slog.Logger {
	if os.Getenv("CASEDESK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
