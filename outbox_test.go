package casedesk_test

import (
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func TestBackoffDelay(t *testing.T) {
	b := casedesk.DefaultBackoff
	tests := []struct {
		attempts int
		jitter   float64
		want     time.Duration
	}{
		{1, 0, 30 * time.Second}, // half of 1 minute
		{1, 0.999999, time.Minute - 60*time.Microsecond},
		{2, 0, time.Minute},
		{3, 0, 2 * time.Minute},
		{7, 0, 30 * time.Minute}, // 64 min capped at 1 h, halved
		{1000, 0, 30 * time.Minute},
		{0, 0, 30 * time.Second},
	}
	for _, tt := range tests {
		got := b.Delay(tt.attempts, tt.jitter).Round(time.Millisecond)
		if got != tt.want.Round(time.Millisecond) {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempts, tt.jitter, got, tt.want)
		}
	}
}

func TestBackoffGiveUp(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := casedesk.DefaultBackoff
	if b.GiveUp(created, created.Add(23*time.Hour)) {
		t.Error("gave up before 24 hours")
	}
	if !b.GiveUp(created, created.Add(24*time.Hour)) {
		t.Error("still retrying after 24 hours")
	}
}

func TestNormalizeMessageID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<a@b>", "a@b"},
		{"  <a@b>\r\n", "a@b"},
		{"a@b", "a@b"},
		{"<>", ""},
		{"< a@b >", "a@b"},
	}
	for _, tt := range tests {
		if got := casedesk.NormalizeMessageID(tt.in); got != tt.want {
			t.Errorf("NormalizeMessageID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTenantSettingsDefaults(t *testing.T) {
	var s casedesk.TenantSettings
	if s.Reminder() != 3*24*time.Hour || s.Solve() != 7*24*time.Hour || s.Close() != 14*24*time.Hour {
		t.Errorf("lifecycle defaults: %v %v %v", s.Reminder(), s.Solve(), s.Close())
	}
	if s.AckLimit() != 5 || s.TagPrefix() != "Case" || s.Lang() != "en" {
		t.Errorf("mail defaults: %d %q %q", s.AckLimit(), s.TagPrefix(), s.Lang())
	}
	s = casedesk.TenantSettings{ReminderAfter: time.Hour, AckLimitPerHour: 2, SubjectTagPrefix: "Ticket"}
	if s.Reminder() != time.Hour || s.AckLimit() != 2 || s.TagPrefix() != "Ticket" {
		t.Errorf("overrides ignored: %+v", s)
	}
}

func TestErrorCode(t *testing.T) {
	err := casedesk.Errorf(casedesk.ENOTFOUND, "case #%d not found", 7)
	wrapped := &wrapErr{err}
	if casedesk.ErrorCode(wrapped) != casedesk.ENOTFOUND || casedesk.ErrorMessage(wrapped) != "case #7 not found" {
		t.Errorf("wrapped: %q %q", casedesk.ErrorCode(wrapped), casedesk.ErrorMessage(wrapped))
	}
	if casedesk.ErrorCode(nil) != "" {
		t.Error("nil has a code")
	}
	plain := errString("pq: secret detail")
	if casedesk.ErrorCode(plain) != casedesk.EINTERNAL || casedesk.ErrorMessage(plain) != "internal error" {
		t.Error("internal error details leak")
	}
}

type wrapErr struct{ err error }

func (w *wrapErr) Error() string { return "ctx: " + w.err.Error() }
func (w *wrapErr) Unwrap() error { return w.err }

type errString string

func (e errString) Error() string { return string(e) }

func TestNewMessageValidateKeepsCallersReferences(t *testing.T) {
	refs := []string{"<a@x>", " <b@y> "}
	n := casedesk.NewMessage{TenantID: 1, CaseID: 2, Direction: casedesk.Note, AuthorKind: casedesk.AuthorAgent,
		MessageID: "<m@x>", References: refs}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.MessageID != "m@x" || n.References[0] != "a@x" || n.References[1] != "b@y" {
		t.Errorf("normalised: %q %q", n.MessageID, n.References)
	}
	if refs[0] != "<a@x>" || refs[1] != " <b@y> " {
		t.Errorf("Validate rewrote the caller's slice: %q", refs)
	}
}
