package casestore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

// dueFixture is a tenant whose store clock the test moves, with cases
// that wait in different ways.
type dueFixture struct {
	*fixture
	now *time.Time
}

func newDueFixture(t *testing.T) *dueFixture {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	return &dueFixture{fixture: newFixture(t, casestoreClock(&now)), now: &now}
}

// caseAt creates a case in status at the store clock at.
func (f *dueFixture) caseAt(t *testing.T, at time.Time, status casedesk.Status) *casedesk.Case {
	t.Helper()
	*f.now = at
	c := f.newCase(t, "waiting "+string(status))
	path := map[casedesk.Status][]casedesk.Status{
		casedesk.StatusOpen:    {casedesk.StatusOpen},
		casedesk.StatusPending: {casedesk.StatusOpen, casedesk.StatusPending},
		casedesk.StatusSolved:  {casedesk.StatusOpen, casedesk.StatusSolved},
		casedesk.StatusClosed:  {casedesk.StatusOpen, casedesk.StatusSolved, casedesk.StatusClosed},
	}[status]
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		for _, s := range path {
			if c, err = tx.ChangeStatus(ctx(), f.tenant.ID, c.ID, s, casedesk.SystemActor); err != nil {
				return err
			}
		}
		return nil
	})
	return c
}

// agentReply stores a customer-visible agent message on the case at the
// store clock at.
func (f *dueFixture) agentReply(t *testing.T, at time.Time, caseID int64) {
	t.Helper()
	*f.now = at
	update(t, f.db, func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), casedesk.NewMessage{TenantID: f.tenant.ID, CaseID: caseID,
			MessageID: "agent." + randHex(6) + "@acme.example", Direction: casedesk.Outbound,
			AuthorKind: casedesk.AuthorAgent, From: casedesk.Address{Email: "support@acme.example"},
			Text: "Could you send the log?", CustomerVisible: true})
		return err
	})
}

func (f *dueFixture) lockDue(t *testing.T, filter casedesk.DueCaseFilter) []int64 {
	t.Helper()
	var ids []int64
	update(t, f.db, func(tx casedesk.Tx) error {
		cases, err := tx.LockDueCases(ctx(), f.tenant.ID, filter)
		for _, c := range cases {
			ids = append(ids, c.ID)
		}
		return err
	})
	return ids
}

func TestLockDueCases(t *testing.T) {
	f := newDueFixture(t)
	day := 24 * time.Hour
	t0 := *f.now
	pending := f.caseAt(t, t0, casedesk.StatusPending)          // waits since t0
	replied := f.caseAt(t, t0, casedesk.StatusPending)          // waits since its agent reply, t0+2d
	solved := f.caseAt(t, t0.Add(day), casedesk.StatusSolved)   // solved at t0+1d
	open := f.caseAt(t, t0, casedesk.StatusOpen)                // never due
	closed := f.caseAt(t, t0, casedesk.StatusClosed)            // never due
	later := f.caseAt(t, t0.Add(5*day), casedesk.StatusPending) // waits since t0+5d
	f.agentReply(t, t0.Add(2*day), replied.ID)
	_, _ = open, closed

	tests := []struct {
		name   string
		filter casedesk.DueCaseFilter
		want   []int64
	}{
		{"nothing due yet", casedesk.DueCaseFilter{Limit: 10, RemindBefore: t0.Add(-time.Second),
			SolveBefore: t0.Add(-time.Second), CloseBefore: t0}, nil},
		{"remind at the instant", casedesk.DueCaseFilter{Limit: 10, RemindBefore: t0}, []int64{pending.ID}},
		{"remind from the agent reply", casedesk.DueCaseFilter{Limit: 10, RemindBefore: t0.Add(2 * day)},
			[]int64{pending.ID, replied.ID}},
		{"solve", casedesk.DueCaseFilter{Limit: 10, SolveBefore: t0.Add(5 * day)},
			[]int64{pending.ID, replied.ID, later.ID}},
		{"close", casedesk.DueCaseFilter{Limit: 10, CloseBefore: t0.Add(day)}, []int64{solved.ID}},
		{"close not before solved_at", casedesk.DueCaseFilter{Limit: 10, CloseBefore: t0.Add(day - time.Microsecond)}, nil},
		{"everything", casedesk.DueCaseFilter{Limit: 10, RemindBefore: t0.Add(9 * day),
			SolveBefore: t0.Add(9 * day), CloseBefore: t0.Add(9 * day)},
			[]int64{pending.ID, replied.ID, solved.ID, later.ID}},
		{"page", casedesk.DueCaseFilter{AfterID: pending.ID, Limit: 2, SolveBefore: t0.Add(9 * day),
			CloseBefore: t0.Add(9 * day)}, []int64{replied.ID, solved.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f.lockDue(t, tt.filter); !slices.Equal(got, tt.want) {
				t.Fatalf("due cases = %v, want %v", got, tt.want)
			}
		})
	}

	// Another tenant sees none of them.
	other := newFixture(t)
	update(t, other.db, func(tx casedesk.Tx) error {
		cases, err := tx.LockDueCases(ctx(), other.tenant.ID, casedesk.DueCaseFilter{Limit: 10,
			RemindBefore: t0.Add(99 * day), SolveBefore: t0.Add(99 * day), CloseBefore: t0.Add(99 * day)})
		if err == nil && len(cases) != 0 {
			t.Errorf("another tenant got %d cases", len(cases))
		}
		return err
	})
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.LockDueCases(ctx(), f.tenant.ID, casedesk.DueCaseFilter{})
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
}

func TestMarkReminded(t *testing.T) {
	f := newDueFixture(t)
	day := 24 * time.Hour
	t0 := *f.now
	a := f.caseAt(t, t0, casedesk.StatusPending)
	b := f.caseAt(t, t0, casedesk.StatusPending)
	remind := casedesk.DueCaseFilter{Limit: 10, RemindBefore: t0.Add(3 * day)}

	*f.now = t0.Add(3 * day)
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.MarkReminded(ctx(), f.tenant.ID, map[int64]time.Time{a.ID: a.WaitingSince()})
	})
	var got *casedesk.Case
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.FindCase(ctx(), f.tenant.ID, a.ID)
		return err
	})
	if !got.RemindedFor.Equal(t0) || !got.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("after MarkReminded: reminded_for %v, updated_at %v; want %v and unchanged %v",
			got.RemindedFor, got.UpdatedAt, t0, a.UpdatedAt)
	}
	if ids := f.lockDue(t, remind); !slices.Equal(ids, []int64{b.ID}) {
		t.Fatalf("due for a reminder after marking a = %v, want only b %d", ids, b.ID)
	}
	// A new wait (the agent writes again) makes a reminder due again.
	f.agentReply(t, t0.Add(day), a.ID)
	if ids := f.lockDue(t, casedesk.DueCaseFilter{Limit: 10, RemindBefore: t0.Add(4 * day)}); !slices.Equal(ids, []int64{a.ID, b.ID}) {
		t.Fatalf("due for a reminder after a new wait = %v, want both", ids)
	}

	// An unknown case fails the whole call.
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		return tx.MarkReminded(ctx(), f.tenant.ID, map[int64]time.Time{b.ID: t0, a.ID + 1_000_000: t0})
	})
	wantCode(t, err, casedesk.ENOTFOUND)
	other := newFixture(t)
	err = other.db.Update(ctx(), func(tx casedesk.Tx) error {
		return tx.MarkReminded(ctx(), other.tenant.ID, map[int64]time.Time{b.ID: t0})
	})
	wantCode(t, err, casedesk.ENOTFOUND)
}

// TestLockDueCasesSkipsLocked: a case another transaction holds is left
// out, not waited for.
func TestLockDueCasesSkipsLocked(t *testing.T) {
	f := newDueFixture(t)
	t0 := *f.now
	a := f.caseAt(t, t0, casedesk.StatusPending)
	b := f.caseAt(t, t0, casedesk.StatusPending)
	filter := casedesk.DueCaseFilter{Limit: 10, SolveBefore: t0}
	update(t, f.db, func(tx casedesk.Tx) error {
		held, err := tx.LockDueCases(ctx(), f.tenant.ID, casedesk.DueCaseFilter{Limit: 1, SolveBefore: t0})
		if err != nil || len(held) != 1 || held[0].ID != a.ID {
			t.Fatalf("first lock = %v, %v; want case a", held, err)
		}
		if ids := f.lockDue(t, filter); !slices.Equal(ids, []int64{b.ID}) {
			t.Errorf("while a is locked: due = %v, want only b", ids)
		}
		return nil
	})
	if ids := f.lockDue(t, filter); !slices.Equal(ids, []int64{a.ID, b.ID}) {
		t.Errorf("after the lock: due = %v, want both", ids)
	}
}

func TestListTenants(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	var got []*casedesk.Tenant
	if err := a.db.View(ctx(), func(tx casedesk.Tx) (err error) {
		got, err = tx.ListTenants(ctx())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var seen []int64
	for i, ten := range got {
		if i > 0 && ten.ID <= got[i-1].ID {
			t.Fatalf("tenants not ordered by ID: %d after %d", ten.ID, got[i-1].ID)
		}
		if ten.ID == a.tenant.ID || ten.ID == b.tenant.ID {
			seen = append(seen, ten.ID)
			if len(ten.TokenSecret) != 32 || ten.SupportAddress != "support@acme.example" {
				t.Errorf("tenant %d read incompletely: %+v", ten.ID, ten)
			}
		}
	}
	if !slices.Equal(seen, []int64{a.tenant.ID, b.tenant.ID}) {
		t.Fatalf("ListTenants saw %v of %d and %d", seen, a.tenant.ID, b.tenant.ID)
	}
}
