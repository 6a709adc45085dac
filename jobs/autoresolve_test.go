package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// wantSummary fails the test unless a run's summary is want.
func wantSummary(t *testing.T, what string, got, want Summary) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: summary %v, want %v", what, got, want)
	}
}

// kinds lists the kinds of mail queued for a case.
func kinds(ms []mail, caseID int64) []casedesk.OutboxKind {
	var out []casedesk.OutboxKind
	for _, m := range ms {
		if m.CaseID == caseID {
			out = append(out, m.Kind)
		}
	}
	return out
}

func TestAutoResolveLifecycle(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	waiting := f.pending(t0, "Printer on fire")
	var nobody *casedesk.Contact
	e.update(func(tx casedesk.Tx) (err error) {
		nobody, err = tx.UpsertContact(context.Background(), f.tenant.ID, casedesk.Address{Email: "unknown@sender.invalid"})
		return err
	})
	undeliverable := f.newCase(t0, "From nowhere", nobody.ID, casedesk.StatusNew)
	f.agentReply(t0, undeliverable.ID, casedesk.StatusPending)
	open := f.newCase(t0, "Still open", f.requester.ID, casedesk.StatusOpen)
	fresh := f.newCase(t0, "Brand new", f.requester.ID, casedesk.StatusNew)
	solved := f.newCase(t0, "Solved by hand", f.requester.ID, casedesk.StatusNew)
	f.setStatus(t0, solved.ID, casedesk.StatusSolved)
	later := f.pending(t0.Add(2*day), "Answered later")
	job := e.autoResolve(0)

	// +4 days: the case waiting since t0 gets its reminder; the
	// undeliverable one is marked without mail; the later one waits on.
	wantSummary(t, "+4d", e.run(job, t0.Add(4*day)), summary(1, 0, 0))
	mails := f.outbox()
	if len(mails) != 1 || mails[0].CaseID != waiting.ID || mails[0].Kind != casedesk.OutboxReminder ||
		mails[0].To != "cara@customer.example" {
		t.Fatalf("outbox after +4d = %+v, want one reminder to the requester of case %d", mails, waiting.ID)
	}
	tokens := threading.NewTokens(f.tenant.ID, f.tenant.TokenSecret)
	if n, ok := tokens.CaseFromMessageID(mails[0].MessageID); !ok || n != waiting.Number {
		t.Errorf("reminder Message-ID %q does not carry case #%d's token", mails[0].MessageID, waiting.Number)
	}
	wantPayload := map[string]any{"case_number": float64(waiting.Number), "subject": "Printer on fire", "solve_in_days": float64(3)}
	if !reflect.DeepEqual(mails[0].Payload, wantPayload) {
		t.Errorf("reminder payload = %v, want %v", mails[0].Payload, wantPayload)
	}
	if es := f.events(waiting.ID, casedesk.EventReminder); len(es) != 1 || es[0].Actor != casedesk.SystemActor {
		t.Errorf("reminder events = %+v, want one by the system", es)
	}
	if es := f.events(undeliverable.ID, casedesk.EventReminder); len(es) != 0 {
		t.Errorf("undeliverable case has reminder events %+v", es)
	}
	if c := f.find(waiting.ID); c.Status != casedesk.StatusPending || !c.RemindedFor.Equal(t0) {
		t.Errorf("reminded case: status %s, reminded for %v; want pending, %v", c.Status, c.RemindedFor, t0)
	}

	// Again, at the same instant and a little later: nothing twice.
	wantSummary(t, "+4d again", e.run(job, t0.Add(4*day)), summary(0, 0, 0))
	wantSummary(t, "+5d", e.run(job, t0.Add(5*day)), summary(1, 0, 0)) // the later case: 3 days
	if got := kinds(f.outbox(), later.ID); !reflect.DeepEqual(got, []casedesk.OutboxKind{casedesk.OutboxReminder}) {
		t.Errorf("mail of the later case at +5d = %v, want a reminder", got)
	}
	wantSummary(t, "+5d again", e.run(job, t0.Add(5*day)), summary(0, 0, 0))

	// +8 days: the cases waiting since t0 are solved; one notice.
	wantSummary(t, "+8d", e.run(job, t0.Add(8*day)), summary(0, 2, 0))
	mails = f.outbox()
	if got := kinds(mails, waiting.ID); !reflect.DeepEqual(got, []casedesk.OutboxKind{casedesk.OutboxReminder, casedesk.OutboxSolved}) {
		t.Errorf("mail of the waiting case = %v, want a reminder then a notice", got)
	}
	if got := kinds(mails, undeliverable.ID); got != nil {
		t.Errorf("mail to an undeliverable address: %v", got)
	}
	notice := mails[len(mails)-1]
	if notice.Payload["reopen_days"] != float64(14) || notice.Payload["case_number"] != float64(waiting.Number) {
		t.Errorf("notice payload = %v", notice.Payload)
	}
	for _, id := range []int64{waiting.ID, undeliverable.ID} {
		c := f.find(id)
		if c.Status != casedesk.StatusSolved || !c.SolvedAt.Equal(t0.Add(8*day)) {
			t.Errorf("case %d after +8d: %s solved at %v", id, c.Status, c.SolvedAt)
		}
		auto := f.events(id, casedesk.EventAutoAction)
		var data map[string]any
		if len(auto) != 1 || json.Unmarshal(auto[0].Data, &data) != nil || data["action"] != "solved" || data["after_days"] != float64(7) {
			t.Errorf("case %d auto_action events = %+v, want one: solved after 7 days", id, auto)
		}
		if es := f.events(id, casedesk.EventStatusChanged); es[len(es)-1].Actor != casedesk.SystemActor {
			t.Errorf("case %d: last status change by %+v, want the system", id, es[len(es)-1].Actor)
		}
	}
	wantSummary(t, "+8d again", e.run(job, t0.Add(8*day)), summary(0, 0, 0))

	// +14 days: the case solved by hand at t0 closes; the later case is solved.
	wantSummary(t, "+14d", e.run(job, t0.Add(14*day)), summary(0, 1, 1))
	if c := f.find(solved.ID); c.Status != casedesk.StatusClosed {
		t.Errorf("case solved at t0: %s after +14d", c.Status)
	}
	// +8+14 days: the cases solved at +8d close.
	wantSummary(t, "+22d", e.run(job, t0.Add(22*day)), summary(0, 0, 2))
	wantSummary(t, "+22d again", e.run(job, t0.Add(22*day)), summary(0, 0, 0))
	wantSummary(t, "+28d", e.run(job, t0.Add(28*day)), summary(0, 0, 1))
	for _, c := range []*casedesk.Case{open, fresh} {
		if got := f.find(c.ID); got.Status != c.Status || len(kinds(f.outbox(), c.ID)) != 0 {
			t.Errorf("case %d (%s) touched: now %s", c.ID, c.Status, got.Status)
		}
	}
	if n := len(f.outbox()); n != 4 {
		t.Errorf("outbox holds %d rows, want 4 (2 reminders, 2 notices)", n)
	}
}

// TestAutoResolveNewWait: every new wait on the customer has a reminder of
// its own: after a new agent message, and after the case was set pending
// again without one.
func TestAutoResolveNewWait(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	c := f.pending(t0, "Printer on fire")
	job := e.autoResolve(0)

	wantSummary(t, "+4d", e.run(job, t0.Add(4*day)), summary(1, 0, 0))
	f.agentReply(t0.Add(5*day), c.ID, casedesk.StatusPending) // still pending, the clock restarts
	wantSummary(t, "+6d", e.run(job, t0.Add(6*day)), summary(0, 0, 0))
	wantSummary(t, "+8.5d", e.run(job, t0.Add(8*day+12*time.Hour)), summary(1, 0, 0))
	wantSummary(t, "+8.5d again", e.run(job, t0.Add(8*day+12*time.Hour)), summary(0, 0, 0))

	// The customer answers (the case opens), the agent sets it pending
	// through the API, without a message.
	f.setStatus(t0.Add(9*day), c.ID, casedesk.StatusOpen)
	f.setStatus(t0.Add(10*day), c.ID, casedesk.StatusPending)
	wantSummary(t, "+12d", e.run(job, t0.Add(12*day)), summary(0, 0, 0))
	wantSummary(t, "+13d", e.run(job, t0.Add(13*day)), summary(1, 0, 0))
	wantSummary(t, "+17d", e.run(job, t0.Add(17*day)), summary(0, 1, 0))
	if got := kinds(f.outbox(), c.ID); len(got) != 4 {
		t.Errorf("mail of the case = %v, want 3 reminders and a notice", got)
	}
	if es := f.events(c.ID, casedesk.EventReminder); len(es) != 3 {
		t.Errorf("%d reminder events, want 3", len(es))
	}
}

// TestAutoResolveTenantSettings: two tenants, one with its own settings,
// in one run.
func TestAutoResolveTenantSettings(t *testing.T) {
	e := newEnv(t)
	quick := e.tenant("quick", casedesk.TenantSettings{ReminderAfter: day, SolveAfter: 2 * day, CloseAfter: 3 * day})
	slow := e.tenant("slow", casedesk.TenantSettings{})
	q := quick.pending(t0, "Quick one")
	s := slow.pending(t0, "Slow one")
	job := e.autoResolve(0)

	wantSummary(t, "+1.5d", e.run(job, t0.Add(36*time.Hour)), summary(1, 0, 0))
	if len(quick.outbox()) != 1 || len(slow.outbox()) != 0 {
		t.Fatalf("+1.5d: quick has %d mails, slow %d; want 1 and 0", len(quick.outbox()), len(slow.outbox()))
	}
	if p := quick.outbox()[0].Payload; p["solve_in_days"] != float64(1) {
		t.Errorf("quick reminder payload %v, want solve_in_days 1", p)
	}
	wantSummary(t, "+2.5d", e.run(job, t0.Add(60*time.Hour)), summary(0, 1, 0))
	wantSummary(t, "+3.5d", e.run(job, t0.Add(84*time.Hour)), summary(1, 0, 0))
	if got := kinds(slow.outbox(), s.ID); !reflect.DeepEqual(got, []casedesk.OutboxKind{casedesk.OutboxReminder}) {
		t.Errorf("slow tenant's mail = %v, want one reminder", got)
	}
	wantSummary(t, "+5.5d", e.run(job, t0.Add(132*time.Hour)), summary(0, 0, 1))
	if c := quick.find(q.ID); c.Status != casedesk.StatusClosed {
		t.Errorf("quick case %s at +5.5d, want closed", c.Status)
	}
	if p := quick.outbox()[1].Payload; p["reopen_days"] != float64(3) {
		t.Errorf("quick notice payload %v, want reopen_days 3", p)
	}
	if c := slow.find(s.ID); c.Status != casedesk.StatusPending {
		t.Errorf("slow case %s at +5.5d, want pending", c.Status)
	}
}

// TestAutoResolveOldCases: cases that have waited for a very long time
// are handled, a pending one solved without a reminder first, across
// several batches.
func TestAutoResolveOldCases(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	long := t0.Add(-400 * day)
	var pending []*casedesk.Case
	for i := range 5 {
		pending = append(pending, f.pending(long.Add(time.Duration(i)*time.Hour), fmt.Sprintf("Old %d", i)))
	}
	solved := f.newCase(long, "Solved long ago", f.requester.ID, casedesk.StatusNew)
	f.setStatus(long, solved.ID, casedesk.StatusSolved)
	job := e.autoResolve(2)

	wantSummary(t, "t0", e.run(job, t0), summary(0, 5, 1))
	mails := f.outbox()
	for _, c := range pending {
		if got := kinds(mails, c.ID); !reflect.DeepEqual(got, []casedesk.OutboxKind{casedesk.OutboxSolved}) {
			t.Errorf("case %d mail = %v, want only the notice", c.ID, got)
		}
	}
	wantSummary(t, "t0 again", e.run(job, t0), summary(0, 0, 0))
}

// TestAutoResolveConcurrentRuns: two runs at once, with no lock between
// them, send nothing twice: each case is locked by one of them.
func TestAutoResolveConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	const n = 120
	e.update(func(tx casedesk.Tx) error {
		ns := make([]casedesk.NewCase, n)
		for i := range ns {
			ns[i] = casedesk.NewCase{TenantID: f.tenant.ID, Subject: fmt.Sprint("case ", i),
				RequesterID: f.requester.ID, Status: casedesk.StatusPending}
		}
		_, err := tx.CreateCases(context.Background(), ns)
		return err
	})
	job := e.autoResolve(10)
	e.clock.Set(t0.Add(4 * day))
	var wg sync.WaitGroup
	sums := make([]Summary, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { sums[i], errs[i] = job.Run(context.Background(), t0.Add(4*day)) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if got := sums[0][KeyReminders] + sums[1][KeyReminders]; got != n {
		t.Errorf("reminders %v + %v, want %d in all", sums[0], sums[1], n)
	}
	seen := map[int64]bool{}
	for _, m := range f.outbox() {
		if seen[m.CaseID] {
			t.Fatalf("case %d reminded twice", m.CaseID)
		}
		seen[m.CaseID] = true
	}
	if len(seen) != n {
		t.Errorf("%d cases reminded, want %d", len(seen), n)
	}
}

// TestAutoResolveStopsBetweenBatches: a run cancelled while it works
// keeps the batches it finished and stops before the next; the next run
// does the rest.
func TestAutoResolveStopsBetweenBatches(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	for i := range 5 {
		f.pending(t0, fmt.Sprint("case ", i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The run logs each batch that did something: cancel at the first.
	log := slog.New(onMessage{"auto-resolved cases", cancel})
	job := AutoResolve(e.db, AutoResolveOptions{Logger: log, BatchSize: 2})
	e.clock.Set(t0.Add(4 * day))
	s, err := job.Run(ctx, t0.Add(4*day))
	if !errors.Is(err, context.Canceled) || s[KeyReminders] != 2 {
		t.Fatalf("cancelled run: %v, %v; want the first batch's 2 reminders and context.Canceled", s, err)
	}
	if n := len(f.outbox()); n != 2 {
		t.Fatalf("outbox after the cancelled run holds %d rows, want 2", n)
	}
	wantSummary(t, "the next run", e.run(e.autoResolve(2), t0.Add(4*day)), summary(3, 0, 0))

	cancelled, stop := context.WithCancel(context.Background())
	stop()
	if _, err := e.autoResolve(2).Run(cancelled, t0.Add(4*day)); !errors.Is(err, context.Canceled) {
		t.Errorf("run with a cancelled context: %v", err)
	}
}

// onMessage is a slog handler that calls fn for each record with msg.
type onMessage struct {
	msg string
	fn  func()
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessage) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h onMessage) WithGroup(string) slog.Handler            { return h }
func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.fn()
	}
	return nil
}
