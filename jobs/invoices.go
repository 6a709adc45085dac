package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/invoicepdf"
)

// NameInvoices is the command-line name of the invoices job.
const NameInvoices = "invoices"

// Summary keys of the invoices job.
const (
	KeyInvoicesSent     = "sent"          // invoices emailed for the first time
	KeyInvoiceReminders = "reminders"     // overdue reminders queued
	KeyInvoicesOverdue  = "overdue"       // invoices that became overdue
	KeyUndeliverable    = "undeliverable" // mail due to a billing contact who cannot receive it
)

// InvoicesOptions configure Invoices; zero values take the defaults.
type InvoicesOptions struct {
	Logger *slog.Logger
	// BatchSize is how many invoices one transaction handles (default
	// 50): each needs its PDF rendered while its row is locked.
	BatchSize int
	// Schedule is the job's cron spec (default "@every 5m").
	Schedule string
	// Render renders an invoice's PDF (default invoicepdf.Render).
	Render casedesk.InvoiceRenderer
}

// Invoices returns the "invoices" job. For every tenant, on the day (UTC)
// of now: an open invoice whose issue date has come is emailed once, with
// its PDF, to its account's billing contact (InvoiceMailDue); an open or
// overdue invoice whose due date has passed becomes overdue and gets one
// reminder, which carries the PDF too; an open invoice past its due date
// whose account has no billing contact becomes overdue without mail, and
// its mail goes once a billing contact is set. A billing contact whose
// address cannot receive mail (casedesk.Deliverable) is recorded as
// mailed, without mail, and counted as "undeliverable".
//
// The mail is queued in the transaction that records it (SentAt,
// RemindedAt) on rows it has locked; a run, or another at the same time,
// finds them recorded or locked, so nothing is sent twice.
func Invoices(store casedesk.Store, opts InvoicesOptions) Job {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 50
	}
	if opts.Schedule == "" {
		opts.Schedule = "@every 5m"
	}
	if opts.Render == nil {
		opts.Render = invoicepdf.Render
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &dispatcher{store: store, batchSize: opts.BatchSize, render: opts.Render, log: log.With("job", NameInvoices)}
	return Job{Name: NameInvoices, Schedule: opts.Schedule, Run: d.run}
}

// dispatcher runs the invoices job.
type dispatcher struct {
	store     casedesk.Store
	batchSize int
	render    casedesk.InvoiceRenderer
	log       *slog.Logger
}

func (d *dispatcher) run(ctx context.Context, now time.Time) (Summary, error) {
	sum := Summary{KeyInvoicesSent: 0, KeyInvoiceReminders: 0, KeyInvoicesOverdue: 0, KeyUndeliverable: 0}
	today := casedesk.Day(now.UTC())
	return eachTenant(ctx, d.store, d.log, NameInvoices, sum, func(t *casedesk.Tenant) (Summary, error) {
		ts, err := d.tenant(ctx, t, today)
		if ts.any() {
			d.log.Info("invoice mail queued", "tenant_id", t.ID, "sent", ts[KeyInvoicesSent],
				"reminders", ts[KeyInvoiceReminders], "overdue", ts[KeyInvoicesOverdue])
		}
		return ts, err
	})
}

// tenant handles one tenant: its invoices due for mail batch by batch in
// ID order, then the open invoices past due that got no reminder.
func (d *dispatcher) tenant(ctx context.Context, t *casedesk.Tenant, today time.Time) (Summary, error) {
	sum := Summary{}
	var after int64
	for {
		if ctx.Err() != nil {
			return sum, fmt.Errorf("stopped: %w", context.Cause(ctx))
		}
		n, last, err := d.batch(ctx, t, today, after, sum)
		if err != nil {
			return sum, fmt.Errorf("batch after invoice %d: %w", after, err)
		}
		if n < d.batchSize {
			break
		}
		after = last
	}
	const sweep = 1000
	for {
		var n int
		err := d.store.Update(ctx, func(tx casedesk.Tx) (err error) {
			n, err = tx.MarkInvoicesOverdue(ctx, t.ID, today, sweep)
			return err
		})
		if err != nil {
			return sum, fmt.Errorf("mark invoices overdue: %w", err)
		}
		sum[KeyInvoicesOverdue] += n
		if n < sweep {
			return sum, nil
		}
	}
}

// batch locks up to batchSize invoices due for mail after the ID after,
// queues their mail and records it in one transaction, and adds what it
// did to sum. It returns how many invoices it locked and the last one's
// ID. Like auto-resolve's batches it runs to its end even when ctx is
// cancelled, so that a run stops between batches.
func (d *dispatcher) batch(ctx context.Context, t *casedesk.Tenant, today time.Time, after int64, sum Summary) (int, int64, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	var res Summary
	var n int
	var last int64
	err := d.store.Update(ctx, func(tx casedesk.Tx) error {
		res = Summary{}
		invs, err := tx.LockDueInvoices(ctx, t.ID, casedesk.DueInvoiceFilter{Today: today, AfterID: after, Limit: d.batchSize})
		if err != nil {
			return err
		}
		n = len(invs)
		if n > 0 {
			last = invs[n-1].ID
		}
		byKind := map[casedesk.InvoiceMailKind][]*casedesk.Invoice{}
		var mute map[casedesk.InvoiceMailKind][]int64 // recorded without mail
		for _, inv := range invs {
			kind := casedesk.InvoiceMailDue(inv, today)
			switch {
			case kind == casedesk.InvoiceMailNone:
				continue // selected by the store's rule, not by ours: leave it
			case casedesk.CheckInvoiceRecipient(inv) != nil:
				d.log.Warn("invoice mail cannot be delivered", "tenant_id", t.ID, "invoice", inv.Number,
					"error", casedesk.CheckInvoiceRecipient(inv))
				if mute == nil {
					mute = map[casedesk.InvoiceMailKind][]int64{}
				}
				mute[kind] = append(mute[kind], inv.ID)
				res[KeyUndeliverable]++
			default:
				byKind[kind] = append(byKind[kind], inv)
			}
			if kind == casedesk.InvoiceMailOverdue && inv.Status == casedesk.InvoiceOpen {
				res[KeyInvoicesOverdue]++
			}
		}
		for _, kind := range []casedesk.InvoiceMailKind{casedesk.InvoiceMailNew, casedesk.InvoiceMailOverdue} {
			if _, err := casedesk.QueueInvoiceMail(ctx, tx, t, byKind[kind], kind, d.render); err != nil {
				return err
			}
			if err := tx.MarkInvoicesMailed(ctx, t.ID, mute[kind], kind); err != nil {
				return err
			}
		}
		res[KeyInvoicesSent] += len(byKind[casedesk.InvoiceMailNew])
		res[KeyInvoiceReminders] += len(byKind[casedesk.InvoiceMailOverdue])
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for k, v := range res {
		sum[k] += v
	}
	return n, last, nil
}
