package casestore_test

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func TestFindUsersByIDs(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	user := func(fix *fixture, email, role string) *casedesk.User {
		var u *casedesk.User
		update(t, fix.db, func(tx casedesk.Tx) (err error) {
			u, err = tx.CreateUser(ctx(), casedesk.NewUser{TenantID: fix.tenant.ID, Email: email, Name: "x", RoleName: role})
			return err
		})
		return u
	}
	ann := user(f, "ann@acme.example", casedesk.RoleSupport)
	bill := user(f, "bill@acme.example", casedesk.RoleFinance)
	user(f, "carl@acme.example", casedesk.RoleSupport) // not asked for
	dora := user(other, "dora@acme.example", casedesk.RoleSupport)
	inUpdateAndView(t, f.db, func(t *testing.T, tx casedesk.Tx) {
		got, err := tx.FindUsersByIDs(ctx(), f.tenant.ID, []int64{bill.ID, ann.ID, dora.ID, 99999999, ann.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Errorf("got %d users, want ann and bill: %v", len(got), got)
		}
		for _, email := range []string{"ann@acme.example", "bill@acme.example"} {
			want, err := tx.FindUserByEmail(ctx(), f.tenant.ID, email)
			if err != nil {
				t.Fatal(err)
			}
			if u := got[want.ID]; !reflect.DeepEqual(u, want) {
				t.Errorf("user %d:\n got %+v\nwant %+v", want.ID, u, want)
			}
		}
		if u := got[bill.ID]; u == nil || u.Role == nil || u.Role.Name != casedesk.RoleFinance {
			t.Errorf("bill's role = %+v, want %s", u, casedesk.RoleFinance)
		}
		empty, err := tx.FindUsersByIDs(ctx(), f.tenant.ID, nil)
		if err != nil || len(empty) != 0 {
			t.Errorf("no ids: %v, %v", empty, err)
		}
	})
}

func TestFindMessagesByIDs(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	c, oc := f.newCase(t, "one"), other.newCase(t, "theirs")
	withFiles := f.inbound(c.ID, "files@customer.example")
	withFiles.Attachments = []casedesk.NewAttachment{
		{Name: "invoice.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7 invoice")},
		{Name: "logo.png", ContentType: "image/png", ContentID: "logo@x", Inline: true, Content: []byte{0x89, 'P', 'N', 'G'}},
	}
	var mine []*casedesk.Message
	var theirs *casedesk.Message
	update(t, f.db, func(tx casedesk.Tx) error {
		for _, n := range []casedesk.NewMessage{f.inbound(c.ID, "plain@customer.example"), withFiles, f.inbound(c.ID, "unasked@customer.example")} {
			m, _, err := tx.AppendMessage(ctx(), n)
			if err != nil {
				return err
			}
			mine = append(mine, m)
		}
		return nil
	})
	update(t, other.db, func(tx casedesk.Tx) (err error) {
		theirs, _, err = tx.AppendMessage(ctx(), other.inbound(oc.ID, "theirs@customer.example"))
		return err
	})
	inUpdateAndView(t, f.db, func(t *testing.T, tx casedesk.Tx) {
		got, err := tx.FindMessagesByIDs(ctx(), f.tenant.ID, []int64{mine[1].ID, theirs.ID, 99999999, mine[0].ID, mine[1].ID})
		if err != nil {
			t.Fatal(err)
		}
		all, err := tx.ListMessages(ctx(), f.tenant.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b *casedesk.Message) int { return cmp.Compare(a.ID, b.ID) })
		if want := all[:2]; !reflect.DeepEqual(got, want) {
			t.Errorf("messages:\n got %+v\nwant %+v", got, want)
		}
		if len(got) == 2 {
			if a := got[1].Attachments; len(a) != 2 || a[0].Name != "invoice.pdf" || a[1].ContentID != "logo@x" || !a[1].Inline || a[1].Size != 4 {
				t.Errorf("attachments = %+v", a)
			}
		}
		if got, err := tx.FindMessagesByIDs(ctx(), f.tenant.ID, nil); got != nil || err != nil {
			t.Errorf("no ids: %v, %v", got, err)
		}
	})
}

// mail builds a message of any direction and author on a case, with raw
// bytes so inbound mail is valid; msgID "" stores it without a Message-ID.
func (f *fixture) mail(caseID int64, msgID string, dir casedesk.Direction, author casedesk.AuthorKind) casedesk.NewMessage {
	n := f.inbound(caseID, msgID)
	n.Direction, n.AuthorKind = dir, author
	n.Raw = append(n.Raw, msgID+randHex(4)...) // distinct bytes: mail without a Message-ID is deduplicated by them
	return n
}

func TestThreadMessageIDs(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	mixed, long, notes := f.newCase(t, "mixed"), f.newCase(t, "long"), f.newCase(t, "notes only")
	theirs := other.newCase(t, "theirs")
	in, out, note := casedesk.Inbound, casedesk.Outbound, casedesk.Note
	customer, agent, system := casedesk.AuthorCustomer, casedesk.AuthorAgent, casedesk.AuthorSystem
	msgs := []casedesk.NewMessage{
		f.mail(mixed.ID, "m1@customer", in, customer),
		f.mail(mixed.ID, "m2@agent-inbound", in, agent),
		f.mail(mixed.ID, "m3@note", note, agent),
		f.mail(mixed.ID, "m4@acme", out, agent),
		f.mail(mixed.ID, "m5@bounce", in, system),
		f.mail(mixed.ID, "", in, customer), // no Message-ID to refer to
		f.mail(mixed.ID, "m6@customer", in, customer),
		f.mail(notes.ID, "n1@note", note, agent),
		f.mail(notes.ID, "n2@bounce", in, system),
	}
	var longIDs []string
	for i := range 30 {
		id, dir, author := fmt.Sprintf("l%02d@customer", i), in, customer
		if i%2 == 1 {
			id, dir, author = fmt.Sprintf("l%02d@acme", i), out, agent
		}
		longIDs = append(longIDs, id)
		msgs = append(msgs, f.mail(long.ID, id, dir, author))
		if i%3 == 0 { // hidden mail among the last ones must not count
			msgs = append(msgs, f.mail(long.ID, fmt.Sprintf("l%02d@note", i), note, agent),
				f.mail(long.ID, fmt.Sprintf("l%02d@agent-inbound", i), in, agent))
		}
	}
	msgs = append(msgs, f.mail(long.ID, "last@note", note, agent))
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.AppendMessages(ctx(), msgs)
		return err
	})
	update(t, other.db, func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx(), other.mail(theirs.ID, "t1@customer", in, customer))
		return err
	})
	ids := []int64{mixed.ID, long.ID, notes.ID, theirs.ID, 99999999, mixed.ID}
	tests := []struct {
		name  string
		limit int
		want  map[int64][]string
	}{
		{"limit 5", 5, map[int64][]string{
			mixed.ID: {"m1@customer", "m4@acme", "m6@customer"},
			long.ID:  {"l00@customer", "l26@customer", "l27@acme", "l28@customer", "l29@acme"},
		}},
		{"limit 1", 1, map[int64][]string{mixed.ID: {"m1@customer"}, long.ID: {"l00@customer"}}},
		{"limit 2", 2, map[int64][]string{mixed.ID: {"m1@customer", "m6@customer"}, long.ID: {"l00@customer", "l29@acme"}}},
		{"default 20", 0, map[int64][]string{
			mixed.ID: {"m1@customer", "m4@acme", "m6@customer"},
			long.ID:  append([]string{"l00@customer"}, longIDs[11:]...),
		}},
		{"enough for all", 100, map[int64][]string{mixed.ID: {"m1@customer", "m4@acme", "m6@customer"}, long.ID: longIDs}},
	}
	inUpdateAndView(t, f.db, func(t *testing.T, tx casedesk.Tx) {
		for _, tt := range tests {
			got, err := tx.ThreadMessageIDs(ctx(), f.tenant.ID, ids, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s:\n got %v\nwant %v", tt.name, got, tt.want)
			}
		}
		got, err := tx.ThreadMessageIDs(ctx(), f.tenant.ID, nil, 5)
		if err != nil || len(got) != 0 {
			t.Errorf("no cases: %v, %v", got, err)
		}
	})
}

// claimAll claims every due item and checks that those of the wanted
// items' tenants are exactly want. Claims take the due items of every
// tenant, so the tests run on clocks at which little else is due.
func claimAll(t *testing.T, db casedesk.Store, want ...*casedesk.OutboxItem) {
	t.Helper()
	claimAllFor(t, db, "", want...)
}

// claimAllFor is claimAll with owner as the claims' owner.
func claimAllFor(t *testing.T, db casedesk.Store, owner string, want ...*casedesk.OutboxItem) {
	t.Helper()
	var got []*casedesk.OutboxItem
	update(t, db, func(tx casedesk.Tx) (err error) {
		got, err = tx.ClaimOutboxFor(ctx(), owner, 1000)
		return err
	})
	tenants := map[int64]bool{}
	var gotIDs, wantIDs []int64
	for _, it := range want {
		tenants[it.TenantID] = true
		wantIDs = append(wantIDs, it.ID)
	}
	for _, it := range got {
		if tenants[it.TenantID] {
			gotIDs = append(gotIDs, it.ID)
		}
	}
	if !slices.Equal(sortedIDs(gotIDs...), sortedIDs(wantIDs...)) {
		t.Fatalf("claimed %v, want %v", gotIDs, wantIDs)
	}
}

// findOutbox reads items back, keyed by ID.
func findOutbox(t *testing.T, db casedesk.Store, items ...*casedesk.OutboxItem) map[int64]*casedesk.OutboxItem {
	t.Helper()
	out := map[int64]*casedesk.OutboxItem{}
	update(t, db, func(tx casedesk.Tx) error {
		for _, it := range items {
			o, err := tx.FindOutboxItem(ctx(), it.TenantID, it.ID)
			if err != nil {
				return err
			}
			out[o.ID] = o
		}
		return nil
	})
	return out
}

func TestFinishOutboxItems(t *testing.T) {
	now := time.Date(2001, 3, 4, 10, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t, casestoreClock(&now))
	mine, theirs := f.enqueue(t, 3, casedesk.OutboxAck), other.enqueue(t, 2, casedesk.OutboxRelay)
	claimed := now
	claimAll(t, f.db, append(slices.Clone(mine), theirs...)...)
	now = now.Add(time.Minute)
	long := strings.Repeat("é", 3000) // 6000 bytes
	retryMine, retryTheirs := now.Add(10*time.Minute), now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.FinishOutboxItems(ctx(), []casedesk.OutboxResult{
			{TenantID: f.tenant.ID, ID: mine[0].ID, State: casedesk.OutboxSent, Error: "ignored"},
			{TenantID: other.tenant.ID, ID: theirs[0].ID, State: casedesk.OutboxPending, NextAttemptAt: retryTheirs, Error: "451 later"},
			{TenantID: f.tenant.ID, ID: mine[1].ID, State: casedesk.OutboxPending, NextAttemptAt: retryMine, Error: "421 busy"},
			{TenantID: f.tenant.ID, ID: mine[2].ID, State: casedesk.OutboxFailed, Error: long},
			{TenantID: other.tenant.ID, ID: theirs[1].ID, State: casedesk.OutboxSent},
		})
	})
	got := findOutbox(t, f.db, append(slices.Clone(mine), theirs...)...)
	want := []struct {
		item          *casedesk.OutboxItem
		state         casedesk.OutboxState
		sentAt, nextA time.Time
		lastError     string
	}{
		{mine[0], casedesk.OutboxSent, now, claimed, ""},
		{mine[1], casedesk.OutboxPending, time.Time{}, retryMine, "421 busy"},
		{mine[2], casedesk.OutboxFailed, time.Time{}, claimed, long[:4000]},
		{theirs[0], casedesk.OutboxPending, time.Time{}, retryTheirs, "451 later"},
		{theirs[1], casedesk.OutboxSent, now, claimed, ""},
	}
	for _, w := range want {
		o := got[w.item.ID]
		if o.State != w.state || !o.SentAt.Equal(w.sentAt) || !o.NextAttemptAt.Equal(w.nextA) || o.LastError != w.lastError ||
			o.Attempts != 1 || !o.ClaimedAt.Equal(claimed) {
			t.Errorf("item %d: state %s, sent %v, next %v, attempts %d, error %.20q (%d bytes); want %s, %v, %v, %.20q (%d bytes)",
				o.ID, o.State, o.SentAt, o.NextAttemptAt, o.Attempts, o.LastError, len(o.LastError),
				w.state, w.sentAt, w.nextA, w.lastError, len(w.lastError))
		}
	}
	update(t, f.db, func(tx casedesk.Tx) error { return tx.FinishOutboxItems(ctx(), nil) })

	// The retried items come back when due; finish them for good, so
	// that no item of this test is left for other tests' claims.
	now = retryTheirs
	claimAll(t, f.db, mine[1], theirs[0])
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.FinishOutboxItems(ctx(), []casedesk.OutboxResult{
			{TenantID: f.tenant.ID, ID: mine[1].ID, State: casedesk.OutboxFailed, Error: "550 no such user"},
			{TenantID: other.tenant.ID, ID: theirs[0].ID, State: casedesk.OutboxSent},
		})
	})
	got = findOutbox(t, f.db, mine[1], theirs[0])
	if o := got[mine[1].ID]; o.State != casedesk.OutboxFailed || o.Attempts != 2 || o.LastError != "550 no such user" {
		t.Errorf("retried item = %+v, want failed on attempt 2", o)
	}
	if o := got[theirs[0].ID]; o.State != casedesk.OutboxSent || o.LastError != "" || !o.SentAt.Equal(now) {
		t.Errorf("retried item = %+v, want sent at %v with its error cleared", o, now)
	}
}

func TestFinishOutboxItemsRefused(t *testing.T) {
	now := time.Date(2000, 5, 6, 10, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t, casestoreClock(&now))
	items, theirs := f.enqueue(t, 3, casedesk.OutboxAck), other.enqueue(t, 1, casedesk.OutboxAck)[0]
	claimAll(t, f.db, append(slices.Clone(items), theirs)...)
	x, y, z := items[0], items[1], items[2]
	update(t, f.db, func(tx casedesk.Tx) error { return tx.MarkOutboxSent(ctx(), f.tenant.ID, y.ID) })
	now = now.Add(time.Minute)
	result := func(it *casedesk.OutboxItem, state casedesk.OutboxState) casedesk.OutboxResult {
		r := casedesk.OutboxResult{TenantID: it.TenantID, ID: it.ID, State: state, Error: "boom"}
		if state == casedesk.OutboxPending {
			r.NextAttemptAt = now.Add(time.Hour)
		}
		return r
	}
	sent, pending, failed := casedesk.OutboxSent, casedesk.OutboxPending, casedesk.OutboxFailed
	noTime := result(z, pending)
	noTime.NextAttemptAt = time.Time{}
	tests := []struct {
		name      string
		in        []casedesk.OutboxResult
		code, msg string
	}{
		{"not sending", []casedesk.OutboxResult{result(x, sent), result(theirs, failed), result(y, failed), result(z, pending)},
			casedesk.ECONFLICT, fmt.Sprintf("outbox item %d is sent, not sending", y.ID)},
		{"unknown", []casedesk.OutboxResult{result(x, sent), {TenantID: f.tenant.ID, ID: 99999999, State: sent}},
			casedesk.ENOTFOUND, "outbox item 99999999 not found"},
		{"another tenant's", []casedesk.OutboxResult{result(x, sent), {TenantID: f.tenant.ID, ID: theirs.ID, State: sent}},
			casedesk.ENOTFOUND, fmt.Sprintf("outbox item %d not found", theirs.ID)},
		{"state sending", []casedesk.OutboxResult{result(x, sent), result(z, casedesk.OutboxSending)}, casedesk.EINVALID, `outbox result 1: cannot finish an item as "sending"`},
		{"no state", []casedesk.OutboxResult{result(x, "")}, casedesk.EINVALID, `cannot finish an item as ""`},
		{"retry without time", []casedesk.OutboxResult{result(x, sent), noTime}, casedesk.EINVALID, "outbox result 1: a retry needs its next attempt time"},
		{"no tenant", []casedesk.OutboxResult{{ID: x.ID, State: sent}}, casedesk.EINVALID, "tenant and item are required"},
		{"no id", []casedesk.OutboxResult{{TenantID: f.tenant.ID, State: sent}}, casedesk.EINVALID, "tenant and item are required"},
		{"twice", []casedesk.OutboxResult{result(x, sent), result(z, failed), result(x, sent)}, casedesk.EINVALID,
			fmt.Sprintf("outbox result 2: outbox item %d of tenant %d is named twice", x.ID, f.tenant.ID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := failUpdate(t, f.db, func(tx casedesk.Tx) error { return tx.FinishOutboxItems(ctx(), tt.in) })
			wantError(t, err, tt.code, tt.msg)
			// The failed transaction rolled back whatever the statement wrote.
			for _, o := range findOutbox(t, f.db, x, z, theirs) {
				if o.State != casedesk.OutboxSending || o.LastError != "" || !o.SentAt.IsZero() {
					t.Errorf("item %d changed by a refused call: %+v", o.ID, o)
				}
			}
		})
	}
	// The items refused above can still be finished.
	update(t, f.db, func(tx casedesk.Tx) error {
		return tx.FinishOutboxItems(ctx(), []casedesk.OutboxResult{result(x, sent), result(z, failed), result(theirs, sent)})
	})
	got := findOutbox(t, f.db, x, y, z, theirs)
	if got[x.ID].State != sent || got[y.ID].State != sent || got[z.ID].State != failed || got[theirs.ID].State != sent {
		t.Errorf("states after finishing: x %s, y %s, z %s, theirs %s", got[x.ID].State, got[y.ID].State, got[z.ID].State, got[theirs.ID].State)
	}
	err := f.db.View(ctx(), func(tx casedesk.Tx) error {
		return tx.FinishOutboxItems(ctx(), []casedesk.OutboxResult{result(y, sent)})
	})
	if err == nil {
		t.Error("FinishOutboxItems wrote in a View")
	}
}

// TestRequeueStuckOutbox: items claimed before the cut-off and never
// finished become due again; younger claims are left to their worker.
func TestRequeueStuckOutbox(t *testing.T) {
	// Older than every other test's claims, so that no other test's item
	// is requeued, and each item here is finished before the end.
	now := time.Date(1999, 6, 1, 10, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	stuck := f.enqueue(t, 2, casedesk.OutboxAck)
	claimAll(t, f.db, stuck...)
	now = now.Add(10 * time.Minute)
	young := f.enqueue(t, 1, casedesk.OutboxAck)
	claimAll(t, f.db, young...)
	now = now.Add(10 * time.Minute)

	var n int
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		n, err = tx.RequeueStuckOutbox(ctx(), now.Add(-15*time.Minute))
		return err
	})
	if n != 2 {
		t.Errorf("requeued %d items, want 2", n)
	}
	got := findOutbox(t, f.db, append(slices.Clone(stuck), young...)...)
	for _, it := range stuck {
		o := got[it.ID]
		if o.State != casedesk.OutboxPending || !o.NextAttemptAt.Equal(now) || o.Attempts != 1 ||
			!strings.Contains(o.LastError, "1999-06-01 10:00:00 UTC and never finished") {
			t.Errorf("stuck item = %+v, want pending, due now", o)
		}
	}
	if o := got[young[0].ID]; o.State != casedesk.OutboxSending {
		t.Errorf("young claim = %+v, want still sending", o)
	}
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		n, err = tx.RequeueStuckOutbox(ctx(), now.Add(-15*time.Minute))
		return err
	})
	if n != 0 {
		t.Errorf("second sweep requeued %d items", n)
	}

	// Claimed again, as a worker would, and finished.
	claimAll(t, f.db, stuck...)
	update(t, f.db, func(tx casedesk.Tx) error {
		var rs []casedesk.OutboxResult
		for _, it := range append(slices.Clone(stuck), young...) {
			rs = append(rs, casedesk.OutboxResult{TenantID: it.TenantID, ID: it.ID, State: casedesk.OutboxSent})
		}
		return tx.FinishOutboxItems(ctx(), rs)
	})
	if o := findOutbox(t, f.db, stuck[0])[stuck[0].ID]; o.Attempts != 2 || o.State != casedesk.OutboxSent {
		t.Errorf("requeued item = %+v, want sent on attempt 2", o)
	}
}
