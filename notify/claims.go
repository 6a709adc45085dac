package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/casedesk/casedesk"
)

// Owner returns the instance name the worker's claims carry: "" without a
// Locker, or while Run holds no lock.
func (w *Worker) Owner() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.owner
}

// holdLease makes sure that, with a Locker, the worker holds the lock of
// its instance name before it claims anything: it takes one under a new
// random name at first and whenever the lock was lost (its database
// session ended, so a sweeper may be handing the claims out already).
func (w *Worker) holdLease(ctx context.Context) error {
	if w.opts.Locker == nil {
		return nil
	}
	w.mu.Lock()
	lease := w.lease
	w.mu.Unlock()
	if lease != nil {
		select {
		case <-lease.Lost():
			w.log.Warn("outbox worker lock lost; claiming under a new name", "owner", w.Owner())
			w.releaseLease()
		default:
			return nil
		}
	}
	name, err := instanceName()
	if err != nil {
		return err
	}
	lease, err = w.opts.Locker.TryLock(ctx, casedesk.OutboxWorkerLock(name))
	if err != nil {
		return fmt.Errorf("lock outbox worker %s: %w", name, err)
	}
	if lease == nil {
		return fmt.Errorf("lock outbox worker %s: held by another worker", name)
	}
	w.mu.Lock()
	w.owner, w.lease = name, lease
	w.mu.Unlock()
	w.log.Debug("outbox worker named", "owner", name)
	return nil
}

// releaseLease gives the instance lock up; the worker claims without an
// owner until holdLease takes a new one.
func (w *Worker) releaseLease() {
	w.mu.Lock()
	lease := w.lease
	w.owner, w.lease = "", nil
	w.mu.Unlock()
	if lease != nil {
		lease.Release()
	}
}

// instanceName is a random worker instance name of 16 hex digits.
func instanceName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("instance name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Sweep makes due again the items left claimed by a worker that stopped
// between claiming and recording them, and returns how many there were:
// with a Locker, at once those of every owner whose lock is free (see
// casedesk.RequeueOrphanedOutboxClaims); and those claimed longer than
// ClaimTimeout ago (claims without an owner, or whose owner's lock could
// not be checked). A claimed item whose message the server took was
// recorded as sent before its end of data, so what is swept up was not
// delivered and goes out once.
func (w *Worker) Sweep(ctx context.Context) (int, error) {
	var total int
	var errs []error
	if w.opts.Locker != nil {
		n, err := casedesk.RequeueOrphanedOutboxClaims(ctx, w.store, w.opts.Locker)
		total += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	var n int
	err := w.store.Update(ctx, func(tx casedesk.Tx) (err error) {
		n, err = tx.RequeueStuckOutbox(ctx, tx.Now().Add(-w.opts.ClaimTimeout))
		return err
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("requeue stuck outbox: %w", err))
	}
	return total + n, errors.Join(errs...)
}
