// Package jobs holds casedesk's scheduled jobs (auto-resolve, the outbox
// sweeper, database upkeep, invoice mail) and the Scheduler that runs them on
// robfig/cron schedules. Each job is a plain function of the instant it
// runs for, so that tests and "casedesk run-job NAME --now TIME" can run it
// once at any instant, and each run holds the job's lock, so that one
// replica at a time runs it.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/casedesk/casedesk"
)

// Stable names of the jobs, as the command line knows them.
const (
	NameAutoResolve     = "auto-resolve"
	NameOutboxSweep     = "outbox-sweep"
	NameDeactivateUsers = "deactivate-users"
	NameMaintain        = "db-maintenance"
)

// DefaultSchedule is the schedule of a job built without one.
const DefaultSchedule = "@every 1m"

// Summary counts what one run did, e.g. {"reminders": 2, "solved": 1}.
type Summary map[string]int

// String lists the counts as "key=value" pairs, keys sorted:
// "closed=0 reminders=2 solved=1".
func (s Summary) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, s[k])
	}
	return b.String()
}

// Job is one scheduled task: a plain function of the instant it runs for.
type Job struct {
	// Name is the stable command-line name, e.g. "auto-resolve".
	Name string
	// Schedule is a robfig/cron/v3 spec, e.g. "@every 1m" or "0 3 * * *".
	Schedule string
	// Run does the work as of now and reports what it did. It must be
	// idempotent: a second run at the same or a later now repeats nothing.
	Run func(ctx context.Context, now time.Time) (Summary, error)
}

// Find returns the job called name.
func Find(jobs []Job, name string) (Job, bool) {
	for _, j := range jobs {
		if j.Name == name {
			return j, true
		}
	}
	return Job{}, false
}

// ErrLocked is the error (code casedesk.ECONFLICT) of a run that did not
// start because another replica holds the job's lock and is running it.
var ErrLocked = &casedesk.Error{Code: casedesk.ECONFLICT, Message: "the job is running on another replica"}

// IsLocked reports whether err says a run did not start because another
// replica was running the job (ErrLocked).
func IsLocked(err error) bool { return errors.Is(err, ErrLocked) }

// errLockLost is the cause of a run's context ending because its lock was
// lost (the lock's database session ended).
var errLockLost = errors.New("the job's lock was lost")

// LockName is the name of the lock a job's runs hold.
func LockName(job string) string { return "job:" + job }

// RunOnce runs job once as of now under the job's lock, which every
// scheduled run takes too. If another replica holds it, RunOnce returns at
// once with an error wrapping ErrLocked (code casedesk.ECONFLICT); it does
// not wait. If the lock is lost while the job runs, the job's context is
// cancelled and the error says so.
func RunOnce(ctx context.Context, locker casedesk.Locker, job Job, now time.Time) (Summary, error) {
	if err := check(job); err != nil {
		return nil, err
	}
	lease, err := locker.TryLock(ctx, LockName(job.Name))
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job.Name, err)
	}
	if lease == nil {
		return nil, fmt.Errorf("job %s: %w", job.Name, ErrLocked)
	}
	defer lease.Release()
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lease.Lost():
			cancel(errLockLost)
		case <-jobCtx.Done():
		}
	}()
	s, err := job.Run(jobCtx, now)
	if err != nil && errors.Is(context.Cause(jobCtx), errLockLost) {
		return s, fmt.Errorf("job %s: %w: %w", job.Name, errLockLost, err)
	}
	if err != nil {
		return s, fmt.Errorf("job %s: %w", job.Name, err)
	}
	return s, nil
}

// check reports a job that cannot run.
func check(job Job) error {
	switch {
	case job.Name == "":
		return casedesk.Errorf(casedesk.EINVALID, "a job needs a name")
	case job.Run == nil:
		return casedesk.Errorf(casedesk.EINVALID, "job %s has no function to run", job.Name)
	}
	return nil
}

// eachTenant runs fn for every tenant in use (Tx.ListTenants), adding up
// the summaries into sum. A tenant whose fn fails is logged and reported
// in the joined error; the others are handled all the same. The end of
// ctx stops it between tenants.
func eachTenant(ctx context.Context, store casedesk.Store, log *slog.Logger, job string, sum Summary,
	fn func(t *casedesk.Tenant) (Summary, error)) (Summary, error) {
	var tenants []*casedesk.Tenant
	err := store.View(ctx, func(tx casedesk.Tx) (err error) {
		tenants, err = tx.ListTenants(ctx)
		return err
	})
	if err != nil {
		return sum, fmt.Errorf("list tenants: %w", err)
	}
	var errs []error
	for _, t := range tenants {
		if ctx.Err() != nil {
			return sum, fmt.Errorf("%s stopped: %w", job, context.Cause(ctx))
		}
		ts, err := fn(t)
		for k, n := range ts {
			sum[k] += n
		}
		if err != nil {
			log.Error(job+" of a tenant failed", "tenant_id", t.ID, "error", err)
			errs = append(errs, fmt.Errorf("tenant %d: %w", t.ID, err))
		}
	}
	return sum, errors.Join(errs...)
}
