package casestore_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func TestCaseNumbersConcurrentNoGapsNoRepeats(t *testing.T) {
	a, b := newFixture(t), newFixture(t)
	const workers, each = 8, 50
	var mu sync.Mutex
	numbers := map[int64][]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for _, f := range []*fixture{a, b} {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
						c, err := tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID,
							Subject: fmt.Sprintf("w%d-%d", w, i), RequesterID: f.requester.ID})
						if err != nil {
							return err
						}
						mu.Lock()
						numbers[f.tenant.ID] = append(numbers[f.tenant.ID], c.Number)
						mu.Unlock()
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, f := range []*fixture{a, b} {
		got := numbers[f.tenant.ID]
		slices.Sort(got)
		if len(got) != workers*each {
			t.Fatalf("tenant %d: %d cases, want %d", f.tenant.ID, len(got), workers*each)
		}
		for i, n := range got {
			if n != int64(i+1) {
				t.Fatalf("tenant %d: numbers are not exactly 1..%d: position %d holds %d", f.tenant.ID, workers*each, i, n)
			}
		}
	}
}

func TestCaseNumberReturnedOnRollback(t *testing.T) {
	f := newFixture(t)
	first := f.newCase(t, "one")
	boom := errors.New("boom")
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		if _, err := tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID, RequesterID: f.requester.ID}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	second := f.newCase(t, "two")
	if first.Number != 1 || second.Number != 2 {
		t.Fatalf("numbers %d, %d; want 1, 2 (the rolled-back number is reused)", first.Number, second.Number)
	}
}

func TestCreateCaseFillsRequesterAccountParticipantAndEvent(t *testing.T) {
	f := newFixture(t)
	var acct *casedesk.Account
	var c *casedesk.Case
	var parts []*casedesk.Contact
	var events []*casedesk.Event
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		acct, err = tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: "Globex", Domains: []string{"Globex.example"}})
		if err != nil {
			return err
		}
		hank, err := tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Name: "Hank", Email: "Hank@GLOBEX.example"})
		if err != nil {
			return err
		}
		c, err = tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID, Subject: "VPN down", RequesterID: hank.ID,
			Fields: []byte(`{"product":"vpn"}`)})
		if err != nil {
			return err
		}
		if parts, err = tx.ListParticipants(ctx(), f.tenant.ID, c.ID); err != nil {
			return err
		}
		events, err = tx.ListEvents(ctx(), f.tenant.ID, c.ID)
		return err
	})
	if c.AccountID != acct.ID || c.AccountName != "Globex" {
		t.Errorf("case account = %d %q, want the domain's account %d", c.AccountID, c.AccountName, acct.ID)
	}
	if c.Status != casedesk.StatusNew || c.Priority != casedesk.PriorityNormal || c.Category != casedesk.CategoryEmail {
		t.Errorf("defaults: %s %s %s", c.Status, c.Priority, c.Category)
	}
	if c.Requester.Email != "Hank@GLOBEX.example" || string(c.Fields) != `{"product": "vpn"}` {
		t.Errorf("requester %q fields %s", c.Requester.Email, c.Fields)
	}
	if len(parts) != 1 || parts[0].ID != c.RequesterID {
		t.Errorf("participants = %v, want the requester", parts)
	}
	if len(events) != 1 || events[0].Kind != casedesk.EventCreated {
		t.Errorf("events = %+v, want one created event", events)
	}
}

func TestChangeStatus(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "status")
	agent := casedesk.Actor{Kind: casedesk.AuthorAgent, UserID: 0}
	steps := []struct {
		to       casedesk.Status
		wantCode string
	}{
		{casedesk.StatusPending, ""},
		{casedesk.StatusPending, ""}, // same status: no-op
		{casedesk.StatusNew, casedesk.EINVALID},
		{casedesk.StatusSolved, ""},
		{casedesk.StatusOpen, ""}, // reopened
		{casedesk.StatusSolved, ""},
		{casedesk.StatusClosed, ""},
		{casedesk.StatusOpen, casedesk.EINVALID}, // closed is final
		{"weird", casedesk.EINVALID},
	}
	for _, s := range steps {
		var got *casedesk.Case
		err := f.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
			got, err = tx.ChangeStatus(ctx(), f.tenant.ID, c.ID, s.to, agent)
			return err
		})
		wantCode(t, err, s.wantCode)
		if err == nil && got.Status != s.to {
			t.Fatalf("status = %s, want %s", got.Status, s.to)
		}
	}
	var final *casedesk.Case
	var events []*casedesk.Event
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		if final, err = tx.FindCase(ctx(), f.tenant.ID, c.ID); err != nil {
			return err
		}
		events, err = tx.ListEvents(ctx(), f.tenant.ID, c.ID)
		return err
	})
	if final.ClosedAt.IsZero() || final.SolvedAt.IsZero() || !final.PendingSince.IsZero() {
		t.Errorf("timestamps closed=%v solved=%v pending=%v", final.ClosedAt, final.SolvedAt, final.PendingSince)
	}
	var moves []string
	for _, e := range events {
		if e.Kind == casedesk.EventStatusChanged {
			moves = append(moves, string(e.Data))
		}
	}
	if len(moves) != 5 || !strings.Contains(moves[0], `"to": "pending"`) {
		t.Errorf("status events = %v, want 5 moves", moves)
	}
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.ChangeStatus(ctx(), f.tenant.ID, 999999999, casedesk.StatusOpen, agent)
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)
}

func TestPendingSinceStampedAndCleared(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	c := f.newCase(t, "clock")
	update(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.ChangeStatus(ctx(), f.tenant.ID, c.ID, casedesk.StatusPending, casedesk.SystemActor)
		if err == nil && !got.PendingSince.Equal(now) {
			err = fmt.Errorf("pending_since = %v, want %v", got.PendingSince, now)
		}
		return err
	})
	update(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.ChangeStatus(ctx(), f.tenant.ID, c.ID, casedesk.StatusOpen, casedesk.SystemActor)
		if err == nil && !got.PendingSince.IsZero() {
			err = fmt.Errorf("pending_since kept after reopening: %v", got.PendingSince)
		}
		return err
	})
}

func TestFindCaseByNumber(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "findme")
	update(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.FindCaseByNumber(ctx(), f.tenant.ID, c.Number)
		if err != nil {
			return err
		}
		if got.ID != c.ID || got.Subject != "findme" {
			return fmt.Errorf("found %+v", got)
		}
		_, err = tx.FindCaseByNumber(ctx(), f.tenant.ID, c.Number+1000)
		wantCode(t, err, casedesk.ENOTFOUND)
		return nil
	})
}

func TestHistoryIsAppendOnly(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "history")
	for _, stmt := range []string{
		"UPDATE events SET kind = 'forged' WHERE tenant_id = $1",
		"DELETE FROM events WHERE tenant_id = $1",
		"UPDATE audit_log SET action = 'forged' WHERE tenant_id = $1",
		"DELETE FROM audit_log WHERE tenant_id = $1",
	} {
		update(t, f.db, func(tx casedesk.Tx) error {
			_, err := tx.AppendAudit(ctx(), casedesk.AuditEntry{TenantID: f.tenant.ID, Action: "case.update", TargetKind: "case", TargetID: fmt.Sprint(c.Number)})
			return err
		})
		err := rawExec(t, stmt, f.tenant.ID)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
}
