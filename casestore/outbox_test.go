package casestore_test

import (
	"fmt"
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
