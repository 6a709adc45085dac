package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// wantAllOnce checks that every id was stored, and handed exactly once.
func wantAllOnce(t *testing.T, rec *recorder, ids []string) {
	t.Helper()
	stored := rec.storedSet()
	for _, id := range ids {
		if !stored[id] {
			t.Errorf("%s never stored", id)
		}
		if n := rec.timesHanded(id); n != 1 {
			t.Errorf("%s handed to the processor %d times, want 1", id, n)
		}
	}
	if rec.storedCount() != len(ids) {
		t.Errorf("stored %d messages, want %d", rec.storedCount(), len(ids))
	}
}

// wantSeen checks the server flags: \Seen exactly on the messages in want.
func wantSeen(t *testing.T, e *pollerEnv, want map[string]bool) {
	t.Helper()
	for id, seen := range e.imap.mailbox(t, "INBOX") {
		if seen != want[id] {
			t.Errorf("%s: \\Seen = %v, want %v (flagged only once committed)", id, seen, want[id])
		}
	}
}

func TestPollerHandsEachMessageOnce(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	ids := e.imap.appendMessages(t, "INBOX", 0, 500)
	rec := newRecorder()
	cfg := e.config()
	r := e.start(cfg, e.db, rec, fastOptions())
	waitFor(t, 20*time.Second, "500 messages stored", func() bool { return rec.storedCount() == 500 })
	waitFor(t, 5*time.Second, "checkpoint at the last UID", func() bool {
		cp := e.checkpoint(cfg.Name())
		return cp != nil && cp.LastUID == 500
	})
	r.stop(t)
	wantAllOnce(t, rec, ids)
	wantSeen(t, e, rec.storedSet())
}

func TestPollerStopAndRestart(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	ids := e.imap.appendMessages(t, "INBOX", 0, 500)
	rec := newRecorder()
	cfg := e.config()
	ctx, stopAt200 := context.WithCancel(context.Background())
	rec.after = func(n int) {
		if n >= 200 {
			stopAt200() // stop mid-mailbox, right after a commit
		}
	}
	opts := fastOptions()
	r := e.startWith(ctx, cfg, e.db, rec, opts)
	<-ctx.Done()
	r.stop(t)
	first := rec.storedCount()
	if first < 200 || first >= 500 {
		t.Fatalf("stored %d before the stop, want 200 to 499", first)
	}
	// Committed mail was flagged and checkpointed before Run returned,
	// uncommitted mail was not touched.
	wantSeen(t, e, rec.storedSet())
	if cp := e.checkpoint(cfg.Name()); cp == nil || int(cp.LastUID) != first {
		t.Fatalf("checkpoint after stop = %+v, want last UID %d", cp, first)
	}

	rec.after = nil
	r2 := e.start(cfg, e.db, rec, opts)
	waitFor(t, 20*time.Second, "all 500 stored after restart", func() bool { return rec.storedCount() == 500 })
	r2.stop(t)
	wantAllOnce(t, rec, ids)
	wantSeen(t, e, rec.storedSet())
}

func TestPollerUIDValidityChange(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	ids := e.imap.appendMessages(t, "INBOX", 0, 100)
	rec := newRecorder()
	cfg := e.config()
	r := e.start(cfg, e.db, rec, fastOptions())
	waitFor(t, 10*time.Second, "100 stored", func() bool { return rec.storedCount() == 100 })
	r.stop(t)
	before := e.checkpoint(cfg.Name())

	// The server renumbers the mailbox (as after a restore): the same mail
	// under new UIDs, plus 20 new messages.
	if err := e.imap.user.Delete("INBOX"); err != nil {
		t.Fatal(err)
	}
	if err := e.imap.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	e.imap.appendMessages(t, "INBOX", 0, 100)
	ids = append(ids, e.imap.appendMessages(t, "INBOX", 100, 20)...)

	r = e.start(cfg, e.db, rec, fastOptions())
	waitFor(t, 10*time.Second, "the 20 new stored", func() bool { return rec.storedCount() == 120 })
	waitFor(t, 5*time.Second, "checkpoint on the new UIDVALIDITY", func() bool {
		cp := e.checkpoint(cfg.Name())
		return cp.UIDValidity != before.UIDValidity && cp.LastUID == 120
	})
	r.stop(t)
	stored := rec.storedSet()
	for _, id := range ids {
		if !stored[id] {
			t.Errorf("%s lost", id)
		}
	}
	if rec.storedCount() != 120 {
		t.Errorf("stored %d, want 120: no duplicates after renumbering", rec.storedCount())
	}
	// The old mail was handed again and recognised as stored.
	if n := rec.timesHanded(ids[0]); n != 2 {
		t.Errorf("%s handed %d times, want 2 (once per UIDVALIDITY)", ids[0], n)
	}
}

func TestPollerReconnectsAfterDroppedConnection(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	ids := e.imap.appendMessages(t, "INBOX", 0, 300)
	// Cut the first connection 100 KB into the server's output: in the
	// middle of the first batch's bodies.
	e.imap.ln.cutAfter.Store(100 << 10)
	rec := newRecorder()
	r := e.start(e.config(), e.db, rec, fastOptions())
	waitFor(t, 20*time.Second, "300 stored", func() bool { return rec.storedCount() == 300 })
	r.stop(t)
	if n := e.imap.ln.accepted.Load(); n < 2 {
		t.Errorf("%d connections, want a reconnect", n)
	}
	wantAllOnce(t, rec, ids)
	wantSeen(t, e, rec.storedSet())
}

func TestPollerIdleDelivers(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	rec := newRecorder()
	opts := fastOptions()
	// Only an IDLE update can bring the mail in: no polling, no refresh.
	opts.PollInterval, opts.IdleRefresh = time.Hour, time.Hour
	cfg := e.config()
	r := e.start(cfg, e.db, rec, opts)
	// The poller has read the empty mailbox once it has a checkpoint.
	waitFor(t, 10*time.Second, "the first pass", func() bool { return e.checkpoint(cfg.Name()) != nil || rec.storedCount() > 0 })
	e.imap.appendMessages(t, "INBOX", 0, 1)
	time.Sleep(50 * time.Millisecond) // let it settle into IDLE before the next
	for i := 1; i <= 3; i++ {
		sent := time.Now()
		e.imap.appendMessages(t, "INBOX", i, 1)
		waitFor(t, 10*time.Second, fmt.Sprintf("message %d delivered while idling", i), func() bool { return rec.storedCount() == i+1 })
		t.Logf("message %d processed %v after it was appended", i, time.Since(sent).Round(time.Millisecond))
	}
	r.stop(t)
}

// Mail that reaches the mailbox just as an IDLE begins, after the last
// command's responses and before the server listens for changes, must be
// reported in that IDLE, not after IdleRefresh.
func TestPollerIdleDeliversMailArrivingAsIdleBegins(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	rec := newRecorder()
	opts := fastOptions()
	opts.PollInterval, opts.IdleRefresh = time.Hour, time.Hour
	var n atomic.Int32
	arrive := func() {
		if i := n.Add(1); i <= 3 {
			_, raw := testMessage(int(i))
			if _, err := e.imap.user.Append("INBOX", literal{bytes.NewReader(raw)}, &imap.AppendOptions{}); err != nil {
				t.Errorf("append message %d: %v", i, err)
			}
		}
	}
	e.imap.onIdle.Store(&arrive)
	r := e.start(e.config(), e.db, rec, opts)
	waitFor(t, 10*time.Second, "the 3 messages that arrived as IDLE began", func() bool { return rec.storedCount() == 3 })
	r.stop(t)
}

func TestPollerPollsWithoutIdle(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	rec := newRecorder()
	opts := fastOptions()
	opts.NoIdle = true
	r := e.start(e.config(), e.db, rec, opts)
	ids := e.imap.appendMessages(t, "INBOX", 0, 3)
	waitFor(t, 10*time.Second, "polled mail", func() bool { return rec.storedCount() == 3 })
	ids = append(ids, e.imap.appendMessages(t, "INBOX", 3, 2)...)
	waitFor(t, 10*time.Second, "polled mail", func() bool { return rec.storedCount() == 5 })
	r.stop(t)
	wantAllOnce(t, rec, ids)
}

func TestPollerQuarantinesWhatItCannotProcess(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	ids := e.imap.appendMessages(t, "INBOX", 0, 30)
	rec := newRecorder()
	bad := map[string]string{ids[3]: "error", ids[17]: "panic", ids[25]: "plain"}
	rec.fail = func(m *Fetched, id string) error {
		switch bad[id] {
		case "error":
			return &MessageError{UID: m.UID, Err: casedesk.Errorf(casedesk.EINVALID, "bad data in %s", id)}
		case "panic":
			panic("a bug meets " + id)
		case "plain":
			return errors.New("something unnamed went wrong")
		}
		return nil
	}
	cfg := e.config()
	r := e.start(cfg, e.db, rec, fastOptions())
	waitFor(t, 10*time.Second, "the rest stored and the checkpoint at the end", func() bool {
		cp := e.checkpoint(cfg.Name())
		return cp != nil && cp.LastUID == 30
	})
	r.stop(t)
	if rec.storedCount() != 27 {
		t.Errorf("stored %d, want 27", rec.storedCount())
	}
	q := e.quarantined()
	if len(q) != 3 {
		t.Fatalf("%d quarantined, want 3", len(q))
	}
	for _, m := range q {
		id, raw := testMessage(int(m.UID) - 1)
		if bad[id] == "" || !bytes.Equal(m.Raw, raw) || m.Mailbox != cfg.Name() || m.Error == "" {
			t.Errorf("quarantined uid %d (%s): mailbox %q, error %q, raw intact %v", m.UID, id, m.Mailbox, m.Error, bytes.Equal(m.Raw, raw))
		}
	}
	// Quarantined mail is kept, so it is flagged like the rest.
	all := rec.storedSet()
	for id := range bad {
		all[id] = true
	}
	wantSeen(t, e, all)
}

func TestPollerQuarantinesOversizeMail(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	e.imap.appendMessages(t, "INBOX", 0, 2)
	big := append([]byte("Message-ID: <big@customer.example>\r\nFrom: a@customer.example\r\nSubject: logs\r\n\r\n"),
		bytes.Repeat([]byte("0123456789abcdef\r\n"), 64<<10)...) // ~1.1 MB
	e.imap.appendRaw(t, "INBOX", big)
	rec := newRecorder()
	rec.parser = NewParser(1 << 20)
	cfg := e.config()
	r := e.start(cfg, e.db, rec, fastOptions())
	waitFor(t, 10*time.Second, "checkpoint past the big one", func() bool {
		cp := e.checkpoint(cfg.Name())
		return cp != nil && cp.LastUID == 3
	})
	r.stop(t)
	q := e.quarantined()
	if len(q) != 1 || !bytes.Equal(q[0].Raw, big) || q[0].Size != len(big) {
		t.Fatalf("quarantine = %d entries, want the big message kept raw", len(q))
	}
	if rec.storedCount() != 2 {
		t.Errorf("stored %d, want the 2 normal messages", rec.storedCount())
	}
}

// downStore fails every transaction while down, as a database outage does.
type downStore struct {
	casedesk.Store
	down *atomic.Bool
}

var errDown = fmt.Errorf("%w: connection refused", casedesk.Errorf(casedesk.EUNAVAILABLE, "the database is unavailable"))

func (s downStore) Update(ctx context.Context, fn func(casedesk.Tx) error) error {
	if s.down.Load() {
		return errDown
	}
	return s.Store.Update(ctx, fn)
}

func TestPollerDatabaseOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		// err is what the processor returns while the database is down.
		err error
	}{
		{"processor says unavailable", errDown},
		// A processor that cannot tell: quarantining fails too, which
		// shows the store, not the message, is the problem.
		{"processor error unclassified", errors.New("dial tcp 127.0.0.1:5432: connection refused")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPollerEnv(t, imapOptions{})
			var down atomic.Bool
			var failures atomic.Int32
			rec := newRecorder()
			rec.fail = func(m *Fetched, id string) error {
				if down.Load() {
					failures.Add(1)
					return tc.err
				}
				return nil
			}
			cfg := e.config()
			r := e.start(cfg, downStore{e.db, &down}, rec, fastOptions())
			waitFor(t, 10*time.Second, "the first pass", func() bool { return e.checkpoint(cfg.Name()) != nil })
			// The database goes down, then mail arrives.
			down.Store(true)
			ids := e.imap.appendMessages(t, "INBOX", 0, 60)
			waitFor(t, 10*time.Second, "three failed attempts", func() bool { return failures.Load() >= 3 })
			if cp := e.checkpoint(cfg.Name()); cp.LastUID != 0 {
				t.Errorf("checkpoint moved to %d during the outage", cp.LastUID)
			}
			if q := e.quarantined(); len(q) != 0 {
				t.Errorf("%d messages quarantined for an outage", len(q))
			}
			wantSeen(t, e, nil) // nothing flagged before it is committed
			down.Store(false)
			waitFor(t, 10*time.Second, "all stored after recovery", func() bool { return rec.storedCount() == 60 })
			waitFor(t, 5*time.Second, "checkpoint at the end", func() bool {
				cp := e.checkpoint(cfg.Name())
				return cp != nil && cp.LastUID == 60
			})
			r.stop(t)
			if rec.storedCount() != len(ids) {
				t.Errorf("stored %d, want %d", rec.storedCount(), len(ids))
			}
			wantSeen(t, e, rec.storedSet())
		})
	}
}

func TestPollerDispositions(t *testing.T) {
	rev1 := imap.CapSet{imap.CapIMAP4rev1: {}}
	tests := []struct {
		name        string
		caps        imap.CapSet
		disposition Disposition
		// Where the mail ends up and whether INBOX copies are \Seen.
		wantInbox, wantProcessed int
		wantSeen                 bool
	}{
		{"seen", nil, DispositionSeen, 11, 0, true},
		{"keep", nil, DispositionKeep, 11, 0, false},
		{"move with MOVE", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}}, DispositionMove, 0, 11, false},
		{"move with UIDPLUS only", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, DispositionMove, 0, 11, false},
		{"move without either falls back to seen", rev1, DispositionMove, 11, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPollerEnv(t, imapOptions{caps: tt.caps})
			// Someone flagged a message \Deleted, meaning to expunge it
			// later: a move must not take it with ours.
			e.imap.appendRaw(t, "INBOX", []byte("Message-ID: <keep-me@x>\r\nSubject: x\r\n\r\nx\r\n"), imap.FlagDeleted)
			e.imap.appendMessages(t, "INBOX", 0, 10)
			if err := e.imap.user.Create("Processed", nil); err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			cfg := e.config()
			cfg.Disposition, cfg.MoveTo = tt.disposition, "Processed"
			if tt.disposition != DispositionMove {
				cfg.MoveTo = ""
			}
			r := e.start(cfg, e.db, rec, fastOptions())
			waitFor(t, 10*time.Second, "checkpoint at the end", func() bool {
				cp := e.checkpoint(cfg.Name())
				return cp != nil && cp.LastUID == 11
			})
			r.stop(t)
			// After a restart only new mail is handed over.
			r = e.start(cfg, e.db, rec, fastOptions())
			e.imap.appendMessages(t, "INBOX", 10, 1)
			waitFor(t, 10*time.Second, "the new message", func() bool { return rec.storedCount() == 11 })
			r.stop(t)

			inbox := e.imap.mailbox(t, "INBOX")
			if _, ok := inbox["keep-me@x"]; !ok {
				t.Error("a message flagged \\Deleted by someone else was expunged")
			}
			delete(inbox, "keep-me@x")
			if len(inbox) != tt.wantInbox {
				t.Errorf("INBOX holds %d, want %d", len(inbox), tt.wantInbox)
			}
			for id, seen := range inbox {
				if seen != tt.wantSeen {
					t.Errorf("%s \\Seen = %v, want %v", id, seen, tt.wantSeen)
				}
			}
			if n := len(e.imap.mailbox(t, "Processed")); n != tt.wantProcessed {
				t.Errorf("Processed holds %d, want %d", n, tt.wantProcessed)
			}
			if rec.storedCount() != 11 || rec.timesHanded("m0.poller@customer.example") != 1 {
				t.Errorf("stored %d (first handed %d times), want 11, each once across a restart",
					rec.storedCount(), rec.timesHanded("m0.poller@customer.example"))
			}
		})
	}
}

func TestTwoReplicasPollOneMailboxOnce(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	ids := e.imap.appendMessages(t, "INBOX", 0, 200)
	rec := newRecorder()
	cfg := e.config()
	// Two pollers with their own store handles, as two replicas would run.
	a := e.start(cfg, e.db, rec, fastOptions())
	b := e.start(cfg, casestoretest.Open(t), rec, fastOptions())
	waitFor(t, 20*time.Second, "200 stored", func() bool { return rec.storedCount() == 200 })
	more := e.imap.appendMessages(t, "INBOX", 200, 50)
	a.stop(t) // the other takes over
	waitFor(t, 20*time.Second, "the rest stored by the second replica", func() bool { return rec.storedCount() == 250 })
	b.stop(t)
	wantAllOnce(t, rec, append(ids, more...))
}

func TestPollerStopsPromptlyWhileIdle(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	opts := fastOptions()
	opts.IdleRefresh, opts.ShutdownGrace = time.Hour, time.Hour
	cfg := e.config()
	r := e.start(cfg, e.db, newRecorder(), opts)
	waitFor(t, 10*time.Second, "the first pass", func() bool { return e.checkpoint(cfg.Name()) != nil })
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	r.stop(t)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v to return after cancel while idling", d)
	}
}

// refusingStore refuses to quarantine anything, as PostgreSQL does for a
// value it cannot store (a message over its 1 GB limit).
type refusingStore struct{ casedesk.Store }

type refusingTx struct{ casedesk.Tx }

func (s refusingStore) Update(ctx context.Context, fn func(casedesk.Tx) error) error {
	return s.Store.Update(ctx, func(tx casedesk.Tx) error { return fn(refusingTx{tx}) })
}

func (refusingTx) QuarantineMessage(context.Context, casedesk.QuarantinedMessage) (*casedesk.QuarantinedMessage, error) {
	return nil, casedesk.Errorf(casedesk.EINVALID, "value not storable")
}

func TestPollerLeavesUnstorableMailOnTheServer(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	ids := e.imap.appendMessages(t, "INBOX", 0, 5)
	rec := newRecorder()
	rec.fail = func(m *Fetched, id string) error {
		if id == ids[2] {
			return &MessageError{UID: m.UID, Err: errors.New("cannot store this one")}
		}
		return nil
	}
	cfg := e.config()
	r := e.start(cfg, refusingStore{e.db}, rec, fastOptions())
	waitFor(t, 10*time.Second, "checkpoint past the unstorable message", func() bool {
		cp := e.checkpoint(cfg.Name())
		return cp != nil && cp.LastUID == 5
	})
	r.stop(t)
	if rec.storedCount() != 4 {
		t.Errorf("stored %d, want the 4 others", rec.storedCount())
	}
	inbox := e.imap.mailbox(t, "INBOX")
	if len(inbox) != 5 {
		t.Fatalf("INBOX holds %d, want all 5", len(inbox))
	}
	if inbox[ids[2]] {
		t.Error("the message that could not be kept was flagged \\Seen; it must stay for a person to see")
	}
	wantSeen(t, e, rec.storedSet())
}

func TestRunAllPollsEveryMailbox(t *testing.T) {
	e := newPollerEnv(t, imapOptions{})
	if err := e.imap.user.Create("Billing", nil); err != nil {
		t.Fatal(err)
	}
	support := e.imap.appendMessages(t, "INBOX", 0, 20)
	billing := e.imap.appendMessages(t, "Billing", 20, 10)
	rec := newRecorder()
	var pollers []*Poller
	for _, folder := range []string{"INBOX", "Billing"} {
		cfg := e.config()
		cfg.Folder = folder
		p, err := NewPoller(cfg, e.db, e.db, rec, fastOptions())
		if err != nil {
			t.Fatal(err)
		}
		pollers = append(pollers, p)
	}
	if pollers[0].Name() == pollers[1].Name() {
		t.Fatalf("two folders share the checkpoint name %q", pollers[0].Name())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		RunAll(ctx, pollers...)
		close(done)
	}()
	waitFor(t, 10*time.Second, "both mailboxes read", func() bool { return rec.storedCount() == 30 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunAll did not return after cancel")
	}
	wantAllOnce(t, rec, append(support, billing...))
	for _, p := range pollers {
		if cp := e.checkpoint(p.Name()); cp == nil || cp.LastUID == 0 {
			t.Errorf("%s: checkpoint %+v", p.Name(), cp)
		}
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	p := &Poller{opts: PollerOptions{MinBackoff: time.Second, MaxBackoff: time.Minute}}
	tests := []struct {
		failures int
		lo, hi   time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{4, 4 * time.Second, 8 * time.Second},
		{7, 30 * time.Second, time.Minute}, // 64 s capped at 60 s
		{100, 30 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.backoff(tt.failures)
			if d < tt.lo || d > tt.hi {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.failures, d, tt.lo, tt.hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) took only %d distinct values in 200 draws: no jitter", tt.failures, len(seen))
		}
	}
}
