package jobs

import (
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func TestDecide(t *testing.T) {
	defaults := casedesk.TenantSettings{}
	custom := casedesk.TenantSettings{ReminderAfter: time.Hour, SolveAfter: 2 * time.Hour, CloseAfter: 30 * time.Minute}
	// Reminding later than solving: the case is solved, never reminded.
	upsideDown := casedesk.TenantSettings{ReminderAfter: 10 * day, SolveAfter: 5 * day}
	since := t0
	pending := func(mod func(c *casedesk.Case)) *casedesk.Case {
		c := &casedesk.Case{Status: casedesk.StatusPending, CreatedAt: since.Add(-day), UpdatedAt: since,
			PendingSince: since, LastAgentReplyAt: since}
		if mod != nil {
			mod(c)
		}
		return c
	}
	solved := func(at time.Time) *casedesk.Case {
		return &casedesk.Case{Status: casedesk.StatusSolved, UpdatedAt: at, SolvedAt: at}
	}
	tests := []struct {
		name     string
		c        *casedesk.Case
		settings casedesk.TenantSettings
		now      time.Time
		want     action
	}{
		{"pending, fresh", pending(nil), defaults, since.Add(time.Hour), actNone},
		{"pending, just before the reminder", pending(nil), defaults, since.Add(3*day - time.Microsecond), actNone},
		{"pending, exactly at the reminder", pending(nil), defaults, since.Add(3 * day), actRemind},
		{"pending, between reminder and solve", pending(nil), defaults, since.Add(5 * day), actRemind},
		{"pending, reminded for this wait", pending(func(c *casedesk.Case) { c.RemindedFor = since }),
			defaults, since.Add(5 * day), actNone},
		{"pending, reminded for an earlier wait", pending(func(c *casedesk.Case) {
			c.RemindedFor = since.Add(-10 * day)
		}), defaults, since.Add(5 * day), actRemind},
		{"pending, just before solve, reminded", pending(func(c *casedesk.Case) { c.RemindedFor = since }),
			defaults, since.Add(7*day - time.Microsecond), actNone},
		{"pending, exactly at solve, reminded", pending(func(c *casedesk.Case) { c.RemindedFor = since }),
			defaults, since.Add(7 * day), actSolve},
		{"pending, at solve, never reminded", pending(nil), defaults, since.Add(7 * day), actSolve},
		{"pending 400 days, never reminded", pending(nil), defaults, since.Add(400 * day), actSolve},
		{"clock runs from the last agent message", pending(func(c *casedesk.Case) {
			c.PendingSince = since.Add(-20 * day)
		}), defaults, since.Add(4 * day), actRemind},
		{"a later agent message restarts the clock", pending(func(c *casedesk.Case) {
			c.LastAgentReplyAt = since.Add(2 * day)
		}), defaults, since.Add(4 * day), actNone},
		{"set pending without a message, long after the last agent message", pending(func(c *casedesk.Case) {
			c.LastAgentReplyAt = since.Add(-30 * day)
		}), defaults, since.Add(4 * day), actRemind},
		{"pending without an agent message", pending(func(c *casedesk.Case) { c.LastAgentReplyAt = time.Time{} }),
			defaults, since.Add(7 * day), actSolve},
		{"pending with neither time: updated_at", pending(func(c *casedesk.Case) {
			c.LastAgentReplyAt, c.PendingSince = time.Time{}, time.Time{}
		}), defaults, since.Add(3 * day), actRemind},
		{"custom settings: reminder", pending(nil), custom, since.Add(time.Hour), actRemind},
		{"custom settings: solve", pending(nil), custom, since.Add(2 * time.Hour), actSolve},
		{"reminder after solve", pending(nil), upsideDown, since.Add(5 * day), actSolve},
		{"reminder after solve, before solving", pending(nil), upsideDown, since.Add(4 * day), actNone},
		{"merged", pending(func(c *casedesk.Case) { c.MergedInto = 9 }), defaults, since.Add(9 * day), actNone},
		{"solved, fresh", solved(since), defaults, since.Add(13 * day), actNone},
		{"solved, exactly at close", solved(since), defaults, since.Add(14 * day), actClose},
		{"solved long ago", solved(since.Add(-400 * day)), defaults, since, actClose},
		{"solved, custom close", solved(since), custom, since.Add(30 * time.Minute), actClose},
		{"solved without solved_at: updated_at", &casedesk.Case{Status: casedesk.StatusSolved, UpdatedAt: since},
			defaults, since.Add(14 * day), actClose},
		{"open", &casedesk.Case{Status: casedesk.StatusOpen, UpdatedAt: since, LastAgentReplyAt: since},
			defaults, since.Add(400 * day), actNone},
		{"new", &casedesk.Case{Status: casedesk.StatusNew, UpdatedAt: since}, defaults, since.Add(400 * day), actNone},
		{"closed", &casedesk.Case{Status: casedesk.StatusClosed, UpdatedAt: since, SolvedAt: since},
			defaults, since.Add(400 * day), actNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.c, tt.settings, tt.now); got != tt.want {
				t.Errorf("decide = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWaitingSince(t *testing.T) {
	tests := []struct {
		name                  string
		agent, pending, updat time.Time
		want                  time.Time
	}{
		{"agent message later", t0.Add(day), t0, t0.Add(2 * day), t0.Add(day)},
		{"set pending later", t0, t0.Add(day), t0.Add(2 * day), t0.Add(day)},
		{"no agent message", time.Time{}, t0, t0.Add(2 * day), t0},
		{"neither", time.Time{}, time.Time{}, t0.Add(2 * day), t0.Add(2 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &casedesk.Case{LastAgentReplyAt: tt.agent, PendingSince: tt.pending, UpdatedAt: tt.updat}
			if got := c.WaitingSince(); !got.Equal(tt.want) {
				t.Errorf("WaitingSince = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		s    Summary
		want string
	}{
		{Summary{"solved": 1, "reminders": 2, "closed": 0}, "closed=0 reminders=2 solved=1"},
		{Summary{}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%v.String() = %q, want %q", map[string]int(tt.s), got, tt.want)
		}
	}
}

func TestFind(t *testing.T) {
	js := []Job{{Name: "a"}, {Name: "b", Schedule: "@daily"}}
	if j, ok := Find(js, "b"); !ok || j.Schedule != "@daily" {
		t.Errorf("Find(b) = %+v, %v", j, ok)
	}
	if _, ok := Find(js, "c"); ok {
		t.Error("Find(c) found a job")
	}
}
