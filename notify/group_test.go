package notify

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/casedesk/casedesk"
)

// customers is n opening mails from n different customers.
func customers(n int) [][]byte {
	mails := make([][]byte, n)
	for i := range mails {
		m := opening()
		m.ID = fmt.Sprintf("group-%d@mail.customer.example", i)
		m.From = fmt.Sprintf("Customer %d <c%d@customer.example>", i, i)
		m.Cc = ""
		m.Subject = fmt.Sprintf("Question %d", i)
		mails[i] = m.raw()
	}
	return mails
}

// TestWorkersShareSentGroup runs four workers, each with its own SMTP
// connection, recording through one SentGroup: every customer gets one
// acknowledgement, every item is recorded sent, and the sent copy is on
// each case.
func TestWorkersShareSentGroup(t *testing.T) {
	e := newWorkerEnv(t)
	const n = 24
	e.deliver(customers(n)...)
	group := NewSentGroup(e.db)
	var workers []*Worker
	for range 4 {
		w := e.newWorker()
		w.opts.Group = group
		w.opts.BatchSize = 3
		workers = append(workers, w)
	}
	var sent atomic.Int64
	for {
		var wg sync.WaitGroup
		var claimed atomic.Int64
		for _, w := range workers {
			wg.Go(func() {
				stats, err := w.Drain(context.Background())
				if err != nil {
					t.Error(err)
				}
				claimed.Add(int64(stats.Claimed))
				sent.Add(int64(stats.Sent))
			})
		}
		wg.Wait()
		if claimed.Load() == 0 || t.Failed() {
			break
		}
	}
	if sent.Load() != n || e.smtp.accepted() != n {
		t.Fatalf("%d recorded sent, %d accepted by the server; want %d each", sent.Load(), e.smtp.accepted(), n)
	}
	to := map[string]int{}
	for _, r := range e.smtp.received() {
		to[r.To[0]]++
	}
	for i := range n {
		if addr := fmt.Sprintf("c%d@customer.example", i); to[addr] != 1 {
			t.Errorf("%s got %d acknowledgements", addr, to[addr])
		}
	}
	for _, it := range e.outbox() {
		if it.State != casedesk.OutboxSent {
			t.Errorf("outbox item %d is %s", it.ID, it.State)
		}
	}
	for i := range n {
		c := e.caseOf(fmt.Sprintf("group-%d@mail.customer.example", i))
		if ms := e.messages(c); len(ms) != 2 || ms[1].AuthorKind != casedesk.AuthorSystem {
			t.Errorf("case %d has %d messages, want the customer's and the acknowledgement", c.Number, len(ms))
		}
	}
}

// claimAll claims every due item of the test's tenant.
func (e *workerEnv) claimAll() []*casedesk.OutboxItem {
	e.t.Helper()
	var items []*casedesk.OutboxItem
	err := e.db.Update(context.Background(), func(tx casedesk.Tx) (err error) {
		items, err = tx.ClaimOutbox(context.Background(), 100)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return items
}

// TestSentGroupLostClaim checks that an item whose claim was lost costs
// the others of its group nothing: they are recorded and their data
// ended; it is not, and gets the conflict.
func TestSentGroupLostClaim(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(customers(3)...)
	items := e.claimAll()
	if len(items) != 3 {
		t.Fatalf("claimed %d items, want 3", len(items))
	}
	// Another worker finished the second one meanwhile.
	err := e.db.Update(context.Background(), func(tx casedesk.Tx) error {
		return tx.MarkOutboxSent(context.Background(), items[1].TenantID, items[1].ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	g := NewSentGroup(e.db)
	ended := make([]int, len(items))
	batch := make([]*sentRecord, len(items))
	for i, it := range items {
		batch[i] = &sentRecord{item: it, endData: func() { ended[i]++ }, done: make(chan sentResult, 2)}
	}
	g.commit(context.Background(), batch)
	for i, r := range batch {
		res := <-r.done
		switch {
		case i == 1 && (!lost(res.err) || ended[i] != 0):
			t.Errorf("the lost item: %v, data ended %d times; want a conflict and no end", res.err, ended[i])
		case i != 1 && (res.err != nil || ended[i] != 1):
			t.Errorf("item %d: %v, data ended %d times; want recorded and ended once", i, res.err, ended[i])
		}
	}
	for _, it := range e.outbox() {
		if it.State != casedesk.OutboxSent {
			t.Errorf("outbox item %d is %s, want sent", it.ID, it.State)
		}
	}
}

// gatedStore holds the first transaction until the group has wait
// records waiting, and counts transactions.
type gatedStore struct {
	casedesk.Store
	group *SentGroup
	wait  int
	calls atomic.Int64
}

func (s *gatedStore) Update(ctx context.Context, fn func(tx casedesk.Tx) error) error {
	if s.calls.Add(1) == 1 {
		for {
			s.group.mu.Lock()
			n := len(s.group.waiting)
			s.group.mu.Unlock()
			if n == s.wait {
				break
			}
		}
	}
	return s.Store.Update(ctx, fn)
}

// TestSentGroupCommitsWaitingTogether checks the grouping itself: the
// records that come while a transaction runs are committed in one more.
func TestSentGroupCommitsWaitingTogether(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(customers(5)...)
	items := e.claimAll()
	store := &gatedStore{Store: e.db, wait: len(items) - 1}
	g := NewSentGroup(store)
	store.group = g
	var ended atomic.Int64
	errs := make(chan error, len(items))
	// The first record starts the first transaction, alone; the others
	// come while it waits at the gate.
	go func() { errs <- g.record(context.Background(), items[0], nil, func() { ended.Add(1) }) }()
	waitFor(t, "the first transaction", func() bool { return store.calls.Load() == 1 })
	for _, it := range items[1:] {
		go func() { errs <- g.record(context.Background(), it, nil, func() { ended.Add(1) }) }()
	}
	for range items {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := store.calls.Load(); n != 2 || ended.Load() != int64(len(items)) {
		t.Errorf("%d transactions, %d ends of data; want 2 and %d", n, ended.Load(), len(items))
	}
	for _, it := range e.outbox() {
		if it.State != casedesk.OutboxSent {
			t.Errorf("outbox item %d is %s, want sent", it.ID, it.State)
		}
	}
}
