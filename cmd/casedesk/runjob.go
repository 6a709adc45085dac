package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/casedesk/casedesk/admin"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/jobs"
)

// Outbox items claimed longer ago than this are handed out again by the
// sweeper: the worker that claimed them stopped (notify's default).
const outboxClaimTimeout = 15 * time.Minute

// jobList is every scheduled job of casedesk, with its schedule.
func jobList(db *casestore.DB, log *slog.Logger) []jobs.Job {
	return []jobs.Job{
		jobs.AutoResolve(db, jobs.AutoResolveOptions{Logger: log.With("job", "auto-resolve")}),
		jobs.SweepOutbox(db, db, outboxClaimTimeout),
		{
			Name:     "deactivate-users",
			Schedule: "@every 1h",
			Run: func(ctx context.Context, now time.Time) (jobs.Summary, error) {
				users, err := admin.DeactivateInactiveUsers(ctx, db, now)
				return jobs.Summary{"deactivated": len(users)}, err
			},
		},
		jobs.Maintain(db),
		jobs.Invoices(db, jobs.InvoicesOptions{Logger: log.With("job", jobs.NameInvoices)}),
	}
}

// jobArgs is the command line of run-job.
type jobArgs struct {
	name string
	now  time.Time
}

// parseJobArgs reads "NAME [--now TIME]"; TIME is RFC 3339 or an offset
// from now such as +96h or -1h30m.
func parseJobArgs(args []string, now time.Time) (jobArgs, error) {
	var ja jobArgs
	ja.now = now
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--now" || a == "-now":
			if i+1 == len(args) {
				return ja, usageError("--now needs a time")
			}
			i++
			t, err := parseNow(args[i], now)
			if err != nil {
				return ja, err
			}
			ja.now = t
		case strings.HasPrefix(a, "--now=") || strings.HasPrefix(a, "-now="):
			t, err := parseNow(a[strings.IndexByte(a, '=')+1:], now)
			if err != nil {
				return ja, err
			}
			ja.now = t
		case strings.HasPrefix(a, "-"):
			return ja, usageError(fmt.Sprintf("run-job: unknown flag %q", a))
		case ja.name == "":
			ja.name = a
		default:
			return ja, usageError("run-job takes one job name")
		}
	}
	if ja.name == "" {
		return ja, usageError("run-job needs a job name")
	}
	return ja, nil
}

func parseNow(s string, now time.Time) (time.Time, error) {
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		d, err := time.ParseDuration(s)
		if err == nil {
			return now.Add(d), nil
		}
	} else if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usageError(fmt.Sprintf("--now %q: want an RFC 3339 time such as 2027-01-31T09:00:00Z, or an offset such as +96h", s))
}

// runJob runs one job once, at ja.now, under the same lock the scheduler
// takes, and prints what it did.
func (m *Main) runJob(ctx context.Context, ja jobArgs) error {
	db, err := m.openDB(ctx)
	if err != nil {
		return err
	}
	all := jobList(db, m.logger)
	job, ok := jobs.Find(all, ja.name)
	if !ok {
		names := make([]string, len(all))
		for i, j := range all {
			names[i] = j.Name
		}
		return usageError(fmt.Sprintf("unknown job %q; the jobs are %s", ja.name, strings.Join(names, ", ")))
	}
	if err := db.CheckSchema(ctx); err != nil {
		return lineError{err}
	}
	start := time.Now()
	summary, err := jobs.RunOnce(ctx, db, job, ja.now)
	if err != nil {
		return fmt.Errorf("%s: %w", job.Name, err)
	}
	fmt.Fprintf(m.Stdout, "%s at %s: %s (%s)\n", job.Name, ja.now.UTC().Format(time.RFC3339), summary,
		time.Since(start).Round(time.Millisecond))
	return nil
}
