package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/internal/testlog"
)

// uniqueName is a job name no other test uses, so that tests sharing the
// database never meet on a lock.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// waitFor fails the test unless ch yields within timeout.
func waitFor[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		panic("unreachable")
	}
}

// run is one reported run.
type run struct {
	name string
	sum  Summary
	err  error
}

// startScheduler runs a scheduler of jobs until the test ends (or the
// returned stop is called) and returns its runs as they are reported.
// stop cancels Run's context and returns a channel that yields Run's
// result once it has returned.
func startScheduler(t *testing.T, locker casedesk.Locker, js []Job, opts SchedulerOptions) (runs <-chan run, stop func() <-chan error) {
	t.Helper()
	ch := make(chan run, 100)
	opts.Logger = testlog.New()
	opts.OnRun = func(name string, took time.Duration, s Summary, err error) { ch <- run{name, s, err} }
	s, err := NewScheduler(locker, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	returned := make(chan struct{})
	go func() {
		runErr = s.Run(ctx)
		close(returned)
	}()
	stop = func() <-chan error {
		cancel()
		result := make(chan error, 1)
		go func() {
			<-returned
			result <- runErr
		}()
		return result
	}
	t.Cleanup(func() {
		cancel()
		<-returned
	})
	return ch, stop
}

func TestSchedulerRunsJob(t *testing.T) {
	db := casestoretest.Open(t)
	got := make(chan time.Time, 10)
	job := Job{Name: uniqueName("every"), Schedule: "@every 1s", Run: func(ctx context.Context, now time.Time) (Summary, error) {
		got <- now
		return Summary{"done": 1}, nil
	}}
	runs, stop := startScheduler(t, db, []Job{job}, SchedulerOptions{Now: func() time.Time { return t0 }})
	if now := waitFor(t, got, 10*time.Second, "the first run"); !now.Equal(t0) {
		t.Errorf("the job ran for %v, want the scheduler's clock %v", now, t0)
	}
	r := waitFor(t, runs, 10*time.Second, "the report of the run")
	if r.name != job.Name || r.err != nil || r.sum["done"] != 1 {
		t.Errorf("reported %+v", r)
	}
	if err := waitFor(t, stop(), 10*time.Second, "Run to return"); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestSchedulerRecoversPanic: a run that panics is reported and logged,
// and the job runs again at its next turn. With robfig/cron v3.0.1's
// Recover outside SkipIfStillRunning, the second run never comes.
func TestSchedulerRecoversPanic(t *testing.T) {
	db := casestoretest.Open(t)
	var calls atomic.Int32
	job := Job{Name: uniqueName("panicky"), Schedule: "@every 1s", Run: func(ctx context.Context, now time.Time) (Summary, error) {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return Summary{"ok": 1}, nil
	}}
	runs, _ := startScheduler(t, db, []Job{job}, SchedulerOptions{})
	first := waitFor(t, runs, 10*time.Second, "the panicking run")
	if first.err == nil || !strings.Contains(first.err.Error(), "panic: boom") {
		t.Errorf("first run reported %+v, want the panic", first)
	}
	second := waitFor(t, runs, 10*time.Second, "the run after the panic")
	if second.err != nil || second.sum["ok"] != 1 {
		t.Errorf("second run reported %+v", second)
	}
}

// TestChainOrder shows the robfig/cron v3.0.1 pitfall the scheduler's
// chain avoids, without a clock: with Recover inside SkipIfStillRunning a
// job runs again after a panic; the other way round it never does.
func TestChainOrder(t *testing.T) {
	log := cronLogger{testlog.New()}
	tests := []struct {
		name      string
		chain     cron.Chain
		wantCalls int32
	}{
		{"scheduler's chain", chain(log, false), 3},
		{"recover outside skip", cron.NewChain(cron.Recover(log), cron.SkipIfStillRunning(log)), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			j := tt.chain.Then(cron.FuncJob(func() {
				if calls.Add(1) == 1 {
					panic("boom")
				}
			}))
			for range 3 {
				j.Run()
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("the job ran %d times in 3 turns, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestSchedulerStopWaitsForRun: Run returns only after the run in
// progress has returned, and the run's context ends when Run's does.
func TestSchedulerStopWaitsForRun(t *testing.T) {
	db := casestoretest.Open(t)
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	var once sync.Once
	job := Job{Name: uniqueName("slow"), Schedule: "@every 1s", Run: func(ctx context.Context, now time.Time) (Summary, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		<-release
		finished.Store(true)
		return nil, ctx.Err()
	}}
	_, stop := startScheduler(t, db, []Job{job}, SchedulerOptions{})
	waitFor(t, started, 10*time.Second, "the run to start")
	done := stop()
	select {
	case <-done:
		t.Fatal("Run returned while the job was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := waitFor(t, done, 10*time.Second, "Run to return"); err != nil || !finished.Load() {
		t.Fatalf("Run = %v, job finished %v", err, finished.Load())
	}
}

// TestSchedulerSkipsLockedJob: while another replica holds a job's lock,
// its scheduled runs are skipped and reported as such.
func TestSchedulerSkipsLockedJob(t *testing.T) {
	db := casestoretest.Open(t)
	name := uniqueName("held")
	lease, err := db.TryLock(context.Background(), LockName(name))
	if err != nil || lease == nil {
		t.Fatalf("TryLock = %v, %v", lease, err)
	}
	defer lease.Release()
	var calls atomic.Int32
	job := Job{Name: name, Schedule: "@every 1s", Run: func(ctx context.Context, now time.Time) (Summary, error) {
		calls.Add(1)
		return nil, nil
	}}
	runs, _ := startScheduler(t, db, []Job{job}, SchedulerOptions{})
	r := waitFor(t, runs, 10*time.Second, "a skipped run")
	if !IsLocked(r.err) || casedesk.ErrorCode(r.err) != casedesk.ECONFLICT || r.sum != nil || calls.Load() != 0 {
		t.Fatalf("run reported %+v after %d calls, want skipped as locked", r, calls.Load())
	}
	lease.Release()
	for r := range runs {
		if r.err == nil {
			break // the lock is free: the job ran
		}
		if !IsLocked(r.err) {
			t.Fatalf("run reported %+v", r)
		}
	}
	if calls.Load() == 0 {
		t.Error("the job never ran after the lock was released")
	}
}

func TestNewSchedulerErrors(t *testing.T) {
	ok := func(context.Context, time.Time) (Summary, error) { return nil, nil }
	tests := []struct {
		name string
		jobs []Job
		want string
	}{
		{"bad spec", []Job{{Name: "a", Schedule: "every minute", Run: ok}}, `schedule "every minute"`},
		{"bad field", []Job{{Name: "a", Schedule: "61 * * * *", Run: ok}}, "job a"},
		{"no spec", []Job{{Name: "a", Run: ok}}, "job a"},
		{"duplicate", []Job{{Name: "a", Schedule: "@hourly", Run: ok}, {Name: "a", Schedule: "@daily", Run: ok}}, "two jobs"},
		{"no name", []Job{{Schedule: "@hourly", Run: ok}}, "name"},
		{"no function", []Job{{Name: "a", Schedule: "@hourly"}}, "no function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewScheduler(fakeLocker{}, tt.jobs, SchedulerOptions{})
			if casedesk.ErrorCode(err) != casedesk.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewScheduler = %v, want invalid mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := NewScheduler(nil, nil, SchedulerOptions{}); casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Errorf("NewScheduler without a locker = %v", err)
	}
	if _, err := NewScheduler(fakeLocker{}, []Job{AutoResolve(nil, AutoResolveOptions{}), SweepOutbox(nil, nil, 0),
		{Name: NameDeactivateUsers, Schedule: "0 3 * * *", Run: ok}}, SchedulerOptions{}); err != nil {
		t.Errorf("the jobs of casedesk: %v", err)
	}
}

// TestRunOnceLocked: of two runs of a job at once, the second does not
// wait: it fails at once with ECONFLICT, and the first goes on.
func TestRunOnceLocked(t *testing.T) {
	db := casestoretest.Open(t)
	started, release := make(chan struct{}), make(chan struct{})
	job := Job{Name: uniqueName("once"), Run: func(ctx context.Context, now time.Time) (Summary, error) {
		close(started)
		<-release
		return Summary{"n": 1}, nil
	}}
	first := make(chan run, 1)
	go func() {
		s, err := RunOnce(context.Background(), db, job, t0)
		first <- run{job.Name, s, err}
	}()
	waitFor(t, started, 10*time.Second, "the first run to start")
	_, err := RunOnce(context.Background(), db, job, t0)
	if casedesk.ErrorCode(err) != casedesk.ECONFLICT || !IsLocked(err) || !strings.Contains(err.Error(), "another replica") {
		t.Errorf("second RunOnce = %v, want ECONFLICT: running on another replica", err)
	}
	close(release)
	if r := waitFor(t, first, 10*time.Second, "the first run"); r.err != nil || r.sum["n"] != 1 {
		t.Errorf("first RunOnce = %+v", r)
	}
	// The lock was released: the job runs again.
	job.Run = func(context.Context, time.Time) (Summary, error) { return Summary{"n": 2}, nil }
	if s, err := RunOnce(context.Background(), db, job, t0); err != nil || s["n"] != 2 {
		t.Errorf("RunOnce after the first = %v, %v", s, err)
	}
}

// fakeLease is a lease the test can lose.
type fakeLease struct {
	lost     chan struct{}
	released atomic.Bool
}

func (l *fakeLease) Lost() <-chan struct{} { return l.lost }
func (l *fakeLease) Release()              { l.released.Store(true) }

type fakeLocker struct {
	lease *fakeLease
	err   error
}

func (l fakeLocker) TryLock(context.Context, string) (casedesk.Lease, error) {
	if l.err != nil {
		return nil, l.err
	}
	return l.lease, nil
}

// TestRunOnceLockLost: a run whose lock is lost sees its context end and
// says why.
func TestRunOnceLockLost(t *testing.T) {
	lease := &fakeLease{lost: make(chan struct{})}
	started := make(chan struct{})
	job := Job{Name: "lost", Run: func(ctx context.Context, now time.Time) (Summary, error) {
		close(started)
		<-ctx.Done()
		return Summary{"n": 1}, ctx.Err()
	}}
	done := make(chan error, 1)
	go func() {
		_, err := RunOnce(context.Background(), fakeLocker{lease: lease}, job, t0)
		done <- err
	}()
	waitFor(t, started, 10*time.Second, "the run to start")
	close(lease.lost)
	err := waitFor(t, done, 10*time.Second, "the run to stop")
	if !errors.Is(err, errLockLost) || !errors.Is(err, context.Canceled) || !lease.released.Load() {
		t.Errorf("RunOnce = %v (lease released %v), want the lost lock", err, lease.released.Load())
	}

	down := errors.New("database down")
	if _, err := RunOnce(context.Background(), fakeLocker{err: down}, job, t0); !errors.Is(err, down) {
		t.Errorf("RunOnce with a failing locker = %v", err)
	}
	if _, err := RunOnce(context.Background(), fakeLocker{}, Job{Name: "x"}, t0); casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Errorf("RunOnce of a job without a function = %v", err)
	}
}
