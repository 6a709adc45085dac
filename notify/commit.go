package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/casedesk/casedesk"
)

// settle deals with the attempt to send o: an item recorded as sent
// before its end of data is done (taken back at once if the server then
// refused it), and the others are left to the batch's record. It returns
// the reason to stop the batch, if any.
func (w *Worker) settle(ctx context.Context, o *outcome, stats *Stats) (halt error) {
	it, err := o.job.item, o.sendErr
	var se *SendError
	switch {
	case o.committed && err == nil:
		o.done = true
		stats.Sent++
		w.finished(*o, casedesk.OutboxSent)
	case o.committed:
		// Refused at the end of data, after the record: take it back now
		// rather than after the batch, when a crash could leave a refused
		// message recorded as sent. Should that fail, the batch's record
		// tries again.
		rerr := w.record(ctx, []outcome{*o}, stats)
		o.done = rerr == nil
		if rerr != nil {
			w.log.Error("outbox item refused after it was recorded as sent", "outbox_id", it.ID,
				"tenant_id", it.TenantID, "err", rerr)
		}
	case o.commitErr != nil && lost(o.commitErr):
		// Another worker has the item now (a sweeper took it from this
		// one); the server never got the end of data.
		o.done = true
		w.log.Warn("outbox item no longer claimed by this worker, not sent", "outbox_id", it.ID,
			"tenant_id", it.TenantID, "err", o.commitErr)
	case o.commitErr != nil:
		return err // the store fails: the next items' records would too
	case err == nil:
		// A Mailer that did not call commit: recorded with the batch.
	case ctx.Err() != nil:
		o.stopped = true
		return err
	case errors.As(err, &se) && se.Stage == StageConnect:
		// Every other item would fail the same way.
		stats.Unreachable = true
		w.log.Warn("smtp server unreachable", "err", err)
		return err
	}
	return nil
}

// commitTimeout bounds the record of one item as sent, made while the
// server waits for the end of its data.
const commitTimeout = 30 * time.Second

// commitSent records, in one short transaction (shared with the records
// of other workers in the same group, see SentGroup), that o's item is
// sent and stores the sent message (the exact bytes going out) on its
// case. It is called before the end of data, and it runs to the end even
// when ctx ends: once it returns nil the message goes out.
func (w *Worker) commitSent(ctx context.Context, o *outcome, endData func()) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	it := o.job.item
	if err := w.opts.Group.record(cctx, it, o.job.stored, endData); err != nil {
		o.commitErr = err
		return fmt.Errorf("record outbox item %d as sent: %w", it.ID, err)
	}
	o.committed = true
	return nil
}

// lost reports whether a record failed because the item is not claimed
// any more (another worker finished or took it) or is gone.
func lost(err error) bool {
	code := casedesk.ErrorCode(err)
	return code == casedesk.ECONFLICT || code == casedesk.ENOTFOUND
}
