package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jhillyerd/enmime/v2"

	"github.com/casedesk/casedesk"
)

// waitFor polls cond until it holds, and fails the test after 10 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// markHookStore calls onMark for every item FinishOutboxItems records as
// sent, the first write of the record a worker makes before a message's
// end of data; an error from onMark fails that transaction.
type markHookStore struct {
	casedesk.Store
	onMark func(id int64) error
}

func (s *markHookStore) Update(ctx context.Context, fn func(tx casedesk.Tx) error) error {
	return s.Store.Update(ctx, func(tx casedesk.Tx) error { return fn(&markHookTx{Tx: tx, s: s}) })
}

type markHookTx struct {
	casedesk.Tx
	s *markHookStore
}

func (t *markHookTx) FinishOutboxItems(ctx context.Context, results []casedesk.OutboxResult) error {
	for _, r := range results {
		if r.State != casedesk.OutboxSent {
			continue
		}
		if err := t.s.onMark(r.ID); err != nil {
			return err
		}
	}
	return t.Tx.FinishOutboxItems(ctx, results)
}

// hookedWorker is a worker of e whose store runs onMark.
func (e *workerEnv) hookedWorker(onMark func(id int64) error, opts WorkerOptions) *Worker {
	e.t.Helper()
	sender, err := NewSender(e.smtp.config())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sender.Close() })
	opts.Loop, opts.Logger, opts.NoRecover = testLoop, testLogger(), true
	opts.Jitter = func() float64 { return 0.5 }
	return NewWorker(&markHookStore{Store: e.db, onMark: onMark}, sender, opts)
}

// TestSendCommitBeforeEndOfData: commit runs when the whole message is
// with the server and the server has not taken it; the server takes it
// after commit returns, even if ctx ends meanwhile.
func TestSendCommitBeforeEndOfData(t *testing.T) {
	srv := newTestServer(t, serverOptions{})
	s := newTestSender(t, srv.config())
	for i := range 2 {
		m := testMsg(t, i)
		raw, err := Raw(m)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err = s.SendCommit(ctx, m, func(func()) error {
			calls++
			waitFor(t, "the content at the server", func() bool {
				return srv.dataStarted() == i+1 && srv.contentRead() == int64(len(raw))
			})
			if n := srv.accepted(); n != i {
				t.Errorf("message %d: the server took it before the commit", i)
			}
			cancel() // too late to stop the message
			return nil
		})
		cancel()
		if err != nil || calls != 1 {
			t.Fatalf("message %d: SendCommit = %v after %d commits, want nil after 1", i, err, calls)
		}
		if n := srv.accepted(); n != i+1 {
			t.Fatalf("message %d: the server has %d messages, want %d", i, n, i+1)
		}
		if got := srv.received()[i].Raw; !bytes.Equal(got, raw) {
			t.Errorf("message %d: the server got other bytes than Raw", i)
		}
	}
}

// TestSendCommitFails: a failing commit leaves the server without the end
// of data, so it discards the message; the connection is dropped and the
// next message goes out on a new one.
func TestSendCommitFails(t *testing.T) {
	srv := newTestServer(t, serverOptions{})
	s := newTestSender(t, srv.config())
	gone := errors.New("database gone")
	err := s.SendCommit(t.Context(), testMsg(t, 1), func(func()) error { return gone })
	se := asSendError(t, err)
	if se.Stage != StageCommit || se.Permanent || IsPermanent(err) || !errors.Is(err, gone) {
		t.Errorf("got %+v, want a temporary commit failure wrapping the commit's error", se)
	}
	waitFor(t, "the server to see the data end", func() bool { return srv.dataDone() == 1 })
	if n := srv.accepted(); n != 0 {
		t.Fatalf("the server took %d messages whose commit failed", n)
	}
	if err := s.SendCommit(t.Context(), testMsg(t, 2), func(func()) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if srv.accepted() != 1 || srv.connections() != 2 {
		t.Errorf("accepted %d on %d connections, want 1 on 2", srv.accepted(), srv.connections())
	}
}

// TestSendCommitThenRefused: a refusal at the end of data comes after the
// commit, as the SMTP error it is; the connection stays usable.
func TestSendCommitThenRefused(t *testing.T) {
	srv := newTestServer(t, serverOptions{})
	s := newTestSender(t, srv.config())
	srv.failNext("data", 1, fault{code: 554, enhanced: [3]int{5, 7, 1}, text: "Message looks like spam"})
	committed := false
	err := s.SendCommit(t.Context(), testMsg(t, 1), func(func()) error { committed = true; return nil })
	se := asSendError(t, err)
	if !committed || se.Stage != StageData || se.Code != 554 || !se.Permanent {
		t.Errorf("committed %v, got %+v; want a permanent refusal at the end of data after the commit", committed, se)
	}
	if err := s.SendCommit(t.Context(), testMsg(t, 2), func(func()) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if srv.accepted() != 1 || srv.connections() != 1 {
		t.Errorf("accepted %d on %d connections, want 1 on 1", srv.accepted(), srv.connections())
	}
}

// TestWorkerCommitsBeforeEndOfData: the worker records each item as sent,
// with its message on the case, while the server holds the message
// without its end of data; the server takes it only afterwards.
func TestWorkerCommitsBeforeEndOfData(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	var marks []int64
	w := e.hookedWorker(func(id int64) error {
		waitFor(t, "the content at the server", func() bool { return e.smtp.dataStarted() == 1 && e.smtp.contentRead() > 0 })
		if n := e.smtp.accepted(); n != 0 {
			t.Errorf("the server took the message before it was recorded as sent")
		}
		if msgs := e.messages(c); len(msgs) != 1 {
			t.Errorf("case has %d messages during the record, want only the customer's", len(msgs))
		}
		marks = append(marks, id)
		return nil
	}, WorkerOptions{})
	var outcomes []casedesk.OutboxState
	w.opts.OnOutcome = func(_ casedesk.OutboxKind, s casedesk.OutboxState) { outcomes = append(outcomes, s) }
	stats, err := w.Drain(context.Background())
	if err != nil || stats != (Stats{Claimed: 1, Sent: 1}) {
		t.Fatalf("Drain = %+v, %v", stats, err)
	}
	it := e.outbox()[0]
	if len(marks) != 1 || marks[0] != it.ID || it.State != casedesk.OutboxSent {
		t.Fatalf("marks %v, item %+v; want one record of the item as sent", marks, it)
	}
	if len(outcomes) != 1 || outcomes[0] != casedesk.OutboxSent {
		t.Errorf("OnOutcome saw %v, want sent once", outcomes)
	}
	_, rec := e.captured(0)
	msgs := e.messages(c)
	if len(msgs) != 2 {
		t.Fatalf("case has %d messages, want 2", len(msgs))
	}
	var raw []byte
	e.view(func(tx casedesk.Tx) (err error) {
		raw, err = tx.RawMessage(context.Background(), e.tenant.ID, msgs[1].ID)
		return err
	})
	if !bytes.Equal(raw, rec.Raw) {
		t.Error("the stored bytes differ from the sent ones")
	}
}

// TestWorkerRecordFailsBeforeEndOfData: when the record before the end of
// data fails the server gets nothing; the item is due again after the
// backoff and the batch stops, its other items due again at once.
func TestWorkerRecordFailsBeforeEndOfData(t *testing.T) {
	e := newWorkerEnv(t)
	for i := range 2 {
		m := opening()
		m.ID, m.From, m.Cc = fmt.Sprintf("r%d@customer.example", i), fmt.Sprintf("r%d@customer.example", i), ""
		e.deliver(m.raw())
	}
	w := e.hookedWorker(func(int64) error {
		return casedesk.Errorf(casedesk.EUNAVAILABLE, "database gone")
	}, WorkerOptions{})
	var outcomes []casedesk.OutboxState
	w.opts.OnOutcome = func(_ casedesk.OutboxKind, s casedesk.OutboxState) { outcomes = append(outcomes, s) }
	stats, err := w.Drain(context.Background())
	if err != nil || stats != (Stats{Claimed: 2, Retried: 2}) {
		t.Fatalf("Drain = %+v, %v; want both due again", stats, err)
	}
	waitFor(t, "the server to see the data end", func() bool { return e.smtp.dataDone() == 1 })
	if n := e.smtp.accepted(); n != 0 {
		t.Fatalf("the server took %d messages", n)
	}
	items := e.outbox()
	now := e.clock.Now()
	if it := items[0]; it.State != casedesk.OutboxPending || !it.NextAttemptAt.Equal(now.Add(casedesk.DefaultBackoff.Delay(1, 0.5))) ||
		!strings.Contains(it.LastError, "database gone") {
		t.Errorf("first item = %+v, want pending after the backoff", it)
	}
	if it := items[1]; it.State != casedesk.OutboxPending || !it.NextAttemptAt.Equal(now) {
		t.Errorf("second item = %+v, want pending, due now, not attempted", it)
	}
	if len(outcomes) != 2 || outcomes[0] != casedesk.OutboxPending || outcomes[1] != casedesk.OutboxPending {
		t.Errorf("OnOutcome saw %v, want pending twice", outcomes)
	}
	for _, it := range items {
		if msgs := e.messages(e.caseOf(fmt.Sprintf("r%d@customer.example", it.ID-items[0].ID))); len(msgs) != 1 {
			t.Errorf("case of item %d has %d messages, want no acknowledgement kept", it.ID, len(msgs))
		}
	}
	e.clock.Add(casedesk.DefaultBackoff.Delay(1, 0.5))
	if stats := e.drain(); stats.Sent != 2 {
		t.Fatalf("stats = %+v, want both sent", stats)
	}
	if n := e.smtp.accepted(); n != 2 {
		t.Errorf("the server took %d messages, want 2", n)
	}
}

// TestWorkerRefusedAtEndOfData: a refusal after the record takes the
// record back: a 4xx makes the item pending again and a 5xx fails it with
// a delivery_failed event. The copy kept on the case stays, and a resend
// is not kept twice.
func TestWorkerRefusedAtEndOfData(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		wantState casedesk.OutboxState
	}{
		{"temporary", 451, casedesk.OutboxPending},
		{"permanent", 554, casedesk.OutboxFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWorkerEnv(t)
			e.deliver(opening().raw())
			c := e.caseOf("CAF+orig@mail.gmail.com")
			e.smtp.failNext("data", 1, fault{code: tt.code, text: "content filter says no"})
			var outcomes []casedesk.OutboxState
			e.worker.opts.OnOutcome = func(_ casedesk.OutboxKind, s casedesk.OutboxState) { outcomes = append(outcomes, s) }
			stats := e.drain()
			want := Stats{Claimed: 1, Retried: 1}
			if tt.wantState == casedesk.OutboxFailed {
				want = Stats{Claimed: 1, Failed: 1}
			}
			if stats != want {
				t.Fatalf("stats = %+v, want %+v", stats, want)
			}
			it := e.outbox()[0]
			if it.State != tt.wantState || !it.SentAt.IsZero() || !strings.Contains(it.LastError, fmt.Sprint(tt.code)) ||
				!strings.Contains(it.LastError, "content filter says no") {
				t.Errorf("item = %+v, want %s with the server's answer", it, tt.wantState)
			}
			if len(outcomes) != 1 || outcomes[0] != tt.wantState {
				t.Errorf("OnOutcome saw %v, want %s once", outcomes, tt.wantState)
			}
			if msgs := e.messages(c); len(msgs) != 2 {
				t.Errorf("case has %d messages, want the copy recorded before the refusal to stay", len(msgs))
			}
			events := e.events(c, casedesk.EventDeliveryFail)
			if tt.wantState == casedesk.OutboxFailed {
				if len(events) != 1 || !strings.Contains(string(events[0].Data), "content filter says no") {
					t.Errorf("delivery_failed events = %v", events)
				}
				return
			}
			if len(events) != 0 {
				t.Errorf("a temporary refusal wrote %d delivery_failed events", len(events))
			}
			wantDue := e.clock.Now().Add(casedesk.DefaultBackoff.Delay(1, 0.5))
			if !it.NextAttemptAt.Equal(wantDue) {
				t.Errorf("due at %v, want %v", it.NextAttemptAt, wantDue)
			}
			e.clock.Add(casedesk.DefaultBackoff.Delay(1, 0.5))
			if stats := e.drain(); stats != (Stats{Claimed: 1, Sent: 1}) {
				t.Fatalf("resend: stats = %+v", stats)
			}
			if it := e.outbox()[0]; it.State != casedesk.OutboxSent || it.Attempts != 2 {
				t.Errorf("item = %+v, want sent on attempt 2", it)
			}
			if msgs := e.messages(c); len(msgs) != 2 {
				t.Errorf("case has %d messages after the resend, want the acknowledgement once", len(msgs))
			}
			if e.smtp.accepted() != 1 || len(outcomes) != 2 || outcomes[1] != casedesk.OutboxSent {
				t.Errorf("accepted %d, outcomes %v; want one message, pending then sent", e.smtp.accepted(), outcomes)
			}
		})
	}
}

// TestWorkerSweepRequeuesClaimsOfGoneWorkers: the claims of a worker whose
// lock is free are due again at the next sweep, however young; a live
// worker's claims (its lock held) and a worker without a Locker's sweep
// leave them alone.
func TestWorkerSweepRequeuesClaimsOfGoneWorkers(t *testing.T) {
	e := newWorkerEnv(t)
	e.queueAcks(t, 3)
	ctx := context.Background()
	claim := func(owner string, n int) []*casedesk.OutboxItem {
		var items []*casedesk.OutboxItem
		err := e.db.Update(ctx, func(tx casedesk.Tx) (err error) {
			items, err = tx.ClaimOutboxFor(ctx, owner, n)
			return err
		})
		if err != nil || len(items) != n {
			t.Fatalf("claimed %d items as %s, %v; want %d", len(items), owner, err, n)
		}
		return items
	}
	dead, live := "dead"+strings.Repeat("0", 12), "live"+strings.Repeat("1", 12)
	lease, err := e.db.TryLock(ctx, casedesk.OutboxWorkerLock(live))
	if err != nil || lease == nil {
		t.Fatalf("TryLock = %v, %v", lease, err)
	}
	defer lease.Release()
	deadItems, liveItems := claim(dead, 2), claim(live, 1)

	if n, err := e.worker.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("Sweep without a Locker = %d, %v; want young claims left alone", n, err)
	}
	w := e.hookedWorker(func(int64) error { return nil }, WorkerOptions{Locker: e.db})
	if n, err := w.Sweep(ctx); err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want the dead worker's 2 claims requeued", n, err)
	}
	for _, it := range deadItems {
		got := e.item(it.ID)
		if got.State != casedesk.OutboxPending || !got.NextAttemptAt.Equal(e.clock.Now()) || got.ClaimedBy != "" {
			t.Errorf("dead worker's item = %+v, want pending, due now", got)
		}
	}
	if got := e.item(liveItems[0].ID); got.State != casedesk.OutboxSending || got.ClaimedBy != live {
		t.Errorf("live worker's item = %+v, want still claimed by %s", got, live)
	}
	// The sweep let go of the dead worker's lock.
	if l, err := e.db.TryLock(ctx, casedesk.OutboxWorkerLock(dead)); err != nil || l == nil {
		t.Errorf("dead worker's lock after the sweep: %v, %v; want free", l, err)
	} else {
		l.Release()
	}

	lease.Release() // the live worker stops
	if n, err := w.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want the stopped worker's claim requeued", n, err)
	}
	if stats, err := w.Drain(ctx); err != nil || stats.Sent != 3 {
		t.Fatalf("Drain = %+v, %v; want all 3 sent", stats, err)
	}
	if n := e.smtp.accepted(); n != 3 {
		t.Errorf("the server took %d messages, want 3", n)
	}
}

// TestWorkerRunClaimsUnderItsName: with a Locker, Run holds the lock of a
// random instance name while it runs, its claims carry the name, and the
// lock is free once Run returns.
func TestWorkerRunClaimsUnderItsName(t *testing.T) {
	e := newWorkerEnv(t)
	var owners []string
	var mu sync.Mutex
	w := e.hookedWorker(func(id int64) error {
		it := e.item(id)
		mu.Lock()
		owners = append(owners, it.ClaimedBy)
		mu.Unlock()
		return nil
	}, WorkerOptions{Locker: e.db, PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor(t, "the worker's name", func() bool { return w.Owner() != "" })
	owner := w.Owner()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(owner) {
		t.Errorf("instance name %q, want 16 hex digits", owner)
	}
	if l, err := e.db.TryLock(context.Background(), casedesk.OutboxWorkerLock(owner)); err != nil || l != nil {
		t.Errorf("TryLock on the running worker's lock = %v, %v; want it held", l, err)
	}
	e.deliver(opening().raw())
	w.Wake()
	waitFor(t, "the acknowledgement", func() bool { return e.smtp.accepted() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(owners) != 1 || owners[0] != owner {
		t.Errorf("claims carried %q, want %q", owners, owner)
	}
	if it := e.outbox()[0]; it.State != casedesk.OutboxSent || it.ClaimedBy != "" {
		t.Errorf("item = %+v, want sent, no longer claimed", it)
	}
	l, err := e.db.TryLock(context.Background(), casedesk.OutboxWorkerLock(owner))
	if err != nil || l == nil {
		t.Fatalf("TryLock after Run = %v, %v; want the lock free", l, err)
	}
	l.Release()
}

// recordingLocker hands out the locks of a Locker and remembers them, so
// that a test can end them as a dying process does.
type recordingLocker struct {
	casedesk.Locker
	mu     sync.Mutex
	leases []casedesk.Lease
}

func (l *recordingLocker) TryLock(ctx context.Context, name string) (casedesk.Lease, error) {
	lease, err := l.Locker.TryLock(ctx, name)
	if lease != nil {
		l.mu.Lock()
		l.leases = append(l.leases, lease)
		l.mu.Unlock()
	}
	return lease, err
}

func (l *recordingLocker) releaseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lease := range l.leases {
		lease.Release()
	}
}

// TestWorkerKilledMidBatch: a worker is cut off in the middle of a batch,
// while it records a message whose content is at the server without its
// end of data, and its process dies: its connections, and with its
// database session its lock, go away. A worker started afterwards hands
// the dead worker's claims out at its first sweep, at once, and every
// message reaches the server exactly once.
func TestWorkerKilledMidBatch(t *testing.T) {
	e := newWorkerEnv(t)
	const n, killAt = 40, 13
	e.queueAcks(t, n)

	frozen, thaw := make(chan struct{}), make(chan struct{})
	var marks atomic.Int32
	locker := &recordingLocker{Locker: e.db}
	a := e.hookedWorker(func(int64) error {
		if marks.Add(1) == killAt {
			close(frozen)
			<-thaw
			return errors.New("process gone")
		}
		return nil
	}, WorkerOptions{Locker: locker, BatchSize: n, PollInterval: time.Hour})
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	select {
	case <-frozen:
	case <-time.After(30 * time.Second):
		t.Fatal("worker A never reached the message it dies in")
	}
	waitFor(t, "the content of the last message at the server", func() bool {
		return e.smtp.dataStarted() == killAt && e.smtp.contentRead() > 0
	})
	owner := a.Owner()
	claimedByA := 0
	for _, it := range e.outbox() {
		if it.State == casedesk.OutboxSending && it.ClaimedBy == owner {
			claimedByA++
		}
	}
	if claimedByA != n-killAt+1 || e.smtp.accepted() != killAt-1 {
		t.Fatalf("%d items claimed by A, %d at the server; want %d and %d", claimedByA, e.smtp.accepted(), n-killAt+1, killAt-1)
	}
	// The process dies.
	cancelA()
	e.smtp.closeConnections()
	locker.releaseAll()
	defer func() {
		close(thaw)
		<-doneA
	}()
	waitFor(t, "the server to drop the unfinished message", func() bool { return e.smtp.dataDone() == killAt })

	b := e.hookedWorker(func(int64) error { return nil }, WorkerOptions{Locker: e.db, PollInterval: 10 * time.Millisecond})
	ctxB, cancelB := context.WithCancel(context.Background())
	doneB := make(chan error, 1)
	go func() { doneB <- b.Run(ctxB) }()
	waitFor(t, "every acknowledgement", func() bool { return e.smtp.accepted() >= n })
	cancelB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	for _, r := range e.smtp.received() {
		env, err := enmime.ReadEnvelope(bytes.NewReader(r.Raw))
		if err != nil {
			t.Fatal(err)
		}
		seen[env.GetHeader("Message-Id")]++
	}
	if len(seen) != n || e.smtp.accepted() != n {
		t.Errorf("the server took %d messages with %d Message-IDs, want %d each", e.smtp.accepted(), len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s received %d times", id, k)
		}
	}
	for _, it := range e.outbox() {
		if it.State != casedesk.OutboxSent {
			t.Errorf("item %d is %s, want sent", it.ID, it.State)
		}
	}
}

// TestWorkerLosesClaimBeforeEndOfData: when a sweeper has handed the item
// out again by the time the worker records it as sent, the record fails
// and the server never gets the end of data: whichever worker records
// first sends. The item is left to its new owner.
func TestWorkerLosesClaimBeforeEndOfData(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	ctx := context.Background()
	w := e.hookedWorker(func(int64) error {
		return e.db.Update(ctx, func(tx casedesk.Tx) error {
			_, err := tx.RequeueStuckOutbox(ctx, e.clock.Now().Add(time.Second))
			return err
		})
	}, WorkerOptions{})
	var outcomes []casedesk.OutboxState
	w.opts.OnOutcome = func(_ casedesk.OutboxKind, s casedesk.OutboxState) { outcomes = append(outcomes, s) }
	stats, err := w.Drain(ctx)
	if err != nil || stats != (Stats{Claimed: 1}) {
		t.Fatalf("Drain = %+v, %v; want the item claimed and left alone", stats, err)
	}
	waitFor(t, "the server to see the data end", func() bool { return e.smtp.dataDone() == 1 })
	if n := e.smtp.accepted(); n != 0 {
		t.Fatalf("the server took %d messages", n)
	}
	if it := e.outbox()[0]; it.State != casedesk.OutboxPending || !it.NextAttemptAt.Equal(e.clock.Now()) {
		t.Errorf("item = %+v, want pending as the sweeper left it", it)
	}
	if len(outcomes) != 0 || len(e.messages(c)) != 1 {
		t.Errorf("outcomes %v, %d messages on the case; want nothing recorded", outcomes, len(e.messages(c)))
	}
	if stats := e.drain(); stats.Sent != 1 || e.smtp.accepted() != 1 {
		t.Errorf("next drain: %+v, %d accepted; want it sent once", stats, e.smtp.accepted())
	}
}
