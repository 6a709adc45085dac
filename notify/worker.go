package notify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/templates"
)

// Mailer delivers built messages; *Sender is the SMTP one.
type Mailer interface {
	// SendCommit returns nil when the server accepted the message, or an
	// error that IsPermanent tells apart (a *SendError). When commit is
	// not nil it is called once the whole message is with the server and
	// before the end of data that makes the server take it; if commit
	// fails the server must be left without the end of data, and once it
	// succeeded the end of data must go out even if ctx ends (see
	// Sender.SendCommit).
	// commit gets the function that sends the end of data; it may call
	// it right after its own commit is on the way to the database (see
	// casedesk.WithCommitSent), or leave it to SendCommit after it
	// returned nil.
	SendCommit(ctx context.Context, msg *mail.Msg, commit func(endData func()) error) error
	// Close ends the connection kept across a batch.
	Close() error
}

// Discard is a Mailer that takes every message and delivers it nowhere:
// the mail of sandboxes without a sandbox SMTP server of their own.
var Discard Mailer = discard{}

type discard struct{}

func (discard) SendCommit(_ context.Context, _ *mail.Msg, commit func(endData func()) error) error {
	if commit == nil {
		return nil
	}
	return commit(func() {})
}

func (discard) Close() error { return nil }

// WorkerOptions configure a Worker; zero values take the defaults.
type WorkerOptions struct {
	// BatchSize is how many due items one claim takes (default 50). The
	// items of a claim are sent one after the other over one connection,
	// each recorded as sent in a transaction of its own before its end of
	// data; the failures are recorded together after the batch.
	BatchSize int
	// PollInterval is how long an idle worker waits before it looks for
	// due items again (default 1s); Wake cuts the wait short.
	PollInterval time.Duration
	// Backoff spaces the retries after temporary failures (default
	// casedesk.DefaultBackoff: 1 minute doubling to 1 hour, for 24 hours).
	Backoff casedesk.Backoff
	// BatchTimeout bounds the sending of one batch (default 5 minutes):
	// items not sent by then are due again at once, so that every claim is
	// finished long before ClaimTimeout.
	BatchTimeout time.Duration
	// ClaimTimeout is how long an item may stay claimed (default 15
	// minutes). Sweep hands out again the items claimed longer ago, whose
	// worker crashed between claiming and recording them, when it cannot
	// tell sooner that their worker is gone (see Locker).
	ClaimTimeout time.Duration
	// Locker, when set, names the worker: while Run runs, it holds the
	// lock OutboxWorkerLock(name) for a random instance name and claims
	// items under that name, so that once the worker is gone (its lock
	// free) any Sweep or the outbox-sweep job hands its claims out again
	// at once instead of after ClaimTimeout. Without a Locker claims have
	// no owner.
	Locker casedesk.Locker
	// Loop is the X-Loop value of every message (default "casedesk"); the
	// ingest classifier must be given the same value.
	Loop   string
	Logger *slog.Logger
	// Jitter returns a number in [0,1) that spreads retries; default
	// math/rand.
	Jitter func() float64
	// NoRecover lets a panic in Run crash the process (tests).
	NoRecover bool
	// Group records this worker's sent items together with those of the
	// other workers sharing it (see SentGroup); default: a group of its
	// own.
	Group *SentGroup
	// SandboxMailer delivers the mail of sandbox tenants. Without one it
	// goes nowhere: it is built, recorded as sent and kept on its case as
	// if it had gone out, but no server gets it (Discard).
	SandboxMailer Mailer
	// OnOutcome, when set, is called for every item whose attempt was
	// recorded, with its kind and new state (sent, pending again after a
	// temporary failure, or failed for good): for metrics.
	OnOutcome func(kind casedesk.OutboxKind, state casedesk.OutboxState)
}

// DefaultLoop is the X-Loop value when none is configured.
const DefaultLoop = "casedesk"

// Worker sends the outbox. It claims due items (FOR UPDATE SKIP LOCKED,
// so any number of workers and replicas share the outbox and each item
// goes to one of them), renders each with its tenant's templates and
// sends it through its Mailer. Before the end of each message's data it
// commits, in one short transaction, that the item is sent together with
// the sent message stored on its case; only then does the server get the
// final "." that makes it take the message. The failures of a batch are
// recorded afterwards in one transaction.
//
// So a crash sends no message twice: one cut off before its commit never
// reached the server (the row stays "sending", and Sweep hands it out
// again), one cut off after it has its end of data in the kernel's socket
// buffer, which delivers it after the process is gone. The only gap is
// between the commit returning and the write of the final "." (a few
// microseconds, after which a message is recorded as sent but lost). A
// message the server refuses at the end of data, after the commit, is
// taken back: pending again, or failed. Should a server take a message
// and its answer never arrive, the message is sent again, with the same
// Message-ID, which lets mail clients drop the copy.
type Worker struct {
	store  casedesk.Store
	mailer Mailer
	opts   WorkerOptions
	log    *slog.Logger
	wake   chan struct{}

	mu    sync.Mutex
	sets  map[int64]cachedSet // template sets by tenant
	owner string              // the instance name claims carry; "" for none
	lease casedesk.Lease      // the lock on owner, held by Run
}

// cachedSet is a tenant's compiled templates and the overrides they came
// from, so a batch compiles only when a tenant changed its templates.
type cachedSet struct {
	sum uint64
	set *templates.Set
}

// NewWorker returns a worker sending through mailer.
func NewWorker(store casedesk.Store, mailer Mailer, opts WorkerOptions) *Worker {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.SandboxMailer == nil {
		opts.SandboxMailer = Discard
	}
	if opts.Backoff == (casedesk.Backoff{}) {
		opts.Backoff = casedesk.DefaultBackoff
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = 5 * time.Minute
	}
	if opts.ClaimTimeout <= 0 {
		opts.ClaimTimeout = 15 * time.Minute
	}
	if opts.Loop == "" {
		opts.Loop = DefaultLoop
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	if opts.Group == nil {
		opts.Group = NewSentGroup(store)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Worker{store: store, mailer: mailer, opts: opts, log: log.With("component", "notify"),
		wake: make(chan struct{}, 1), sets: map[int64]cachedSet{}}
}

// Wake makes an idle Run look for due items now, for example after mail
// was queued in this process.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// sweepEvery is how often Run looks for items stuck in "sending".
const sweepEvery = time.Minute

// Run sends due items until ctx is done, then closes the mailer's
// connection, gives up its lock and returns nil. A batch under way when
// ctx ends is cut short: what was sent is recorded, the rest is due again
// at once. With a Locker it takes its instance lock before it claims
// anything, and a new one if the lock is lost. At the start and every
// minute it also sweeps up items left claimed by a crashed worker (see
// Sweep). Store and SMTP failures are logged and retried; they do not end
// Run.
func (w *Worker) Run(ctx context.Context) error {
	defer w.mailer.Close()
	defer w.opts.SandboxMailer.Close()
	defer w.releaseLease()
	var swept time.Time
	for ctx.Err() == nil {
		if err := w.holdLease(ctx); err != nil {
			if ctx.Err() == nil {
				w.log.Error("outbox worker lock", "err", err)
			}
			w.idle(ctx)
			continue
		}
		if time.Since(swept) >= sweepEvery {
			swept = time.Now()
			if n, err := w.Sweep(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("outbox sweep", "err", err)
			} else if n > 0 {
				w.log.Warn("outbox items left claimed by a stopped worker are due again", "count", n)
			}
		}
		stats, err := w.drainSafely(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("outbox batch", "err", err)
		}
		if stats.Claimed == w.opts.BatchSize && err == nil && !stats.Unreachable {
			continue // more may be due
		}
		if stats.Claimed > 0 {
			// Keep the connection no longer than a batch: an idle SMTP
			// connection is soon closed by the server anyway.
			w.mailer.Close()
			w.opts.SandboxMailer.Close()
		}
		w.idle(ctx)
	}
	return nil
}

// idle waits for the poll interval, a Wake or the end of ctx.
func (w *Worker) idle(ctx context.Context) {
	t := time.NewTimer(w.opts.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-t.C:
	}
}

// drainSafely runs one batch, turning a panic into an error.
func (w *Worker) drainSafely(ctx context.Context) (stats Stats, err error) {
	if !w.opts.NoRecover {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
	}
	return w.Drain(ctx)
}

// Stats count what one batch did.
type Stats struct {
	Claimed int
	Sent    int
	Retried int // temporary failures, due again later
	Failed  int // permanent failures and items given up on
	// Unreachable: the SMTP server could not be reached, and the batch
	// stopped at the first item.
	Unreachable bool
}

// Drain claims one batch of due items (under the worker's instance name,
// see Owner), sends them and records the outcomes. It returns the batch's
// counts; an error means the batch could not be claimed, loaded or
// recorded (the items not recorded stay claimed until Sweep hands them out
// again; those sent were recorded one by one before their end of data).
func (w *Worker) Drain(ctx context.Context) (Stats, error) {
	var items []*casedesk.OutboxItem
	owner := w.Owner()
	err := w.store.Update(ctx, func(tx casedesk.Tx) (err error) {
		items, err = tx.ClaimOutboxFor(ctx, owner, w.opts.BatchSize)
		return err
	})
	stats := Stats{Claimed: len(items)}
	if err != nil || len(items) == 0 {
		return stats, err
	}
	jobs, err := w.prepare(ctx, items)
	if err != nil {
		// Give the items back rather than leave them to the sweeper.
		outcomes := make([]outcome, len(items))
		for i := range outcomes {
			outcomes[i] = outcome{job: &job{item: items[i]}, sendErr: err}
		}
		if rerr := w.record(ctx, outcomes, &stats); rerr != nil {
			return stats, errors.Join(err, rerr)
		}
		return stats, err
	}
	outcomes := w.send(ctx, jobs, &stats)
	var rest []outcome
	for _, o := range outcomes {
		if !o.done {
			rest = append(rest, o)
		}
	}
	return stats, w.record(ctx, rest, &stats)
}

// prepare reads what the items need, per tenant, and composes them.
func (w *Worker) prepare(ctx context.Context, items []*casedesk.OutboxItem) ([]*job, error) {
	jobs := make([]*job, len(items))
	byTenant := map[int64][]*job{}
	var tenants []int64
	for i, it := range items {
		j := &job{item: it}
		j.payload, j.err = decodePayload(it)
		jobs[i] = j
		if _, ok := byTenant[it.TenantID]; !ok {
			tenants = append(tenants, it.TenantID)
		}
		byTenant[it.TenantID] = append(byTenant[it.TenantID], j)
	}
	batches := map[int64]*tenantBatch{}
	err := w.store.View(ctx, func(tx casedesk.Tx) error {
		for _, id := range tenants {
			b, err := w.load(ctx, tx, id, byTenant[id])
			if err != nil {
				return err
			}
			batches[id] = b
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, j := range jobs {
		b := batches[j.item.TenantID]
		j.sandbox = b.tenant.Kind == casedesk.TenantSandbox
		if j.err == nil {
			w.compose(b, j, now)
		}
	}
	return jobs, nil
}

// outcome is what became of one job.
type outcome struct {
	job     *job
	raw     []byte // the bytes sent
	sendErr error  // nil: sent
	// stopped: not attempted because the worker stopped or the server was
	// unreachable; due again at once (stopped) or after the backoff.
	stopped bool
	// committed: recorded as sent before the end of data (commitSent), so
	// a failure after it takes that record back.
	committed bool
	commitErr error // why the record before the end of data failed
	// done: recorded already, or no longer this worker's to record.
	done bool
}

// send delivers the jobs in order over the mailer's connection, each
// recorded as sent before its end of data (commitSent). It stops at the
// first failure to reach the server or to record, and when ctx ends.
// Outcomes it recorded already are marked done.
func (w *Worker) send(ctx context.Context, jobs []*job, stats *Stats) []outcome {
	outcomes := make([]outcome, len(jobs))
	deadline := time.Now().Add(w.opts.BatchTimeout)
	var halt error
	for i, j := range jobs {
		o := &outcomes[i]
		o.job = j
		if halt == nil && time.Now().After(deadline) {
			halt = fmt.Errorf("batch took longer than %s", w.opts.BatchTimeout)
			w.log.Warn("outbox batch cut short", "timeout", w.opts.BatchTimeout, "left", len(jobs)-i)
		}
		if halt != nil {
			o.sendErr, o.stopped = halt, ctx.Err() != nil || !stats.Unreachable
			continue
		}
		if j.err != nil {
			o.sendErr = j.err
			continue
		}
		msg, raw, err := j.build()
		if err != nil {
			o.sendErr = err
			continue
		}
		o.raw = raw
		mailer := w.mailer
		if j.sandbox {
			mailer = w.opts.SandboxMailer
		}
		o.sendErr = mailer.SendCommit(ctx, msg, func(endData func()) error { return w.commitSent(ctx, o, endData) })
		halt = w.settle(ctx, o, stats)
	}
	return outcomes
}

// build makes the MIME message and the bytes that will be sent; the bytes
// are also what is kept on the case. A message that cannot be built, or
// not kept, is refused before it is sent.
func (j *job) build() (*mail.Msg, []byte, error) {
	msg, err := Build(j.out)
	if err != nil {
		return nil, nil, err
	}
	raw, err := Raw(msg)
	if err != nil {
		return nil, nil, casedesk.Errorf(casedesk.EINVALID, "%v", err)
	}
	if j.stored != nil {
		j.stored.Raw = raw
		j.stored.InReplyTo, j.stored.References = j.out.threadHeaders(casedesk.NormalizeMessageID(j.out.MessageID))
		if err := j.stored.Validate(); err != nil {
			return nil, nil, err
		}
	}
	return msg, raw, nil
}

// record stores the messages sent without a commit on their cases,
// writes an event for each item that failed for good, and records every
// item's outcome, in one transaction: items recorded as sent before their
// end of data and then refused are taken back (UnmarkOutboxSent), the
// others finished. A failure to record is retried a few times before it
// is given up to the sweeper.
func (w *Worker) record(ctx context.Context, outcomes []outcome, stats *Stats) error {
	if len(outcomes) == 0 {
		return nil
	}
	// Record even when ctx ended: the attempts were made.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var counts Stats
	var recorded []casedesk.OutboxResult
	attempt := func() error {
		return w.store.Update(rctx, func(tx casedesk.Tx) error {
			counts = Stats{}
			results, stored, events := w.results(tx.Now(), outcomes, &counts)
			recorded = results
			var finish []casedesk.OutboxResult
			for i, r := range results {
				if !outcomes[i].committed {
					finish = append(finish, r)
				} else if err := tx.UnmarkOutboxSent(rctx, r); err != nil {
					return fmt.Errorf("take back the record of outbox item %d as sent: %w", r.ID, err)
				}
			}
			for _, tenant := range sortedKeys(stored) {
				if _, err := tx.AppendMessages(rctx, stored[tenant]); err != nil {
					return fmt.Errorf("store sent mail: %w", err)
				}
			}
			for _, tenant := range sortedKeys(events) {
				if _, err := tx.AddEvents(rctx, events[tenant]); err != nil {
					return fmt.Errorf("record delivery failures: %w", err)
				}
			}
			return tx.FinishOutboxItems(rctx, finish)
		})
	}
	var err error
	for try := 0; try < 3; try++ {
		if try > 0 {
			select {
			case <-rctx.Done():
			case <-time.After(time.Duration(try) * 500 * time.Millisecond):
			}
		}
		if err = attempt(); err == nil || casedesk.ErrorCode(err) == casedesk.ECONFLICT {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("record outbox batch: %w", err)
	}
	stats.Sent += counts.Sent
	stats.Retried += counts.Retried
	stats.Failed += counts.Failed
	for i, o := range outcomes {
		w.finished(o, recorded[i].State)
	}
	return nil
}

// finished logs an item's recorded outcome and reports its new state.
func (w *Worker) finished(o outcome, state casedesk.OutboxState) {
	w.logOutcome(o)
	if w.opts.OnOutcome != nil {
		w.opts.OnOutcome(o.job.item.Kind, state)
	}
}

// results decides each item's next state at now.
func (w *Worker) results(now time.Time, outcomes []outcome, counts *Stats) (
	results []casedesk.OutboxResult, stored map[int64][]casedesk.NewMessage, events map[int64][]casedesk.Event) {
	stored, events = map[int64][]casedesk.NewMessage{}, map[int64][]casedesk.Event{}
	for _, o := range outcomes {
		it := o.job.item
		r := casedesk.OutboxResult{TenantID: it.TenantID, ID: it.ID}
		switch {
		case o.sendErr == nil:
			r.State = casedesk.OutboxSent
			counts.Sent++
			if o.job.stored != nil {
				stored[it.TenantID] = append(stored[it.TenantID], *o.job.stored)
			}
		case o.stopped:
			r.State, r.NextAttemptAt, r.Error = casedesk.OutboxPending, now, errorText(o.sendErr)
			counts.Retried++
		case final(o.sendErr):
			r.State, r.Error = casedesk.OutboxFailed, errorText(o.sendErr)
			counts.Failed++
		case w.opts.Backoff.GiveUp(it.CreatedAt, now):
			r.State = casedesk.OutboxFailed
			r.Error = fmt.Sprintf("gave up after %d attempts in %s: %s", it.Attempts,
				now.Sub(it.CreatedAt).Round(time.Minute), errorText(o.sendErr))
			counts.Failed++
		default:
			r.State, r.Error = casedesk.OutboxPending, errorText(o.sendErr)
			r.NextAttemptAt = now.Add(w.opts.Backoff.Delay(it.Attempts, w.opts.Jitter()))
			counts.Retried++
		}
		if r.State == casedesk.OutboxFailed && it.CaseID != 0 {
			data, _ := json.Marshal(map[string]any{"outbox_id": it.ID, "kind": it.Kind, "to": it.To,
				"message_id": it.MessageID, "attempts": it.Attempts, "error": r.Error})
			events[it.TenantID] = append(events[it.TenantID], casedesk.Event{TenantID: it.TenantID, CaseID: it.CaseID,
				Kind: casedesk.EventDeliveryFail, Actor: casedesk.SystemActor, Data: data})
		}
		results = append(results, r)
	}
	return results, stored, events
}

// final reports whether sending again cannot succeed: a 5xx answer, or
// an item that can never be built.
func final(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Permanent
	}
	switch casedesk.ErrorCode(err) {
	case casedesk.EINVALID, casedesk.ENOTFOUND:
		return true
	}
	return false
}

// errorText is the error as kept on the item: the server's answer for
// SMTP failures.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (w *Worker) logOutcome(o outcome) {
	it := o.job.item
	attrs := []any{"tenant_id", it.TenantID, "outbox_id", it.ID, "case_id", it.CaseID, "kind", it.Kind,
		"message_id", it.MessageID, "attempt", it.Attempts}
	switch {
	case o.sendErr == nil:
		w.log.Debug("mail sent", attrs...)
	case o.stopped:
	case final(o.sendErr):
		w.log.Warn("mail failed permanently", append(attrs, "err", o.sendErr)...)
	default:
		w.log.Info("mail deferred", append(attrs, "err", o.sendErr)...)
	}
}

// templateSet returns the tenant's templates, compiling them only when
// its overrides changed. A stored override that no longer compiles (say,
// after an upgrade) must not stop the tenant's mail: it is logged and the
// defaults are used.
func (w *Worker) templateSet(ctx context.Context, tx casedesk.Tx, tenantID int64) (*templates.Set, error) {
	overrides, err := tx.TemplateOverrides(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load template overrides: %w", err)
	}
	h := fnv.New64a()
	for _, o := range overrides {
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00", o.Name, o.Lang, o.UpdatedAt.UnixNano(),
			len(o.Subject)+len(o.Text)+len(o.HTML))
	}
	sum := h.Sum64()
	w.mu.Lock()
	c, ok := w.sets[tenantID]
	w.mu.Unlock()
	if ok && c.sum == sum {
		return c.set, nil
	}
	set, err := templates.NewSet(overrides...)
	if err != nil {
		w.log.Error("tenant templates do not compile, using the defaults", "tenant_id", tenantID, "err", err)
		set = nil // the defaults
	}
	w.mu.Lock()
	w.sets[tenantID] = cachedSet{sum: sum, set: set}
	w.mu.Unlock()
	return set, nil
}

func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	return keys
}
