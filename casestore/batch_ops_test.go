package casestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// wantError checks an error's code and that its message names what it is about.
func wantError(t testing.TB, err error, code, inMessage string) {
	t.Helper()
	wantCode(t, err, code)
	if msg := casedesk.ErrorMessage(err); !strings.Contains(msg, inMessage) {
		t.Fatalf("error message %q does not contain %q", msg, inMessage)
	}
}

// count returns the result of a count(*) query on the package database.
func count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := queryRow(t, sql, args, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// failUpdate runs fn in a transaction that must fail, and returns its error.
func failUpdate(t testing.TB, db casedesk.Store, fn func(tx casedesk.Tx) error) error {
	t.Helper()
	err := db.Update(ctx(), fn)
	if err == nil {
		t.Fatal("transaction succeeded, want an error")
	}
	return err
}

func (f *fixture) contact(t testing.TB, name, email string) *casedesk.Contact {
	t.Helper()
	var c *casedesk.Contact
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		c, err = tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Name: name, Email: email})
		return err
	})
	return c
}

func TestFindContactsByEmails(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	dan := f.contact(t, "Dan", "Dan@Customer.example")
	other.contact(t, "Eve", "eve@customer.example") // another tenant's only
	inUpdateAndView(t, f.db, func(t *testing.T, tx casedesk.Tx) {
		got, err := tx.FindContactsByEmails(ctx(), f.tenant.ID,
			[]string{"CARA@customer.example", "dan@customer.EXAMPLE", "eve@customer.example", "nobody@customer.example", "dan@customer.example"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, c := range got {
			ids = append(ids, c.ID)
			if c.TenantID != f.tenant.ID {
				t.Errorf("contact %d of tenant %d", c.ID, c.TenantID)
			}
		}
		slices.Sort(ids)
		if want := []int64{f.requester.ID, dan.ID}; !slices.Equal(ids, want) {
			t.Errorf("contacts %v, want %v", ids, want)
		}
		if got, err := tx.FindContactsByEmails(ctx(), f.tenant.ID, nil); got != nil || err != nil {
			t.Errorf("no emails: %v, %v", got, err)
		}
	})
}

func TestUpsertContacts(t *testing.T) {
	now := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	theirs := other.contact(t, "", "milton@initech.example")
	var acct *casedesk.Account
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		acct, err = tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: "Initech", Domains: []string{"initech.example"}})
		return err
	})
	peter := f.contact(t, "Peter Gibbons", "Peter@Initech.example")
	milton := f.contact(t, "", "Milton@initech.example")
	var peterXmin, theirXmin int64
	queryRow(t, "SELECT xmin::text::bigint FROM contacts WHERE id = $1", []any{peter.ID}, &peterXmin)
	queryRow(t, "SELECT xmin::text::bigint FROM contacts WHERE id = $1", []any{theirs.ID}, &theirXmin)
	now = now.Add(time.Hour)

	var got []*casedesk.Contact
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.UpsertContacts(ctx(), f.tenant.ID, []casedesk.Address{
			{Name: "Someone Else", Email: "peter@INITECH.example"}, // known, named: read only
			{Email: " samir@initech.example "},                     // new, named by its repeat below
			{Name: "Milton Waddams", Email: "MILTON@initech.example"},
			{Name: "Samir N.", Email: "Samir@Initech.example"},
			{Name: "Joanna", Email: "joanna@chotchkies.example"}, // new, no account
			{Email: "peter@initech.example"},
		})
		return err
	})
	if len(got) != 6 {
		t.Fatalf("%d contacts, want 6", len(got))
	}
	samir, joanna := got[1], got[4]
	wantIDs := []int64{peter.ID, samir.ID, milton.ID, samir.ID, joanna.ID, peter.ID}
	for i, c := range got {
		if c.ID != wantIDs[i] || c.TenantID != f.tenant.ID {
			t.Errorf("result %d: contact %d of tenant %d, want %d", i, c.ID, c.TenantID, wantIDs[i])
		}
	}
	if samir.ID == peter.ID || samir.ID == milton.ID || joanna.ID == samir.ID || joanna.ID == theirs.ID {
		t.Fatalf("new contacts reuse IDs: %v", wantIDs)
	}
	if got[0].Name != "Peter Gibbons" || !got[0].UpdatedAt.Equal(peter.UpdatedAt) {
		t.Errorf("known named contact = %q updated %v, want it unchanged", got[0].Name, got[0].UpdatedAt)
	}
	if got[2].Name != "Milton Waddams" || !got[2].UpdatedAt.Equal(now) {
		t.Errorf("nameless contact = %q updated %v, want named at %v", got[2].Name, got[2].UpdatedAt, now)
	}
	if samir.Email != "samir@initech.example" || samir.Name != "Samir N." || samir.AccountID != acct.ID || !samir.CreatedAt.Equal(now) {
		t.Errorf("new contact %+v, want first spelling, the given name and account %d", samir, acct.ID)
	}
	if *got[3] != *samir {
		t.Errorf("repeated address gave %+v and %+v", samir, got[3])
	}
	if joanna.AccountID != 0 || joanna.Name != "Joanna" {
		t.Errorf("contact without a known domain: %+v", joanna)
	}
	var xmin int64
	queryRow(t, "SELECT xmin::text::bigint FROM contacts WHERE id = $1", []any{peter.ID}, &xmin)
	if xmin != peterXmin {
		t.Error("the known named contact was written")
	}
	queryRow(t, "SELECT xmin::text::bigint FROM contacts WHERE id = $1", []any{theirs.ID}, &xmin)
	if xmin != theirXmin {
		t.Error("another tenant's contact with the same address was written")
	}
	if n := count(t, "SELECT count(*) FROM contacts WHERE tenant_id = $1", f.tenant.ID); n != 5 {
		t.Errorf("tenant has %d contacts, want 5 (Cara, Peter, Milton, Samir, Joanna)", n)
	}

	before := count(t, "SELECT count(*) FROM contacts WHERE tenant_id = $1", f.tenant.ID)
	err := failUpdate(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.UpsertContacts(ctx(), f.tenant.ID, []casedesk.Address{{Email: "new@initech.example"}, {Email: "not-an-address"}})
		return err
	})
	wantError(t, err, casedesk.EINVALID, `address 1: "not-an-address"`)
	if n := count(t, "SELECT count(*) FROM contacts WHERE tenant_id = $1", f.tenant.ID); n != before {
		t.Errorf("contacts %d after a refused batch, want %d", n, before)
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		cs, err := tx.UpsertContacts(ctx(), f.tenant.ID, nil)
		if cs != nil || err != nil {
			t.Errorf("no addresses: %v, %v", cs, err)
		}
		return nil
	})
}

// A known contact with a name is read without a row lock, so transactions
// upserting the same frequent sender do not wait for each other.
func TestUpsertContactsKnownNamedTakesNoLock(t *testing.T) {
	f := newFixture(t)
	addrs := []casedesk.Address{{Name: "Cara", Email: "cara@customer.example"}}
	update(t, f.db, func(tx casedesk.Tx) error {
		if _, err := tx.UpsertContacts(ctx(), f.tenant.ID, addrs); err != nil {
			return err
		}
		c, cancel := context.WithTimeout(ctx(), 10*time.Second)
		defer cancel()
		// Still inside the first transaction.
		return f.db.Update(c, func(tx2 casedesk.Tx) error {
			got, err := tx2.UpsertContacts(c, f.tenant.ID, addrs)
			if err == nil && got[0].ID != f.requester.ID {
				err = fmt.Errorf("got contact %d, want %d", got[0].ID, f.requester.ID)
			}
			return err
		})
	})
}

// A contact that another transaction inserts and commits while the batch's
// statement waits on it is read back by a second statement (and named).
func TestUpsertContactsConcurrentInsert(t *testing.T) {
	f := newFixture(t)
	inserted, release := make(chan struct{}), make(chan struct{})
	otherDone := make(chan error, 1)
	go func() {
		otherDone <- f.db.Update(ctx(), func(tx casedesk.Tx) error {
			_, err := tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Email: "race@customer.example"})
			close(inserted)
			<-release
			return err
		})
	}()
	<-inserted
	type result struct {
		cs  []*casedesk.Contact
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = f.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
			r.cs, err = tx.UpsertContacts(ctx(), f.tenant.ID, []casedesk.Address{
				{Name: "Cara", Email: "cara@customer.example"}, {Name: "Rae Race", Email: "RACE@customer.example"}})
			return err
		})
		done <- r
	}()
	waitForLockWait(t)
	close(release)
	if err := <-otherDone; err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	var raceID int64
	queryRow(t, "SELECT id FROM contacts WHERE tenant_id = $1 AND email = 'race@customer.example'", []any{f.tenant.ID}, &raceID)
	if r.cs[0].ID != f.requester.ID || r.cs[1].ID != raceID || r.cs[1].Name != "Rae Race" {
		t.Errorf("contacts %+v %+v, want Cara and the concurrently inserted %d, named", r.cs[0], r.cs[1], raceID)
	}
}

// waitForLockWait polls until a session of the package database waits for
// a lock.
func waitForLockWait(t *testing.T) {
	t.Helper()
	conn, err := pgx.Connect(ctx(), casestoretest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx())
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var n int
		err := conn.QueryRow(ctx(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
	}
	t.Fatal("no session waited for a lock")
}

func TestFindUsersByEmails(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	users := map[string]*casedesk.User{}
	for _, s := range []struct {
		fix         *fixture
		email, role string
	}{
		{f, "Ann@Acme.example", casedesk.RoleSupport},
		{f, "bill+ops@acme.example", casedesk.RoleFinance},
		{f, "carl@acme.example", casedesk.RoleSupport},
		{f, "carl+x@acme.example", casedesk.RoleFinance},
		{other, "dora@acme.example", casedesk.RoleSupport},
	} {
		update(t, s.fix.db, func(tx casedesk.Tx) (err error) {
			users[strings.ToLower(s.email)], err = tx.CreateUser(ctx(), casedesk.NewUser{TenantID: s.fix.tenant.ID, Email: s.email, Name: "x", RoleName: s.role})
			return err
		})
	}
	inUpdateAndView(t, f.db, func(t *testing.T, tx casedesk.Tx) {
		got, err := tx.FindUsersByEmails(ctx(), f.tenant.ID, []string{"ann@acme.example", "ANN+case123@acme.example",
			"bill+ops@ACME.example", "carl+x@acme.example", "carl+y@acme.example", "nobody@acme.example", "dora@acme.example", "Ann@acme.example"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{ // key -> the user's address
			"ann@acme.example":         "ann@acme.example",
			"ann+case123@acme.example": "ann@acme.example",
			"bill+ops@acme.example":    "bill+ops@acme.example",
			"carl+x@acme.example":      "carl+x@acme.example", // the exact match wins
			"carl+y@acme.example":      "carl@acme.example",
		}
		if len(got) != len(want) {
			t.Errorf("got %d users, want %d: %v", len(got), len(want), got)
		}
		for key, email := range want {
			u := got[key]
			if u == nil || u.ID != users[email].ID || u.Role == nil || u.Role.Name != users[email].Role.Name {
				t.Errorf("%s: user %+v, want %d with role %s", key, u, users[email].ID, users[email].Role.Name)
			}
		}
		empty, err := tx.FindUsersByEmails(ctx(), f.tenant.ID, nil)
		if err != nil || len(empty) != 0 {
			t.Errorf("no emails: %v, %v", empty, err)
		}
	})
}

func TestCreateCases(t *testing.T) {
	now := time.Date(2026, 4, 2, 10, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	first := f.newCase(t, "one")
	var acct *casedesk.Account
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		acct, err = tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: "Globex", Domains: []string{"globex.example"}})
		return err
	})
	hank := f.contact(t, "Hank", "hank@globex.example")
	var got []*casedesk.Case
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.CreateCases(ctx(), []casedesk.NewCase{
			{TenantID: f.tenant.ID, Subject: "two", RequesterID: hank.ID, Fields: []byte(`{"product":"vpn"}`)},
			{TenantID: f.tenant.ID, Subject: "three", RequesterID: f.requester.ID, Status: casedesk.StatusPending,
				Priority: casedesk.PriorityUrgent, ErrorFingerprint: "fp-1"},
			{TenantID: f.tenant.ID, Subject: "four", RequesterID: hank.ID, AccountID: 0, FollowUpOf: first.ID},
		})
		if err != nil {
			return err
		}
		for i, c := range got {
			stored, err := tx.FindCase(ctx(), f.tenant.ID, c.ID)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(c, stored) {
				t.Errorf("case %d returned as\n%+v\nstored as\n%+v", i, c, stored)
			}
			parts, err := tx.ListParticipants(ctx(), f.tenant.ID, c.ID)
			if err != nil {
				return err
			}
			if len(parts) != 1 || parts[0].ID != c.RequesterID {
				t.Errorf("case %d participants %v, want the requester %d", i, parts, c.RequesterID)
			}
			events, err := tx.ListEvents(ctx(), f.tenant.ID, c.ID)
			if err != nil {
				return err
			}
			wantData := fmt.Sprintf(`{"number": %d, "status": %q}`, c.Number, c.Status)
			if len(events) != 1 || events[0].Kind != casedesk.EventCreated || string(events[0].Data) != wantData ||
				events[0].Actor != casedesk.SystemActor || !events[0].CreatedAt.Equal(now) {
				t.Errorf("case %d events %+v, want one created event with %s", i, events, wantData)
			}
		}
		return nil
	})
	for i, want := range []struct {
		subject string
		number  int64
		account int64
		status  casedesk.Status
	}{{"two", 2, acct.ID, casedesk.StatusNew}, {"three", 3, 0, casedesk.StatusPending}, {"four", 4, acct.ID, casedesk.StatusNew}} {
		c := got[i]
		if c.Subject != want.subject || c.Number != want.number || c.AccountID != want.account || c.Status != want.status {
			t.Errorf("case %d = %q #%d account %d %s, want %+v", i, c.Subject, c.Number, c.AccountID, c.Status, want)
		}
	}
	if !got[1].PendingSince.Equal(now) || got[1].ErrorFingerprint != "fp-1" || got[1].Priority != casedesk.PriorityUrgent ||
		got[2].FollowUpOf != first.ID || string(got[0].Fields) != `{"product": "vpn"}` || got[0].Category != casedesk.CategoryEmail {
		t.Errorf("case details not stored: %+v %+v %+v", got[0], got[1], got[2])
	}

	boom := errors.New("boom")
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		if _, err := tx.CreateCases(ctx(), []casedesk.NewCase{
			{TenantID: f.tenant.ID, RequesterID: f.requester.ID}, {TenantID: f.tenant.ID, RequesterID: f.requester.ID}}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		in        []casedesk.NewCase
		code, msg string
	}{
		{"invalid case", []casedesk.NewCase{{TenantID: f.tenant.ID, RequesterID: f.requester.ID},
			{TenantID: f.tenant.ID, RequesterID: f.requester.ID, Status: casedesk.StatusClosed}}, casedesk.EINVALID, "case 1: a case cannot start as"},
		{"two tenants", []casedesk.NewCase{{TenantID: f.tenant.ID, RequesterID: f.requester.ID},
			{TenantID: other.tenant.ID, RequesterID: other.requester.ID}}, casedesk.EINVALID, "one tenant"},
		{"unknown tenant", []casedesk.NewCase{{TenantID: -1, RequesterID: f.requester.ID}}, casedesk.ENOTFOUND, "tenant -1"},
		{"another tenant's requester", []casedesk.NewCase{{TenantID: f.tenant.ID, RequesterID: f.requester.ID},
			{TenantID: f.tenant.ID, RequesterID: other.requester.ID}}, casedesk.EINVALID, "requester"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := failUpdate(t, f.db, func(tx casedesk.Tx) error {
				_, err := tx.CreateCases(ctx(), tt.in)
				return err
			})
			wantError(t, err, tt.code, tt.msg)
		})
	}
	// Neither the rolled-back batch nor the refused ones used up numbers.
	if next := f.newCase(t, "five"); next.Number != 5 {
		t.Errorf("next case #%d, want #5", next.Number)
	}
	if n := count(t, "SELECT count(*) FROM events WHERE tenant_id = $1", f.tenant.ID); n != 5 {
		t.Errorf("%d events, want 5 created events", n)
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		cs, err := tx.CreateCases(ctx(), nil)
		if cs != nil || err != nil {
			t.Errorf("no cases: %v, %v", cs, err)
		}
		return nil
	})
}

// statusEvents returns a case's status_changed events as "from>to by actor".
func statusEvents(t testing.TB, f *fixture, caseID int64) []string {
	t.Helper()
	var out []string
	update(t, f.db, func(tx casedesk.Tx) error {
		events, err := tx.ListEvents(ctx(), f.tenant.ID, caseID)
		for _, e := range events {
			if e.Kind != casedesk.EventStatusChanged {
				continue
			}
			var d struct{ From, To string }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s>%s by %s/%d", d.From, d.To, e.Actor.Kind, e.Actor.UserID))
		}
		return err
	})
	return out
}

func (f *fixture) find(t testing.TB, id int64) *casedesk.Case {
	t.Helper()
	var c *casedesk.Case
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		c, err = tx.FindCase(ctx(), f.tenant.ID, id)
		return err
	})
	return c
}

func TestChangeStatuses(t *testing.T) {
	now := time.Date(2026, 4, 3, 9, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	a, b, c, d := f.newCase(t, "a"), f.newCase(t, "b"), f.newCase(t, "c"), f.newCase(t, "d")
	f.setStatus(t, c, casedesk.StatusPending)
	agent := casedesk.Actor{Kind: casedesk.AuthorAgent, UserID: 7}
	now = now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.ChangeStatuses(ctx(), f.tenant.ID, []casedesk.StatusChange{
			{CaseID: a.ID, From: casedesk.StatusNew, To: casedesk.StatusOpen, By: agent},
			{CaseID: b.ID, From: casedesk.StatusNew, To: casedesk.StatusSolved, By: casedesk.SystemActor},
			{CaseID: a.ID, From: casedesk.StatusOpen, To: casedesk.StatusPending, By: casedesk.SystemActor},
			{CaseID: b.ID, From: casedesk.StatusSolved, To: casedesk.StatusClosed, By: agent},
			{CaseID: c.ID, From: casedesk.StatusPending, To: casedesk.StatusOpen, By: agent},
			{CaseID: d.ID, From: casedesk.StatusNew, To: casedesk.StatusSolved, By: agent},
			{CaseID: d.ID, From: casedesk.StatusSolved, To: casedesk.StatusOpen, By: agent},
		})
	})
	ga, gb, gc, gd := f.find(t, a.ID), f.find(t, b.ID), f.find(t, c.ID), f.find(t, d.ID)
	if ga.Status != casedesk.StatusPending || !ga.PendingSince.Equal(now) || !ga.UpdatedAt.Equal(now) || !ga.SolvedAt.IsZero() {
		t.Errorf("case a: %s pending %v updated %v solved %v", ga.Status, ga.PendingSince, ga.UpdatedAt, ga.SolvedAt)
	}
	// Made one by one, solved then closed leaves both stamped.
	if gb.Status != casedesk.StatusClosed || !gb.SolvedAt.Equal(now) || !gb.ClosedAt.Equal(now) || !gb.PendingSince.IsZero() {
		t.Errorf("case b: %s solved %v closed %v", gb.Status, gb.SolvedAt, gb.ClosedAt)
	}
	if gc.Status != casedesk.StatusOpen || !gc.PendingSince.IsZero() {
		t.Errorf("case c: %s pending since %v", gc.Status, gc.PendingSince)
	}
	// Solved and reopened: solved_at cleared again.
	if gd.Status != casedesk.StatusOpen || !gd.SolvedAt.IsZero() || len(statusEvents(t, f, d.ID)) != 2 {
		t.Errorf("case d: %s solved %v", gd.Status, gd.SolvedAt)
	}
	if got, want := statusEvents(t, f, a.ID), []string{"new>open by agent/7", "open>pending by system/0"}; !slices.Equal(got, want) {
		t.Errorf("case a events %v, want %v", got, want)
	}
	if got, want := statusEvents(t, f, b.ID), []string{"new>solved by system/0", "solved>closed by agent/7"}; !slices.Equal(got, want) {
		t.Errorf("case b events %v, want %v", got, want)
	}
	// Closing a case solved earlier keeps its solved_at.
	now = now.Add(time.Hour)
	f.setStatus(t, gc, casedesk.StatusSolved)
	solvedAt := now
	now = now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.ChangeStatuses(ctx(), f.tenant.ID, []casedesk.StatusChange{{CaseID: c.ID, From: casedesk.StatusSolved, To: casedesk.StatusClosed}})
	})
	if gc = f.find(t, c.ID); !gc.SolvedAt.Equal(solvedAt) || !gc.ClosedAt.Equal(now) {
		t.Errorf("closed case c: solved %v closed %v, want %v and %v", gc.SolvedAt, gc.ClosedAt, solvedAt, now)
	}
	update(t, f.db, func(tx casedesk.Tx) error { return tx.ChangeStatuses(ctx(), f.tenant.ID, nil) })
}

func TestChangeStatusesRefused(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	a, b := f.newCase(t, "a"), f.newCase(t, "b")
	theirs := other.newCase(t, "theirs")
	open := func(id int64) casedesk.StatusChange {
		return casedesk.StatusChange{CaseID: id, From: casedesk.StatusNew, To: casedesk.StatusOpen}
	}
	tests := []struct {
		name      string
		changes   []casedesk.StatusChange
		code, msg string
	}{
		{"disallowed", []casedesk.StatusChange{open(a.ID), {CaseID: b.ID, From: casedesk.StatusNew, To: casedesk.StatusClosed}},
			casedesk.EINVALID, "change 1: a new case cannot become closed"},
		{"same status", []casedesk.StatusChange{open(a.ID), {CaseID: b.ID, From: casedesk.StatusNew, To: casedesk.StatusNew}},
			casedesk.EINVALID, "change 1:"},
		{"unknown status", []casedesk.StatusChange{{CaseID: a.ID, From: casedesk.StatusNew, To: "weird"}},
			casedesk.EINVALID, "unknown status"},
		{"broken chain", []casedesk.StatusChange{open(a.ID), open(b.ID), {CaseID: a.ID, From: casedesk.StatusPending, To: casedesk.StatusSolved}},
			casedesk.EINVALID, fmt.Sprintf("change 2: case %d is open after its previous change, not pending", a.ID)},
		{"unknown case", []casedesk.StatusChange{open(a.ID), open(-5)}, casedesk.ENOTFOUND, "case -5 not found"},
		{"another tenant's case", []casedesk.StatusChange{open(a.ID), open(theirs.ID)},
			casedesk.ENOTFOUND, fmt.Sprintf("case %d not found", theirs.ID)},
		{"stale from", []casedesk.StatusChange{open(a.ID), {CaseID: b.ID, From: casedesk.StatusPending, To: casedesk.StatusOpen}},
			casedesk.ECONFLICT, "case status changed concurrently"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := failUpdate(t, f.db, func(tx casedesk.Tx) error { return tx.ChangeStatuses(ctx(), f.tenant.ID, tt.changes) })
			wantError(t, err, tt.code, tt.msg)
		})
	}
	for _, c := range []*casedesk.Case{a, b} {
		if got := f.find(t, c.ID); got.Status != casedesk.StatusNew || len(statusEvents(t, f, c.ID)) != 0 {
			t.Errorf("case %d is %s after refused changes", c.ID, got.Status)
		}
	}
	if got := other.find(t, theirs.ID); got.Status != casedesk.StatusNew || len(statusEvents(t, other, theirs.ID)) != 0 {
		t.Errorf("another tenant's case was changed: %s", got.Status)
	}
}

// A case moved by another transaction after this one read it is ECONFLICT,
// and the batch's other changes roll back with it.
func TestChangeStatusesConcurrentChange(t *testing.T) {
	f := newFixture(t)
	a, b := f.newCase(t, "a"), f.newCase(t, "b")
	err := failUpdate(t, f.db, func(tx casedesk.Tx) error {
		read, err := tx.FindCasesByIDs(ctx(), f.tenant.ID, []int64{a.ID, b.ID})
		if err != nil {
			return err
		}
		f.setStatus(t, b, casedesk.StatusPending) // commits in its own transaction
		var changes []casedesk.StatusChange
		for _, c := range read {
			changes = append(changes, casedesk.StatusChange{CaseID: c.ID, From: c.Status, To: casedesk.StatusOpen})
		}
		return tx.ChangeStatuses(ctx(), f.tenant.ID, changes)
	})
	wantError(t, err, casedesk.ECONFLICT, fmt.Sprintf("case %d is no longer new", b.ID))
	if got := f.find(t, a.ID); got.Status != casedesk.StatusNew || len(statusEvents(t, f, a.ID)) != 0 {
		t.Errorf("case a is %s after the conflict", got.Status)
	}
	if got := statusEvents(t, f, b.ID); !slices.Equal(got, []string{"new>pending by system/0"}) {
		t.Errorf("case b events %v, want only the concurrent change", got)
	}
}

func TestAddCaseParticipants(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	a, b := f.newCase(t, "a"), f.newCase(t, "b")
	theirs := other.newCase(t, "theirs")
	dan, eve := f.contact(t, "Dan", "dan@customer.example"), f.contact(t, "Eve", "eve@customer.example")
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.AddCaseParticipants(ctx(), f.tenant.ID, []casedesk.CaseParticipant{
			{CaseID: a.ID, ContactID: dan.ID}, {CaseID: b.ID, ContactID: eve.ID}, {CaseID: a.ID, ContactID: f.requester.ID},
			{CaseID: a.ID, ContactID: dan.ID}, {CaseID: b.ID, ContactID: dan.ID}})
	})
	for _, tt := range []struct {
		c    *casedesk.Case
		want []int64
	}{{a, []int64{f.requester.ID, dan.ID}}, {b, []int64{f.requester.ID, dan.ID, eve.ID}}} {
		var parts []*casedesk.Contact
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			parts, err = tx.ListParticipants(ctx(), f.tenant.ID, tt.c.ID)
			return err
		})
		var ids []int64
		for _, p := range parts {
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, tt.want) {
			t.Errorf("case %q participants %v, want %v", tt.c.Subject, ids, tt.want)
		}
	}
	err := failUpdate(t, f.db, func(tx casedesk.Tx) error {
		return tx.AddCaseParticipants(ctx(), f.tenant.ID, []casedesk.CaseParticipant{
			{CaseID: a.ID, ContactID: eve.ID}, {CaseID: theirs.ID, ContactID: dan.ID}})
	})
	wantCode(t, err, casedesk.EINVALID)
	if n := count(t, "SELECT count(*) FROM case_participants WHERE tenant_id = $1 AND case_id = $2", other.tenant.ID, theirs.ID); n != 1 {
		t.Errorf("another tenant's case has %d participants, want its requester only", n)
	}
	if n := count(t, "SELECT count(*) FROM case_participants WHERE case_id = $1 AND contact_id = $2", a.ID, eve.ID); n != 0 {
		t.Error("a refused batch was partly written")
	}
	update(t, f.db, func(tx casedesk.Tx) error { return tx.AddCaseParticipants(ctx(), f.tenant.ID, nil) })
}

func TestAddEvents(t *testing.T) {
	now := time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	a, b := f.newCase(t, "a"), f.newCase(t, "b")
	agent := casedesk.Actor{Kind: casedesk.AuthorAgent, UserID: 3}
	var got []*casedesk.Event
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.AddEvents(ctx(), []casedesk.Event{
			{TenantID: f.tenant.ID, CaseID: b.ID, Kind: casedesk.EventAssigned, Actor: agent, Data: []byte(`{"to":3}`)},
			{TenantID: f.tenant.ID, CaseID: a.ID, Kind: casedesk.EventReminder, Actor: casedesk.SystemActor},
			{TenantID: f.tenant.ID, CaseID: b.ID, Kind: casedesk.EventPriority, Actor: agent, Data: []byte(`{"p":"high"}`)},
		})
		return err
	})
	wantKinds := []string{casedesk.EventAssigned, casedesk.EventReminder, casedesk.EventPriority}
	for i, e := range got {
		if e.Kind != wantKinds[i] || !e.CreatedAt.Equal(now) || e.ID == 0 || (i > 0 && e.ID <= got[i-1].ID) {
			t.Errorf("event %d = %+v, want %s at %v with an ID after the previous", i, e, wantKinds[i], now)
		}
	}
	if string(got[1].Data) != `{}` {
		t.Errorf("event data defaulted to %s, want {}", got[1].Data)
	}
	var stored []*casedesk.Event
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		stored, err = tx.ListEvents(ctx(), f.tenant.ID, b.ID)
		return err
	})
	stored = stored[1:] // after the created event
	if len(stored) != 2 || stored[0].ID != got[0].ID || stored[1].ID != got[2].ID || stored[1].Actor != agent ||
		string(stored[1].Data) != `{"p": "high"}` {
		t.Errorf("stored events %+v", stored)
	}
	before := count(t, "SELECT count(*) FROM events WHERE tenant_id = $1", f.tenant.ID)
	ok := casedesk.Event{TenantID: f.tenant.ID, CaseID: a.ID, Kind: "note"}
	tests := []struct {
		name      string
		in        []casedesk.Event
		code, msg string
	}{
		{"no kind", []casedesk.Event{ok, {TenantID: f.tenant.ID, CaseID: a.ID}}, casedesk.EINVALID, "event 1: event kind is required"},
		{"bad data", []casedesk.Event{ok, ok, {TenantID: f.tenant.ID, CaseID: a.ID, Kind: "x", Data: []byte(`{`)}}, casedesk.EINVALID, "event 2: event data"},
		{"two tenants", []casedesk.Event{ok, {TenantID: other.tenant.ID, CaseID: a.ID, Kind: "x"}}, casedesk.EINVALID, "one tenant"},
		{"another tenant's case", []casedesk.Event{ok, {TenantID: f.tenant.ID, CaseID: other.newCase(t, "x").ID, Kind: "x"}}, casedesk.EINVALID, "events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := failUpdate(t, f.db, func(tx casedesk.Tx) error {
				_, err := tx.AddEvents(ctx(), tt.in)
				return err
			})
			wantError(t, err, tt.code, tt.msg)
		})
	}
	if n := count(t, "SELECT count(*) FROM events WHERE tenant_id = $1", f.tenant.ID); n != before {
		t.Errorf("%d events after refused batches, want %d", n, before)
	}
}

func TestEnqueueOutboxItems(t *testing.T) {
	now := time.Date(2026, 4, 5, 12, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	c := f.newCase(t, "a")
	later := now.Add(time.Hour)
	var got []*casedesk.OutboxItem
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.EnqueueOutboxItems(ctx(), []casedesk.NewOutboxItem{
			{TenantID: f.tenant.ID, CaseID: c.ID, Kind: casedesk.OutboxAck, To: " cara@customer.example ", MessageID: "<m1@acme.example>"},
			{TenantID: f.tenant.ID, Kind: casedesk.OutboxRelay, To: "Dan@Customer.example", MessageID: "m2@acme.example",
				Payload: []byte(`{"case":1}`), NotBefore: later},
			{TenantID: f.tenant.ID, CaseID: c.ID, Kind: casedesk.OutboxReminder, To: "eve@customer.example", MessageID: "<m3@acme.example>",
				NotBefore: now.Add(-time.Hour)},
		})
		return err
	})
	want := []struct {
		caseID    int64
		kind      casedesk.OutboxKind
		to, msgID string
		payload   string
		due       time.Time
	}{
		{c.ID, casedesk.OutboxAck, "cara@customer.example", "m1@acme.example", `{}`, now},
		{0, casedesk.OutboxRelay, "Dan@Customer.example", "m2@acme.example", `{"case": 1}`, later},
		{c.ID, casedesk.OutboxReminder, "eve@customer.example", "m3@acme.example", `{}`, now},
	}
	for i, w := range want {
		o := got[i]
		if o.CaseID != w.caseID || o.Kind != w.kind || o.To != w.to || o.MessageID != w.msgID || string(o.Payload) != w.payload ||
			!o.NextAttemptAt.Equal(w.due) || o.State != casedesk.OutboxPending || !o.CreatedAt.Equal(now) || (i > 0 && o.ID <= got[i-1].ID) {
			t.Errorf("item %d = %+v, want %+v", i, o, w)
		}
	}
	before := count(t, "SELECT count(*) FROM outbox WHERE tenant_id = $1", f.tenant.ID)
	item := func(msgID string) casedesk.NewOutboxItem {
		return casedesk.NewOutboxItem{TenantID: f.tenant.ID, Kind: casedesk.OutboxAck, To: "cara@customer.example", MessageID: msgID}
	}
	bad := item("<x@y>")
	bad.To = "nobody"
	tests := []struct {
		name      string
		in        []casedesk.NewOutboxItem
		code, msg string
	}{
		{"bad recipient", []casedesk.NewOutboxItem{item("<a1@x>"), item("<a2@x>"), bad}, casedesk.EINVALID, `outbox item 2: recipient "nobody"`},
		{"no kind", []casedesk.NewOutboxItem{item("<b1@x>"), {TenantID: f.tenant.ID, To: "a@b.example", MessageID: "<b2@x>"}}, casedesk.EINVALID, "outbox item 1: tenant and kind"},
		{"two tenants", []casedesk.NewOutboxItem{item("<c1@x>"), {TenantID: other.tenant.ID, Kind: casedesk.OutboxAck, To: "a@b.example", MessageID: "<c2@x>"}},
			casedesk.EINVALID, "one tenant"},
		{"duplicate Message-ID", []casedesk.NewOutboxItem{item("<d1@x>"), item("<m1@acme.example>")}, casedesk.ECONFLICT, "outbox"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := failUpdate(t, f.db, func(tx casedesk.Tx) error {
				_, err := tx.EnqueueOutboxItems(ctx(), tt.in)
				return err
			})
			wantError(t, err, tt.code, tt.msg)
		})
	}
	if n := count(t, "SELECT count(*) FROM outbox WHERE tenant_id = $1", f.tenant.ID); n != before {
		t.Errorf("%d outbox items after refused batches, want %d", n, before)
	}
}

func TestCountOutboxTo(t *testing.T) {
	now := time.Date(2026, 4, 6, 12, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t, casestoreClock(&now))
	enqueue := func(f *fixture, kind casedesk.OutboxKind, to string) {
		update(t, f.db, func(tx casedesk.Tx) error {
			_, err := tx.EnqueueOutbox(ctx(), casedesk.NewOutboxItem{TenantID: f.tenant.ID, Kind: kind, To: to, MessageID: "<" + randHex(8) + "@x>"})
			return err
		})
	}
	enqueue(f, casedesk.OutboxAck, "cara@customer.example") // before since
	now = now.Add(time.Hour)
	since := now
	enqueue(f, casedesk.OutboxAck, "Cara@Customer.example")
	enqueue(f, casedesk.OutboxFollowUpAck, "cara@customer.example")
	enqueue(f, casedesk.OutboxRelay, "cara@customer.example") // another kind
	enqueue(f, casedesk.OutboxAck, "dan@customer.example")
	enqueue(f, casedesk.OutboxAck, "eve@customer.example") // not asked for
	enqueue(other, casedesk.OutboxAck, "dan@customer.example")
	kinds := []casedesk.OutboxKind{casedesk.OutboxAck, casedesk.OutboxFollowUpAck}
	inUpdateAndView(t, f.db, func(t *testing.T, tx casedesk.Tx) {
		got, err := tx.CountOutboxTo(ctx(), f.tenant.ID, kinds,
			[]string{"CARA@customer.example", " dan@customer.example", "nobody@customer.example"}, since)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"cara@customer.example": 2, "dan@customer.example": 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("counts %v, want %v", got, want)
		}
		got, err = tx.CountOutboxTo(ctx(), f.tenant.ID, kinds, []string{"cara@customer.example"}, since.Add(-time.Hour))
		if err != nil || got["cara@customer.example"] != 3 {
			t.Errorf("counts since earlier %v, %v, want 3", got, err)
		}
		got, err = tx.CountOutboxTo(ctx(), f.tenant.ID, nil, []string{"cara@customer.example"}, since)
		if err != nil || len(got) != 0 {
			t.Errorf("no kinds: %v, %v", got, err)
		}
	})
}
