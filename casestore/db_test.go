package casestore_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/casedesk/casedesk"
)

// TestUpdateRetriesDeadlock makes two transactions lock two cases in
// opposite order. PostgreSQL aborts one of them with a deadlock; Update
// runs that one again, and both changes land.
func TestUpdateRetriesDeadlock(t *testing.T) {
	f := newFixture(t)
	a, b := f.newCase(t, "a"), f.newCase(t, "b")
	var barrier sync.WaitGroup
	barrier.Add(2)
	var runs atomic.Int32
	lockBoth := func(first, second *casedesk.Case, to casedesk.Status) error {
		attempt := 0
		return f.db.Update(ctx(), func(tx casedesk.Tx) error {
			runs.Add(1)
			attempt++
			if _, err := tx.ChangeStatus(ctx(), f.tenant.ID, first.ID, to, casedesk.SystemActor); err != nil {
				return err
			}
			if attempt == 1 {
				barrier.Done() // both hold their first lock
				barrier.Wait()
			}
			_, err := tx.ChangeStatus(ctx(), f.tenant.ID, second.ID, to, casedesk.SystemActor)
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- lockBoth(a, b, casedesk.StatusOpen) }()
	go func() { errs <- lockBoth(b, a, casedesk.StatusPending) }()
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("Update did not recover from the deadlock: %v", err)
		}
	}
	if runs.Load() != 3 {
		t.Fatalf("functions ran %d times, want 3 (one re-run)", runs.Load())
	}
	var ga, gb *casedesk.Case
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		if ga, err = tx.FindCase(ctx(), f.tenant.ID, a.ID); err == nil {
			gb, err = tx.FindCase(ctx(), f.tenant.ID, b.ID)
		}
		return err
	})
	if ga.Status != gb.Status {
		t.Fatalf("statuses %s and %s: one transaction's changes were lost", ga.Status, gb.Status)
	}
}
