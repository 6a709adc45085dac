package jobs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
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
