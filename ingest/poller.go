package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/casedesk/casedesk"
)

// Fetched is one message as read from a mailbox.
type Fetched struct {
	TenantID int64
	// Mailbox is MailboxConfig.Name of the mailbox it came from.
	Mailbox      string
	UIDValidity  uint32
	UID          uint32
	InternalDate time.Time
	Size         int64
	Raw          []byte

	// leaveOnServer marks a message that could not even be quarantined:
	// it is neither flagged nor moved.
	leaveOnServer bool
}

// Processor stores fetched mail.
type Processor interface {
	// Process stores the messages of batch, in order, and returns nil only
	// when all of them are committed. It must be idempotent: after an error
	// or a crash the poller hands the same messages again, and a message
	// already stored (same Message-ID, or without one the same bytes)
	// counts as stored. A *MessageError names the message that could not be
	// stored; the poller quarantines it and hands the rest again. An error
	// with code casedesk.EUNAVAILABLE means the store is down: nothing is
	// quarantined and the batch is fetched again later.
	Process(ctx context.Context, batch []*Fetched) error
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, batch []*Fetched) error

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, batch []*Fetched) error { return f(ctx, batch) }

// MessageError is the failure of one message of a batch.
type MessageError struct {
	UID uint32
	Err error
}

func (e *MessageError) Error() string { return fmt.Sprintf("uid %d: %v", e.UID, e.Err) }
func (e *MessageError) Unwrap() error { return e.Err }

// PollerOptions tune a Poller; zero values take the defaults.
type PollerOptions struct {
	// BatchSize is the number of messages per fetch and per Process call
	// (default 200: BENCHMARKS.md has the processor at about 2,600
	// messages/s per mailbox with 50 and 3,300 with 200).
	BatchSize int
	// MaxBatchBytes bounds the raw bytes of one batch, so large mail does
	// not pile up in memory (default 32 MB; a single larger message still
	// makes a batch of its own).
	MaxBatchBytes int64
	// PollInterval is the wait between checks on a server without IDLE
	// (default 30 s).
	PollInterval time.Duration
	// IdleRefresh ends an IDLE that saw nothing after this long and looks
	// again, which also proves the connection alive (default 5 min). It
	// bounds the delay on a server that does not report mail arriving just
	// as IDLE begins (cyrus-imapd#3668, go-imap's imapserver).
	IdleRefresh time.Duration
	// MinBackoff and MaxBackoff bound the exponential wait, with jitter,
	// before reconnecting after an error (defaults 1 s and 5 min).
	MinBackoff, MaxBackoff time.Duration
	// NoIdle polls every PollInterval even when the server offers IDLE,
	// for servers whose IDLE is unreliable.
	NoIdle bool
	// LockRetry is how often a poller whose mailbox is polled by another
	// replica tries to take over (default 15 s).
	LockRetry time.Duration
	// ShutdownGrace is how long, after the context ends, the work in hand
	// (flagging committed mail, saving the checkpoint) may take before the
	// connection is cut (default 10 s).
	ShutdownGrace time.Duration
	Logger        *slog.Logger
	// Metrics, when set, is told what the poller does.
	Metrics PollerMetrics
}

// PollerMetrics receives what a poller does, for monitoring. Its methods
// must be cheap and safe for concurrent use.
type PollerMetrics interface {
	// Fetched counts messages downloaded from the server.
	Fetched(mailbox string, n int)
	// Stored counts messages of a batch the processor committed, at
	// committed; each one's INTERNALDATE tells how long it waited.
	Stored(mailbox string, batch []*Fetched, committed time.Time)
	// Quarantined counts a message kept raw because it could not be
	// processed.
	Quarantined(mailbox string)
	// Connected reports whether the poller has the mailbox selected.
	Connected(mailbox string, up bool)
}

// noMetrics is the PollerMetrics of a poller without any.
type noMetrics struct{}

func (noMetrics) Fetched(string, int)                  {}
func (noMetrics) Stored(string, []*Fetched, time.Time) {}
func (noMetrics) Quarantined(string)                   {}
func (noMetrics) Connected(string, bool)               {}

func (o *PollerOptions) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 200
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 32 << 20
	}
	def(&o.PollInterval, 30*time.Second)
	def(&o.IdleRefresh, 5*time.Minute)
	def(&o.MinBackoff, time.Second)
	def(&o.MaxBackoff, 5*time.Minute)
	def(&o.LockRetry, 15*time.Second)
	def(&o.ShutdownGrace, 10*time.Second)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
}

// Poller reads one IMAP mailbox and hands new mail to a Processor. Only
// after the processor has committed a message does the poller flag or move
// it on the server and advance the mailbox checkpoint, so a crash at any
// point means the message is fetched again, never lost; the processor's
// deduplication makes it count once.
type Poller struct {
	cfg    MailboxConfig
	name   string
	store  casedesk.Store
	locker casedesk.Locker
	proc   Processor
	opts   PollerOptions
	log    *slog.Logger
}

// NewPoller returns a poller for one mailbox; Run starts it.
func NewPoller(cfg MailboxConfig, store casedesk.Store, locker casedesk.Locker, proc Processor, opts PollerOptions) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TenantID == 0 {
		return nil, casedesk.Errorf(casedesk.EINVALID, "mailbox %s needs a tenant", cfg.Name())
	}
	opts.setDefaults()
	p := &Poller{cfg: cfg, name: cfg.Name(), store: store, locker: locker, proc: proc, opts: opts}
	p.log = opts.Logger.With("tenant_id", cfg.TenantID, "mailbox", p.name)
	return p, nil
}

// Name is the mailbox's name in checkpoints and logs.
func (p *Poller) Name() string { return p.name }

// lockName is the advisory lock that keeps two replicas off one mailbox.
func (p *Poller) lockName() string {
	return "poller:" + strconv.FormatInt(p.cfg.TenantID, 10) + ":" + p.name
}

// Run polls until ctx is done, reconnecting after any error with
// exponential backoff and jitter, and returns nil then. It first takes the
// mailbox's lock; while another replica holds it, Run waits.
func (p *Poller) Run(ctx context.Context) error {
	var lease casedesk.Lease
	defer func() {
		if lease != nil {
			lease.Release()
		}
	}()
	failures := 0
	for ctx.Err() == nil {
		if lease != nil && isClosed(lease.Lost()) {
			p.log.Warn("mailbox lock lost; taking it again")
			lease.Release()
			lease = nil
		}
		if lease == nil {
			l, err := p.locker.TryLock(ctx, p.lockName())
			switch {
			case err != nil:
				failures++
				p.log.Warn("cannot take the mailbox lock", "error", err, "retry_in", p.backoff(failures))
				sleep(ctx, p.backoff(failures))
				continue
			case l == nil:
				p.log.Debug("another replica polls this mailbox", "retry_in", p.opts.LockRetry)
				sleep(ctx, p.opts.LockRetry)
				continue
			}
			lease = l
		}
		connected, err := p.safeSession(ctx, lease)
		if ctx.Err() != nil {
			break
		}
		if connected {
			failures = 0
		}
		failures++
		wait := p.backoff(failures)
		p.log.Warn("mailbox session ended; reconnecting", "error", err, "retry_in", wait)
		sleep(ctx, wait)
	}
	return nil
}

// safeSession runs a session and turns a panic in it into an error, so one
// bug does not stop the mailbox for good.
func (p *Poller) safeSession(ctx context.Context, lease casedesk.Lease) (connected bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("poller panic", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.session(ctx, lease)
}

// backoff is the wait before retry number n (from 1): MinBackoff doubled
// each time up to MaxBackoff, then a random point in its upper half, so
// replicas that failed together do not retry together.
func (p *Poller) backoff(n int) time.Duration {
	d := p.opts.MinBackoff
	for i := 1; i < n && d < p.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// handle gives a batch to the processor. A message the processor cannot
// store is quarantined and the rest handed again; a failure that cannot be
// pinned on one message is narrowed down by handing the messages one by
// one. It returns an error only when nothing more can be done now (the
// store is down, the context ended): the caller must then neither flag
// the batch nor move the checkpoint.
func (p *Poller) handle(ctx context.Context, batch []*Fetched) error {
	for len(batch) > 0 {
		err := p.process(ctx, batch)
		if err == nil {
			p.opts.Metrics.Stored(p.name, batch, time.Now())
			return nil
		}
		if ctx.Err() != nil || outage(err) {
			return fmt.Errorf("process uids %d-%d: %w", batch[0].UID, batch[len(batch)-1].UID, err)
		}
		var me *MessageError
		if errors.As(err, &me) {
			if i := slices.IndexFunc(batch, func(m *Fetched) bool { return m.UID == me.UID }); i >= 0 {
				if err := p.quarantine(ctx, batch[i], me.Err); err != nil {
					return err
				}
				batch = slices.Delete(slices.Clone(batch), i, i+1)
				continue
			}
		}
		if len(batch) == 1 {
			return p.quarantine(ctx, batch[0], err)
		}
		for _, m := range batch {
			if err := p.handle(ctx, []*Fetched{m}); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

// process calls the processor, turning a panic into an error so that the
// message that caused it is quarantined instead of stopping the mailbox.
func (p *Poller) process(ctx context.Context, batch []*Fetched) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("processor panic", "uid", batch[0].UID, "batch", len(batch), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("processor panic: %v", r)
			if len(batch) == 1 {
				err = &MessageError{UID: batch[0].UID, Err: err}
			}
		}
	}()
	return p.proc.Process(ctx, batch)
}

// quarantine stores a message that could not be processed, raw, with the
// reason. If that fails because the store is down, the store is the
// problem, not the message, and the error stops the batch. If the store
// refuses the message itself (it is empty, or too large even to keep), the
// message is left on the server untouched, for a person to look at, and
// the poller goes on.
func (p *Poller) quarantine(ctx context.Context, m *Fetched, cause error) error {
	var q *casedesk.QuarantinedMessage
	err := p.store.Update(ctx, func(tx casedesk.Tx) (err error) {
		q, err = tx.QuarantineMessage(ctx, casedesk.QuarantinedMessage{
			TenantID: p.cfg.TenantID, Mailbox: p.name, UID: m.UID, Error: cause.Error(), Raw: m.Raw})
		return err
	})
	switch {
	case err == nil:
		p.opts.Metrics.Quarantined(p.name)
		p.log.Warn("message quarantined", "uid", m.UID, "quarantine_id", q.ID, "size", len(m.Raw), "error", cause)
		return nil
	case ctx.Err() != nil || outage(err) || casedesk.ErrorCode(err) == casedesk.EINTERNAL:
		return fmt.Errorf("quarantine uid %d (%v): %w", m.UID, cause, err)
	}
	m.leaveOnServer = true
	p.log.Error("message can be neither stored nor quarantined; left unflagged on the server",
		"uid", m.UID, "size", len(m.Raw), "error", cause, "quarantine_error", err)
	return nil
}

// outage reports an error that says nothing about the message: the store
// is unreachable or the poller is stopping.
func outage(err error) bool {
	return casedesk.ErrorCode(err) == casedesk.EUNAVAILABLE ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// checkpoint returns where to resume in a mailbox whose UIDVALIDITY is
// validity. When the server renumbered the mailbox, the old UIDs mean
// nothing: reading starts over and the processor's deduplication by
// Message-ID keeps the mail already stored from counting twice.
func (p *Poller) checkpoint(ctx context.Context, validity uint32) (casedesk.MailboxCheckpoint, error) {
	fresh := casedesk.MailboxCheckpoint{TenantID: p.cfg.TenantID, Mailbox: p.name, UIDValidity: validity}
	var cp *casedesk.MailboxCheckpoint
	err := p.store.View(ctx, func(tx casedesk.Tx) (err error) {
		cp, err = tx.Checkpoint(ctx, p.cfg.TenantID, p.name)
		return err
	})
	switch {
	case casedesk.ErrorCode(err) == casedesk.ENOTFOUND:
		// Recorded at once, so the UIDVALIDITY the reading began with is
		// known even before the first message arrives.
		return fresh, p.saveCheckpoint(ctx, fresh)
	case err != nil:
		return fresh, fmt.Errorf("load checkpoint: %w", err)
	case cp.UIDValidity == validity:
		return *cp, nil
	}
	p.log.Warn("UIDVALIDITY changed; reading the mailbox again from the start, stored mail is recognised by Message-ID",
		"old_uidvalidity", cp.UIDValidity, "uidvalidity", validity)
	return fresh, p.saveCheckpoint(ctx, fresh)
}

func (p *Poller) saveCheckpoint(ctx context.Context, cp casedesk.MailboxCheckpoint) error {
	err := p.store.Update(ctx, func(tx casedesk.Tx) error { return tx.SaveCheckpoint(ctx, cp) })
	if err != nil {
		return fmt.Errorf("save checkpoint at uid %d: %w", cp.LastUID, err)
	}
	return nil
}

// RunAll runs one poller per mailbox, each in its own goroutine, and
// returns when ctx is done and all of them have stopped.
func RunAll(ctx context.Context, pollers ...*Poller) {
	done := make(chan struct{}, len(pollers))
	for _, p := range pollers {
		go func() {
			defer func() { done <- struct{}{} }()
			p.Run(ctx)
		}()
	}
	for range pollers {
		<-done
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
