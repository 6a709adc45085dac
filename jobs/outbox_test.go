package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
)

func TestSweepOutbox(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("acme", casedesk.TenantSettings{})
	c := f.pending(t0, "Printer on fire")
	var claimed []*casedesk.OutboxItem
	e.update(func(tx casedesk.Tx) error {
		for i := range 3 {
			if _, err := tx.EnqueueOutbox(context.Background(), casedesk.NewOutboxItem{TenantID: f.tenant.ID,
				CaseID: c.ID, Kind: casedesk.OutboxReminder, To: f.requester.Email,
				MessageID: fmt.Sprintf("sweep.%d@acme.example", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	e.clock.Set(t0.Add(time.Minute))
	e.update(func(tx casedesk.Tx) (err error) {
		claimed, err = tx.ClaimOutbox(context.Background(), 2)
		return err
	})
	if len(claimed) != 2 {
		t.Fatalf("claimed %d items, want 2", len(claimed))
	}
	job := SweepOutbox(e.db, e.db, 15*time.Minute)
	if job.Name != NameOutboxSweep || job.Schedule != DefaultSchedule {
		t.Errorf("job %q on %q", job.Name, job.Schedule)
	}

	wantSummary(t, "claimed 14 minutes ago", e.run(job, t0.Add(15*time.Minute)), Summary{KeyRequeued: 0})
	wantSummary(t, "claimed 16 minutes ago", e.run(job, t0.Add(17*time.Minute)), Summary{KeyRequeued: 2})
	for _, it := range claimed {
		var got *casedesk.OutboxItem
		e.update(func(tx casedesk.Tx) (err error) {
			got, err = tx.FindOutboxItem(context.Background(), f.tenant.ID, it.ID)
			return err
		})
		if got.State != casedesk.OutboxPending || !got.NextAttemptAt.Equal(t0.Add(17*time.Minute)) {
			t.Errorf("item %d after the sweep: %s, due %v", it.ID, got.State, got.NextAttemptAt)
		}
	}
	wantSummary(t, "again", e.run(job, t0.Add(17*time.Minute)), Summary{KeyRequeued: 0})

	// The default claim timeout is the notify worker's, 15 minutes.
	e.clock.Set(t0.Add(20 * time.Minute))
	e.update(func(tx casedesk.Tx) (err error) {
		claimed, err = tx.ClaimOutbox(context.Background(), 10)
		return err
	})
	def := SweepOutbox(e.db, e.db, 0)
	wantSummary(t, "default, 14 minutes", e.run(def, t0.Add(34*time.Minute)), Summary{KeyRequeued: 0})
	wantSummary(t, "default, 16 minutes", e.run(def, t0.Add(36*time.Minute)), Summary{KeyRequeued: len(claimed)})
}

// TestSweepOutboxOwners: with a locker, the claims of a worker whose lock
// is free are requeued at once, however young; a running worker's (its
// lock held) wait for the claim timeout.
func TestSweepOutboxOwners(t *testing.T) {
	e := newEnv(t)
	f := e.tenant("globex", casedesk.TenantSettings{})
	c := f.pending(t0, "Printer jammed")
	ctx := context.Background()
	e.update(func(tx casedesk.Tx) error {
		for i := range 3 {
			if _, err := tx.EnqueueOutbox(ctx, casedesk.NewOutboxItem{TenantID: f.tenant.ID,
				CaseID: c.ID, Kind: casedesk.OutboxReminder, To: f.requester.Email,
				MessageID: fmt.Sprintf("owners.%d@globex.example", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	e.clock.Set(t0.Add(time.Minute))
	live, err := e.db.TryLock(ctx, casedesk.OutboxWorkerLock("live-worker"))
	if err != nil || live == nil {
		t.Fatalf("TryLock = %v, %v", live, err)
	}
	defer live.Release()
	var dead, alive []*casedesk.OutboxItem
	e.update(func(tx casedesk.Tx) (err error) {
		if dead, err = tx.ClaimOutboxFor(ctx, "dead-worker", 2); err != nil {
			return err
		}
		alive, err = tx.ClaimOutboxFor(ctx, "live-worker", 1)
		return err
	})
	if len(dead) != 2 || len(alive) != 1 {
		t.Fatalf("claimed %d and %d items, want 2 and 1", len(dead), len(alive))
	}
	now := t0.Add(2 * time.Minute)
	wantSummary(t, "without a locker", e.run(SweepOutbox(e.db, nil, 15*time.Minute), now), Summary{KeyRequeued: 0})
	job := SweepOutbox(e.db, e.db, 15*time.Minute)
	wantSummary(t, "dead worker", e.run(job, now), Summary{KeyRequeued: 2})
	wantSummary(t, "again", e.run(job, now), Summary{KeyRequeued: 0})
	for _, it := range dead {
		var got *casedesk.OutboxItem
		e.update(func(tx casedesk.Tx) (err error) {
			got, err = tx.FindOutboxItem(ctx, f.tenant.ID, it.ID)
			return err
		})
		if got.State != casedesk.OutboxPending || got.ClaimedBy != "" {
			t.Errorf("dead worker's item %d after the sweep: %s by %q", it.ID, got.State, got.ClaimedBy)
		}
	}
	live.Release()
	wantSummary(t, "stopped worker", e.run(job, now), Summary{KeyRequeued: 1})
}

type fakeMaintainer struct {
	done casestore.Maintenance
	err  error
}

func (f fakeMaintainer) Maintain(context.Context) (casestore.Maintenance, error) {
	return f.done, f.err
}

func TestMaintainJob(t *testing.T) {
	job := Maintain(fakeMaintainer{done: casestore.Maintenance{Vacuumed: []string{"outbox"}, Analyzed: []string{"cases", "messages"}}})
	if job.Name != NameMaintain || job.Schedule != MaintainSchedule {
		t.Errorf("job %q on %q", job.Name, job.Schedule)
	}
	sum, err := job.Run(context.Background(), time.Now())
	if err != nil || sum[KeyAnalyzed] != 2 || sum[KeyVacuumed] != 1 {
		t.Errorf("run = %v, %v; want analyzed=2 vacuumed=1", sum, err)
	}
	boom := errors.New("connection refused")
	if _, err := Maintain(fakeMaintainer{err: boom}).Run(context.Background(), time.Now()); !errors.Is(err, boom) {
		t.Errorf("run with a failing maintainer = %v, want its error", err)
	}
}
