package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/casedesk/casedesk"
)

// SchedulerOptions configure a Scheduler; zero values take the defaults.
type SchedulerOptions struct {
	Logger *slog.Logger
	// Now is the clock whose reading each scheduled run is for (default
	// time.Now).
	Now func() time.Time
	// OnRun, when set, is called after every scheduled run, for metrics:
	// the job's name, how long the run took, its summary and its error. A
	// run skipped because another replica holds the job's lock reports an
	// error wrapping ErrLocked (errors.Is) and a nil summary.
	OnRun func(name string, took time.Duration, s Summary, err error)
	// NoRecover lets a panic in a job crash the process (tests).
	NoRecover bool
}

// Scheduler runs jobs on their schedules. Each run takes the job's lock,
// as RunOnce does, so that of several replicas one at a time runs a job;
// a run whose lock another replica holds is skipped. A run still going
// when the job is due again makes that turn skip too, and a panicking run
// is logged and the job runs again at its next turn.
type Scheduler struct {
	locker  casedesk.Locker
	opts    SchedulerOptions
	log     *slog.Logger
	cron    *cron.Cron
	running atomic.Bool
	// ctx is Run's context, which the runs get; set before cron starts.
	ctx context.Context
}

// NewScheduler returns a scheduler for jobs. A nil locker, a job without
// a name or a function, two jobs of one name, or a schedule robfig/cron
// cannot parse (standard five fields, or descriptors such as "@every 1m"
// and "@daily"; in the process's time zone unless the spec starts with
// "CRON_TZ=") are EINVALID.
func NewScheduler(locker casedesk.Locker, jobs []Job, opts SchedulerOptions) (*Scheduler, error) {
	if locker == nil {
		return nil, casedesk.Errorf(casedesk.EINVALID, "a scheduler needs a locker")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Scheduler{locker: locker, opts: opts, log: log,
		cron: cron.New(cron.WithLogger(cronLogger{log}))}
	seen := map[string]bool{}
	for _, j := range jobs {
		if err := check(j); err != nil {
			return nil, err
		}
		if seen[j.Name] {
			return nil, casedesk.Errorf(casedesk.EINVALID, "two jobs are called %s", j.Name)
		}
		seen[j.Name] = true
		jobLog := cronLogger{log.With("job", j.Name)}
		run := chain(jobLog, opts.NoRecover).Then(cron.FuncJob(func() { s.tick(j) }))
		if _, err := s.cron.AddJob(j.Schedule, run); err != nil {
			return nil, casedesk.Errorf(casedesk.EINVALID, "job %s: schedule %q: %v", j.Name, j.Schedule, err)
		}
	}
	return s, nil
}

// chain wraps each scheduled run. In robfig/cron v3.0.1 the order
// matters: SkipIfStillRunning hands its token back only when the job
// returns, so Recover must sit inside it. The other way round a single
// panic keeps the token, and the job is skipped for good.
func chain(log cron.Logger, noRecover bool) cron.Chain {
	if noRecover {
		return cron.NewChain(cron.SkipIfStillRunning(log))
	}
	return cron.NewChain(cron.SkipIfStillRunning(log), cron.Recover(log))
}

// Run starts the schedules and blocks until ctx is done. The runs get ctx,
// so a run in progress sees the end and stops at its next check; Run
// returns nil once every run has returned. A Scheduler runs once.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("scheduler: already run")
	}
	s.ctx = ctx
	s.cron.Start()
	s.log.Info("scheduler started", "jobs", len(s.cron.Entries()))
	<-ctx.Done()
	<-s.cron.Stop().Done()
	s.log.Info("scheduler stopped")
	return nil
}

// tick is one scheduled run of job.
func (s *Scheduler) tick(job Job) {
	now := s.opts.Now()
	start := time.Now()
	// A panic is reported like an error, then goes on to the chain's
	// Recover (or crashes the process under NoRecover).
	defer func() {
		if r := recover(); r != nil {
			s.report(job.Name, time.Since(start), nil, fmt.Errorf("job %s: panic: %v", job.Name, r))
			panic(r)
		}
	}()
	sum, err := RunOnce(s.ctx, s.locker, job, now)
	s.report(job.Name, time.Since(start), sum, err)
}

// report logs the outcome of a run and hands it to OnRun.
func (s *Scheduler) report(name string, took time.Duration, sum Summary, err error) {
	switch {
	case errors.Is(err, ErrLocked):
		s.log.Debug("job skipped: another replica runs it", "job", name)
	case err != nil && s.ctx.Err() != nil:
		s.log.Info("job stopped by shutdown", "job", name, "took", took, "summary", sum.String(), "error", err)
	case err != nil:
		s.log.Error("job failed", "job", name, "took", took, "summary", sum.String(), "error", err)
	case sum.any():
		s.log.Info("job done", "job", name, "took", took, "summary", sum.String())
	default:
		s.log.Debug("job done", "job", name, "took", took, "summary", sum.String())
	}
	if s.opts.OnRun != nil {
		s.opts.OnRun(name, took, sum, err)
	}
}

// any reports whether the run did anything.
func (s Summary) any() bool {
	for _, n := range s {
		if n != 0 {
			return true
		}
	}
	return false
}

// cronLogger logs robfig/cron's messages through slog. Its routine
// messages (each wake-up and run) are debug logs; a turn skipped because
// the previous run still goes is a warning.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	if msg == "skip" { // SkipIfStillRunning's only message
		l.log.Warn("job skipped: its previous run is still going", keysAndValues...)
		return
	}
	l.log.Debug("cron: "+msg, keysAndValues...)
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	l.log.Error("cron: "+msg, append([]any{"error", err}, keysAndValues...)...)
}
