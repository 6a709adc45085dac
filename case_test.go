package casedesk_test

import (
	"testing"

	"github.com/casedesk/casedesk"
)

func TestCanTransition(t *testing.T) {
	tests := []struct {
		from, to casedesk.Status
		want     bool
	}{
		{casedesk.StatusNew, casedesk.StatusOpen, true},
		{casedesk.StatusNew, casedesk.StatusPending, true},
		{casedesk.StatusNew, casedesk.StatusSolved, true},
		{casedesk.StatusNew, casedesk.StatusClosed, false},
		{casedesk.StatusOpen, casedesk.StatusPending, true},
		{casedesk.StatusOpen, casedesk.StatusSolved, true},
		{casedesk.StatusOpen, casedesk.StatusNew, false},
		{casedesk.StatusOpen, casedesk.StatusClosed, false},
		{casedesk.StatusPending, casedesk.StatusOpen, true}, // customer reply reopens
		{casedesk.StatusPending, casedesk.StatusSolved, true},
		{casedesk.StatusPending, casedesk.StatusClosed, false},
		{casedesk.StatusSolved, casedesk.StatusOpen, true}, // customer reply reopens
		{casedesk.StatusSolved, casedesk.StatusPending, true},
		{casedesk.StatusSolved, casedesk.StatusClosed, true},
		{casedesk.StatusClosed, casedesk.StatusOpen, false}, // follow-up case instead
		{casedesk.StatusClosed, casedesk.StatusSolved, false},
		{casedesk.StatusClosed, casedesk.StatusNew, false},
		{casedesk.StatusOpen, casedesk.StatusOpen, false}, // not a transition
		{casedesk.StatusOpen, "archived", false},
		{"bogus", casedesk.StatusOpen, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			if got := casedesk.CanTransition(tt.from, tt.to); got != tt.want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", tt.from, tt.to, got, tt.want)
			}
			err := casedesk.CheckTransition(tt.from, tt.to)
			if tt.want && err != nil {
				t.Errorf("CheckTransition: %v", err)
			}
			if !tt.want && casedesk.ErrorCode(err) != casedesk.EINVALID {
				t.Errorf("CheckTransition code = %q, want invalid", casedesk.ErrorCode(err))
			}
		})
	}
}

func TestEveryStatusCanBeLeftExceptClosed(t *testing.T) {
	for _, from := range casedesk.Statuses {
		n := 0
		for _, to := range casedesk.Statuses {
			if casedesk.CanTransition(from, to) {
				n++
			}
		}
		if (n == 0) != (from == casedesk.StatusClosed) {
			t.Errorf("%s has %d ways out", from, n)
		}
	}
}

func TestParseSort(t *testing.T) {
	tests := []struct {
		in      string
		column  string
		desc    bool
		wantErr bool
	}{
		{"", "created_at", true, false},
		{"number", "number", false, false},
		{"-updated_at", "updated_at", true, false},
		{"-requester", "requester", true, false},
		{"password", "", false, true},
		{"--number", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			col, desc, err := casedesk.ParseSort(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if col != tt.column || desc != tt.desc {
				t.Errorf("got %q desc=%v, want %q desc=%v", col, desc, tt.column, tt.desc)
			}
		})
	}
}

func TestNewCaseValidate(t *testing.T) {
	tests := []struct {
		name string
		in   casedesk.NewCase
		code string
	}{
		{"defaults", casedesk.NewCase{TenantID: 1, RequesterID: 2}, ""},
		{"no tenant", casedesk.NewCase{RequesterID: 2}, casedesk.EINVALID},
		{"no requester", casedesk.NewCase{TenantID: 1}, casedesk.EINVALID},
		{"born closed", casedesk.NewCase{TenantID: 1, RequesterID: 2, Status: casedesk.StatusClosed}, casedesk.EINVALID},
		{"bad priority", casedesk.NewCase{TenantID: 1, RequesterID: 2, Priority: "asap"}, casedesk.EINVALID},
		{"bad fields", casedesk.NewCase{TenantID: 1, RequesterID: 2, Fields: []byte("{")}, casedesk.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if got := casedesk.ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if err == nil && (tt.in.Status != casedesk.StatusNew || tt.in.Priority != casedesk.PriorityNormal || tt.in.Category != casedesk.CategoryEmail) {
				t.Errorf("defaults not filled: %+v", tt.in)
			}
		})
	}
}
