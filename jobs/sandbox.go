package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/casedesk/casedesk"
)

// SandboxLock is the lock the sandbox builder holds while it works, so
// that one replica at a time builds and purges sandboxes.
const SandboxLock = "sandbox-builder"

// SandboxBuilderOptions configure a SandboxBuilder; zero values take the
// defaults.
type SandboxBuilderOptions struct {
	Logger *slog.Logger
	// Idle is how long the builder waits between looks for work (default
	// 5s); Wake cuts the wait short.
	Idle time.Duration
	// Attempts is how often a failing step is tried before the job is
	// recorded as failed (default 3), RetryDelay the wait in between
	// (default 1s).
	Attempts   int
	RetryDelay time.Duration
	// Workers is how many chunks of a table are copied at once, each in a
	// transaction of its own (default 2).
	Workers int
}

// SandboxBuilder builds the sandboxes asked for through the admin API, a
// step (one transaction) at a time, and purges retired sandboxes. A job
// interrupted by a stop or a crash is resumed from its last committed
// step by whichever replica builds next.
type SandboxBuilder struct {
	store  casedesk.Store
	locker casedesk.Locker
	opts   SandboxBuilderOptions
	log    *slog.Logger
	wake   chan struct{}
}

// NewSandboxBuilder returns a builder on store; locker keeps it to one
// replica at a time.
func NewSandboxBuilder(store casedesk.Store, locker casedesk.Locker, opts SandboxBuilderOptions) *SandboxBuilder {
	if opts.Idle <= 0 {
		opts.Idle = 5 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &SandboxBuilder{store: store, locker: locker, opts: opts, log: log.With("component", "sandbox"),
		wake: make(chan struct{}, 1)}
}

// Wake makes a waiting Run look for work at once (a sandbox was asked for
// or deleted).
func (b *SandboxBuilder) Wake() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run does the work there is, then waits for more, until ctx ends. Errors
// are logged; they do not end it.
func (b *SandboxBuilder) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := b.Drain(ctx); err != nil && ctx.Err() == nil && !IsLocked(err) {
			b.log.Error("sandbox builder", "err", err)
		}
		t := time.NewTimer(b.opts.Idle)
		select {
		case <-ctx.Done():
		case <-b.wake:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// Drain takes the builder's lock and works until nothing is left: it
// purges retired sandboxes, then builds every open job, oldest first. It
// returns ErrLocked when another replica holds the lock.
func (b *SandboxBuilder) Drain(ctx context.Context) error {
	lease, err := b.locker.TryLock(ctx, SandboxLock)
	if err != nil {
		return err
	}
	if lease == nil {
		return ErrLocked
	}
	defer lease.Release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-lease.Lost():
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		if err := b.purge(ctx); err != nil {
			return err
		}
		var job *casedesk.SandboxJob
		err := b.store.View(ctx, func(tx casedesk.Tx) (err error) {
			job, err = tx.NextSandboxJob(ctx)
			return err
		})
		if err != nil || job == nil {
			return err
		}
		if err := b.build(ctx, job); err != nil {
			return err
		}
	}
}

// purge deletes retired sandboxes, a bounded part per transaction.
func (b *SandboxBuilder) purge(ctx context.Context) error {
	for {
		var more bool
		err := b.store.Update(ctx, func(tx casedesk.Tx) (err error) {
			more, err = tx.PurgeRetiredTenant(ctx)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
}

// build runs a job's steps until it is done or failed. A step that fails
// Attempts times fails the job with its error; the end of ctx leaves the
// job where its last step left it, to be resumed.
func (b *SandboxBuilder) build(ctx context.Context, job *casedesk.SandboxJob) error {
	log := b.log.With("tenant_id", job.TenantID, "sandbox_tenant_id", job.SandboxTenantID, "job_id", job.ID,
		"mode", job.Mode)
	if job.State == casedesk.JobRunning {
		log.Info("resuming sandbox build", "step", job.Step, "progress", job.Progress, "total", job.Total)
	} else {
		log.Info("building sandbox")
	}
	start, failures := time.Now(), 0
	for {
		prev := *job
		var next *casedesk.SandboxJob
		err := b.store.Update(ctx, func(tx casedesk.Tx) (err error) {
			next, err = tx.BuildSandbox(ctx, job.TenantID, job.ID)
			return err
		})
		if err == nil && next.Chunks > 0 {
			err = b.copyChunks(ctx, next)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			failures++
			log.Warn("sandbox build step failed", "step", job.Step, "attempt", failures, "err", err)
			if failures < b.opts.Attempts {
				if !sleep(ctx, b.opts.RetryDelay) {
					return ctx.Err()
				}
				continue
			}
			return b.store.Update(ctx, func(tx casedesk.Tx) error {
				return tx.FailSandboxJob(ctx, job.TenantID, job.ID, err.Error())
			})
		}
		failures, job = 0, next
		switch job.State {
		case casedesk.JobDone:
			log.Info("sandbox ready", "rows", job.Progress, "took", time.Since(start).Round(time.Millisecond))
			return nil
		case casedesk.JobFailed:
			log.Warn("sandbox build ended", "error", job.Error)
			return nil
		}
		if job.Step == prev.Step && job.Progress == prev.Progress && job.State == prev.State && job.Chunks == 0 {
			// Waiting for older transactions to end.
			if !sleep(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
}

// copyChunks copies the chunks of the job's step with opts.Workers
// transactions at once, until none is left; it returns the first error.
func (b *SandboxBuilder) copyChunks(ctx context.Context, job *casedesk.SandboxJob) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, b.opts.Workers)
	for range b.opts.Workers {
		go func() {
			for {
				var more bool
				err := b.store.Update(ctx, func(tx casedesk.Tx) (err error) {
					more, err = tx.BuildSandboxChunk(ctx, job.TenantID, job.ID)
					return err
				})
				if err != nil || !more {
					if err != nil {
						cancel()
					}
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range b.opts.Workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// sleep waits for d or the end of ctx and reports whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
