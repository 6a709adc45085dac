package notify

import (
	"context"
	"fmt"
	"sync"

	"github.com/casedesk/casedesk"
)

// SentGroup records the sent items of several workers together: each
// worker's record before its end of data (see Worker) joins the records
// waiting while another transaction commits, and one transaction writes
// them all, then the end of data goes out on every connection. With a
// worker per SMTP connection, that is one commit for several messages
// instead of one each, which is what limits how many acknowledgements a
// second one database takes (BENCHMARKS.md "End to end"). A record that
// finds no other waits for no one.
//
// When a group's transaction fails (one item's claim was lost, say), each
// of its records is tried again alone, so that one item never costs the
// others their record. Share one SentGroup between the workers of a
// process through WorkerOptions.Group; a worker without one has its own.
type SentGroup struct {
	store casedesk.Store

	mu      sync.Mutex
	waiting []*sentRecord
	leading bool // a record's goroutine is committing for the group
}

// sentRecord is one worker's request to record an item as sent.
type sentRecord struct {
	item    *casedesk.OutboxItem
	stored  *casedesk.NewMessage // the message kept on the case; nil for none
	endData func()
	done    chan sentResult // buffered: one result, and possibly the lead
}

type sentResult struct {
	err  error
	lead bool // commit the records waiting now, then wait for the result
}

// NewSentGroup returns a group recording sent items in store.
func NewSentGroup(store casedesk.Store) *SentGroup { return &SentGroup{store: store} }

// record commits that item is sent, with the sent message stored, and
// calls endData right behind the COMMIT (casedesk.WithCommitSent); it
// returns once the commit is answered. The first record to come while no
// transaction runs commits everything waiting; records that come
// meanwhile wait, and the first of them leads the next transaction.
func (g *SentGroup) record(ctx context.Context, item *casedesk.OutboxItem, stored *casedesk.NewMessage, endData func()) error {
	r := &sentRecord{item: item, stored: stored, endData: endData, done: make(chan sentResult, 2)}
	g.mu.Lock()
	g.waiting = append(g.waiting, r)
	if g.leading {
		g.mu.Unlock()
		res := <-r.done
		if !res.lead {
			return res.err
		}
		g.mu.Lock()
	}
	g.leading = true
	batch := g.waiting
	g.waiting = nil
	g.mu.Unlock()

	g.commit(ctx, batch)

	g.mu.Lock()
	if len(g.waiting) > 0 {
		g.waiting[0].done <- sentResult{lead: true}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return (<-r.done).err
}

// commit records batch in one transaction and hands each record its
// result; after a failure with several records, each is tried alone.
func (g *SentGroup) commit(ctx context.Context, batch []*sentRecord) {
	err, ended := g.commitTogether(ctx, batch)
	// Once the ends of data are out, the records stand or fall together:
	// trying one again would end its data twice.
	if err == nil || ended || len(batch) == 1 {
		for _, r := range batch {
			r.done <- sentResult{err: err}
		}
		return
	}
	for _, r := range batch {
		err, _ := g.commitTogether(ctx, []*sentRecord{r})
		r.done <- sentResult{err: err}
	}
}

// commitTogether is the transaction of a group: every item sent, every
// stored message appended, then the end of data of each, in order, right
// behind the COMMIT. ended reports whether those went out.
func (g *SentGroup) commitTogether(ctx context.Context, batch []*sentRecord) (err error, ended bool) {
	// Not waiting for the disk keeps the time between the commit and the
	// ends of data short (a crash in between loses the messages), and the
	// workers fast. Only a crash of the database server could lose this
	// record; the mail is then sent once more, under the same Message-ID.
	ctx = casedesk.WithRelaxedCommit(ctx)
	// The ends of data leave right behind the COMMIT, before its answer: a
	// crash between the two is a matter of a few system calls.
	ctx = casedesk.WithCommitSent(ctx, func() {
		ended = true
		for _, r := range batch {
			r.endData()
		}
	})
	results := make([]casedesk.OutboxResult, len(batch))
	stored := map[int64][]casedesk.NewMessage{}
	for i, r := range batch {
		results[i] = casedesk.OutboxResult{TenantID: r.item.TenantID, ID: r.item.ID, State: casedesk.OutboxSent}
		if r.stored != nil {
			stored[r.item.TenantID] = append(stored[r.item.TenantID], *r.stored)
		}
	}
	err = g.store.Update(ctx, func(tx casedesk.Tx) error {
		if err := tx.FinishOutboxItems(ctx, results); err != nil {
			if len(batch) == 1 {
				return fmt.Errorf("mark sent: %w", err)
			}
			return fmt.Errorf("mark %d items sent: %w", len(batch), err)
		}
		for _, tenant := range sortedKeys(stored) {
			if _, err := tx.AppendMessages(ctx, stored[tenant]); err != nil {
				return fmt.Errorf("store sent mail: %w", err)
			}
		}
		return nil
	})
	return err, ended
}
