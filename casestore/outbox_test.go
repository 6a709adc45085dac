package casestore_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func (f *fixture) enqueue(t *testing.T, n int, kind casedesk.OutboxKind) []*casedesk.OutboxItem {
	t.Helper()
	var items []*casedesk.OutboxItem
	update(t, f.db, func(tx casedesk.Tx) error {
		for i := 0; i < n; i++ {
			it, err := tx.EnqueueOutbox(ctx(), casedesk.NewOutboxItem{TenantID: f.tenant.ID, Kind: kind,
				To: "cara@customer.example", MessageID: fmt.Sprintf("<c1.m%d.%s@acme.example>", i, randHex(4)),
				Payload: []byte(`{"case": 1}`)})
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return nil
	})
	return items
}

func TestOutboxConcurrentClaimersEachItemOnce(t *testing.T) {
	// Claims see every tenant's due rows, so this test runs on its own
	// clock far in the future and counts only its tenant's items.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	items := f.enqueue(t, 200, casedesk.OutboxAck)
	want := map[int64]bool{}
	for _, it := range items {
		want[it.ID] = true
	}
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var got []*casedesk.OutboxItem
				err := f.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
					got, err = tx.ClaimOutbox(ctx(), 7)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					if it.State != casedesk.OutboxSending || it.Attempts != 1 {
						t.Errorf("claimed item %d in state %s with %d attempts", it.ID, it.State, it.Attempts)
					}
					claimed[it.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for id := range want {
		if claimed[id] != 1 {
			t.Errorf("item %d claimed %d times", id, claimed[id])
		}
	}
}

func TestOutboxRetryComesBackAfterBackoff(t *testing.T) {
	now := time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	item := f.enqueue(t, 1, casedesk.OutboxAck)[0]
	claim := func() []*casedesk.OutboxItem {
		var got []*casedesk.OutboxItem
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			got, err = tx.ClaimOutbox(ctx(), 1000)
			return err
		})
		var mine []*casedesk.OutboxItem
		for _, it := range got {
			if it.TenantID == f.tenant.ID {
				mine = append(mine, it)
			}
		}
		return mine
	}
	if got := claim(); len(got) != 1 || got[0].ID != item.ID {
		t.Fatalf("first claim = %v", got)
	}
	delay := casedesk.DefaultBackoff.Delay(1, 0.5)
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.RetryOutbox(ctx(), f.tenant.ID, item.ID, "421 try later", now.Add(delay))
	})
	if got := claim(); len(got) != 0 {
		t.Fatalf("claimed %d items before the backoff ran out", len(got))
	}
	now = now.Add(delay - time.Second)
	if got := claim(); len(got) != 0 {
		t.Fatalf("claimed one second before the backoff ran out")
	}
	now = now.Add(time.Second)
	got := claim()
	if len(got) != 1 || got[0].Attempts != 2 || got[0].LastError != "421 try later" {
		t.Fatalf("after backoff claimed %+v, want the item on attempt 2 with its error", got)
	}
	update(t, f.db, func(tx casedesk.Tx) error { return tx.FailOutbox(ctx(), f.tenant.ID, item.ID, "550 no such user") })
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error { return tx.MarkOutboxSent(ctx(), f.tenant.ID, item.ID) })
	wantCode(t, err, casedesk.ECONFLICT)
	now = now.Add(48 * time.Hour)
	if got := claim(); len(got) != 0 {
		t.Fatal("a permanently failed item was claimed again")
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		it, err := tx.FindOutboxItem(ctx(), f.tenant.ID, item.ID)
		if err == nil && (it.State != casedesk.OutboxFailed || it.LastError != "550 no such user") {
			err = fmt.Errorf("item = %+v", it)
		}
		return err
	})
}

func TestOutboxSentAndCount(t *testing.T) {
	now := time.Date(2032, 2, 2, 0, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	items := f.enqueue(t, 3, casedesk.OutboxAck)
	f.enqueue(t, 1, casedesk.OutboxRelay)
	update(t, f.db, func(tx casedesk.Tx) error {
		if _, err := tx.ClaimOutbox(ctx(), 1000); err != nil {
			return err
		}
		return tx.MarkOutboxSent(ctx(), f.tenant.ID, items[0].ID)
	})
	update(t, f.db, func(tx casedesk.Tx) error {
		n, err := tx.CountOutbox(ctx(), f.tenant.ID, casedesk.OutboxAck, "CARA@customer.example", now.Add(-time.Hour))
		if err == nil && n != 3 {
			err = fmt.Errorf("acks counted = %d, want 3", n)
		}
		if err != nil {
			return err
		}
		n, err = tx.CountOutbox(ctx(), f.tenant.ID, casedesk.OutboxAck, "cara@customer.example", now.Add(time.Second))
		if err == nil && n != 0 {
			err = fmt.Errorf("acks counted since later = %d, want 0", n)
		}
		return err
	})
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error { return tx.MarkOutboxSent(ctx(), f.tenant.ID, 99999999) })
	wantCode(t, err, casedesk.ENOTFOUND)
	err = f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.EnqueueOutbox(ctx(), casedesk.NewOutboxItem{TenantID: f.tenant.ID, Kind: casedesk.OutboxAck, To: "nobody", MessageID: "x@y"})
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
}

// TestOutboxClaimOwners: claims carry their owner until they end; the
// claims of one owner are requeued together, due now, and the others'
// stay.
func TestOutboxClaimOwners(t *testing.T) {
	now := time.Date(1997, 3, 4, 10, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t, casestoreClock(&now))
	a, b := "a"+randHex(8), "b"+randHex(8)
	mine, theirs := f.enqueue(t, 3, casedesk.OutboxAck), other.enqueue(t, 2, casedesk.OutboxRelay)
	byA := append(slices.Clone(mine), theirs...)
	claimAllFor(t, f.db, a, byA...)
	now = now.Add(time.Minute)
	byB := f.enqueue(t, 1, casedesk.OutboxReminder)
	claimAllFor(t, f.db, b, byB...)
	now = now.Add(time.Minute)
	unowned := f.enqueue(t, 1, casedesk.OutboxSolved)
	claimAll(t, f.db, unowned...)
	all := append(append(slices.Clone(byA), byB...), unowned...)
	got := findOutbox(t, f.db, all...)
	for _, tt := range []struct {
		items []*casedesk.OutboxItem
		owner string
	}{{byA, a}, {byB, b}, {unowned, ""}} {
		for _, it := range tt.items {
			if o := got[it.ID]; o.State != casedesk.OutboxSending || o.ClaimedBy != tt.owner {
				t.Errorf("item %d: %s by %q, want sending by %q", o.ID, o.State, o.ClaimedBy, tt.owner)
			}
		}
	}
	owners := func() []string {
		var owners []string
		inUpdateAndView(t, f.db, func(t *testing.T, tx casedesk.Tx) {
			all, err := tx.OutboxClaimOwners(ctx())
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(all, "") || !slices.IsSorted(all) {
				t.Errorf("owners = %q, want sorted names", all)
			}
			owners = slices.DeleteFunc(all, func(o string) bool { return o != a && o != b })
		})
		return owners
	}
	if got := owners(); !slices.Equal(got, []string{a, b}) {
		t.Errorf("owners = %q, want %q", got, []string{a, b})
	}

	now = now.Add(time.Minute)
	var n int
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		n, err = tx.RequeueOutboxClaims(ctx(), a)
		return err
	})
	if n != len(byA) {
		t.Errorf("requeued %d items of %s, want %d", n, a, len(byA))
	}
	got = findOutbox(t, f.db, all...)
	for _, it := range byA {
		o := got[it.ID]
		if o.State != casedesk.OutboxPending || !o.NextAttemptAt.Equal(now) || o.ClaimedBy != "" || o.Attempts != 1 ||
			!strings.Contains(o.LastError, a) {
			t.Errorf("requeued item = %+v, want pending, due now, without owner", o)
		}
	}
	for _, it := range append(slices.Clone(byB), unowned...) {
		if o := got[it.ID]; o.State != casedesk.OutboxSending {
			t.Errorf("item %d of another owner = %s, want still sending", o.ID, o.State)
		}
	}
	if got := owners(); !slices.Equal(got, []string{b}) {
		t.Errorf("owners after the requeue = %q, want %q", got, []string{b})
	}
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		n, err = tx.RequeueOutboxClaims(ctx(), a)
		return err
	})
	if n != 0 {
		t.Errorf("second requeue of %s: %d items", a, n)
	}
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.RequeueOutboxClaims(ctx(), "")
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
	for _, bad := range []string{"x\x00y", strings.Repeat("x", 501)} {
		err = f.db.Update(ctx(), func(tx casedesk.Tx) error {
			_, err := tx.ClaimOutboxFor(ctx(), bad, 10)
			return err
		})
		wantCode(t, err, casedesk.EINVALID)
	}

	// Claimed again and finished: an ended claim has no owner.
	claimAllFor(t, f.db, b, byA...)
	update(t, f.db, func(tx casedesk.Tx) error {
		var rs []casedesk.OutboxResult
		for _, it := range append(slices.Clone(byA), byB...) {
			rs = append(rs, casedesk.OutboxResult{TenantID: it.TenantID, ID: it.ID, State: casedesk.OutboxSent})
		}
		if err := tx.FinishOutboxItems(ctx(), rs); err != nil {
			return err
		}
		return tx.FailOutbox(ctx(), f.tenant.ID, unowned[0].ID, "550 no")
	})
	for _, o := range findOutbox(t, f.db, all...) {
		if o.ClaimedBy != "" || o.State == casedesk.OutboxSending {
			t.Errorf("finished item = %+v, want no owner", o)
		}
	}
	if got := owners(); len(got) != 0 {
		t.Errorf("owners after finishing = %q", got)
	}
}

// TestUnmarkOutboxSent: an item recorded as sent goes back to pending or
// failed; anything else is refused.
func TestUnmarkOutboxSent(t *testing.T) {
	now := time.Date(1996, 7, 8, 10, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t, casestoreClock(&now))
	items, theirs := f.enqueue(t, 3, casedesk.OutboxAck), other.enqueue(t, 1, casedesk.OutboxAck)[0]
	claimAll(t, f.db, append(slices.Clone(items), theirs)...)
	x, y, z := items[0], items[1], items[2]
	update(t, f.db, func(tx casedesk.Tx) error {
		if err := tx.MarkOutboxSent(ctx(), f.tenant.ID, x.ID); err != nil {
			return err
		}
		if err := tx.MarkOutboxSent(ctx(), f.tenant.ID, y.ID); err != nil {
			return err
		}
		return tx.MarkOutboxSent(ctx(), other.tenant.ID, theirs.ID)
	})
	now = now.Add(time.Minute)
	retry := now.Add(10 * time.Minute)
	update(t, f.db, func(tx casedesk.Tx) error {
		if err := tx.UnmarkOutboxSent(ctx(), casedesk.OutboxResult{TenantID: f.tenant.ID, ID: x.ID,
			State: casedesk.OutboxPending, NextAttemptAt: retry, Error: "451 try later"}); err != nil {
			return err
		}
		return tx.UnmarkOutboxSent(ctx(), casedesk.OutboxResult{TenantID: f.tenant.ID, ID: y.ID,
			State: casedesk.OutboxFailed, Error: "554 spam"})
	})
	got := findOutbox(t, f.db, x, y)
	if o := got[x.ID]; o.State != casedesk.OutboxPending || !o.NextAttemptAt.Equal(retry) || !o.SentAt.IsZero() ||
		o.LastError != "451 try later" || o.Attempts != 1 {
		t.Errorf("x = %+v, want pending, due at %v", o, retry)
	}
	if o := got[y.ID]; o.State != casedesk.OutboxFailed || !o.SentAt.IsZero() || o.LastError != "554 spam" {
		t.Errorf("y = %+v, want failed", o)
	}

	tests := []struct {
		name string
		r    casedesk.OutboxResult
		code string
	}{
		{"still sending", casedesk.OutboxResult{TenantID: f.tenant.ID, ID: z.ID, State: casedesk.OutboxFailed}, casedesk.ECONFLICT},
		{"pending already", casedesk.OutboxResult{TenantID: f.tenant.ID, ID: x.ID, State: casedesk.OutboxFailed}, casedesk.ECONFLICT},
		{"unknown", casedesk.OutboxResult{TenantID: f.tenant.ID, ID: 99999999, State: casedesk.OutboxFailed}, casedesk.ENOTFOUND},
		{"another tenant's", casedesk.OutboxResult{TenantID: f.tenant.ID, ID: theirs.ID, State: casedesk.OutboxFailed}, casedesk.ENOTFOUND},
		{"to sent", casedesk.OutboxResult{TenantID: other.tenant.ID, ID: theirs.ID, State: casedesk.OutboxSent}, casedesk.EINVALID},
		{"retry without a time", casedesk.OutboxResult{TenantID: other.tenant.ID, ID: theirs.ID, State: casedesk.OutboxPending}, casedesk.EINVALID},
		{"no item", casedesk.OutboxResult{TenantID: f.tenant.ID, State: casedesk.OutboxFailed}, casedesk.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.db.Update(ctx(), func(tx casedesk.Tx) error { return tx.UnmarkOutboxSent(ctx(), tt.r) })
			wantCode(t, err, tt.code)
		})
	}
	err := f.db.View(ctx(), func(tx casedesk.Tx) error {
		return tx.UnmarkOutboxSent(ctx(), casedesk.OutboxResult{TenantID: other.tenant.ID, ID: theirs.ID,
			State: casedesk.OutboxFailed})
	})
	if err == nil {
		t.Error("UnmarkOutboxSent wrote in a View")
	}
	if o := findOutbox(t, f.db, theirs)[theirs.ID]; o.State != casedesk.OutboxSent {
		t.Errorf("their item = %+v, want still sent", o)
	}

	// x comes back when due; finish everything.
	now = retry
	claimAll(t, f.db, x)
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.FinishOutboxItems(ctx(), []casedesk.OutboxResult{
			{TenantID: f.tenant.ID, ID: x.ID, State: casedesk.OutboxSent},
			{TenantID: f.tenant.ID, ID: z.ID, State: casedesk.OutboxSent},
		})
	})
}
