package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/casedesk/casedesk"
)

// DefaultClaimTimeout is how long an outbox item may stay claimed before
// SweepOutbox hands it out again, as notify.WorkerOptions.ClaimTimeout.
const DefaultClaimTimeout = 15 * time.Minute

// KeyRequeued is the summary key of the outbox sweep.
const KeyRequeued = "requeued"

// SweepOutbox returns the "outbox-sweep" job: outbox items claimed by a
// worker that stopped before finishing them become due again. With a
// locker, the claims of every worker whose instance lock is free (see
// casedesk.RequeueOrphanedOutboxClaims) are requeued at once; the others
// (claims without an owner, or whose owner's lock could not be checked)
// once claimed more than claimTimeout (default DefaultClaimTimeout) before
// now. The summary counts them under "requeued". Run with a now in the
// future, it takes items claimed less than claimTimeout ago too.
func SweepOutbox(store casedesk.Store, locker casedesk.Locker, claimTimeout time.Duration) Job {
	if claimTimeout <= 0 {
		claimTimeout = DefaultClaimTimeout
	}
	return Job{Name: NameOutboxSweep, Schedule: DefaultSchedule,
		Run: func(ctx context.Context, now time.Time) (Summary, error) {
			var orphaned int
			var lockErr error
			if locker != nil {
				orphaned, lockErr = casedesk.RequeueOrphanedOutboxClaims(ctx, store, locker)
			}
			var n int
			err := store.Update(ctx, func(tx casedesk.Tx) (err error) {
				n, err = tx.RequeueStuckOutbox(ctx, now.Add(-claimTimeout))
				return err
			})
			if err != nil {
				err = fmt.Errorf("requeue stuck outbox: %w", err)
			}
			return Summary{KeyRequeued: orphaned + n}, errors.Join(lockErr, err)
		}}
}
