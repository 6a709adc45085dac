package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/templates"
	"github.com/casedesk/casedesk/threading"
)

// AutoResolveOptions configure AutoResolve; zero values take the defaults.
type AutoResolveOptions struct {
	Logger *slog.Logger
	// BatchSize is how many cases one transaction handles (default 200).
	BatchSize int
	// Schedule is the job's cron spec (default "@every 1m").
	Schedule string
}

// Summary keys of auto-resolve.
const (
	KeyReminders = "reminders"
	KeySolved    = "solved"
	KeyClosed    = "closed"
)

// batchTimeout bounds one batch's transaction. A batch runs to its end
// even when the run is cancelled (shutdown, a lost lock), so that the run
// stops between batches; this bounds how long that can take.
const batchTimeout = time.Minute

// conflictRetries is how often a batch whose cases another transaction
// changed is tried again before the tenant is given up for this run.
const conflictRetries = 3

// AutoResolve returns the "auto-resolve" job: cases waiting on the
// customer get one reminder after the tenant's reminder_after, are solved
// with a notice after solve_after, and solved cases are closed after
// close_after (TenantSettings; 3, 7 and 14 days by default). A pending
// case's clock runs from Case.WaitingSince, so every new agent message
// starts a new wait, with a reminder of its own. Every tenant and every
// waiting case is considered, however old, in transactions of BatchSize
// cases; cases another transaction holds are left for the next run. Mail
// goes to the requester through the outbox, unless the address cannot
// receive mail (casedesk.Deliverable); the status changes all the same.
// The summary counts "reminders" queued and cases "solved" and "closed".
// A second run at the same or a later now repeats nothing.
func AutoResolve(store casedesk.Store, opts AutoResolveOptions) Job {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 200
	}
	if opts.Schedule == "" {
		opts.Schedule = DefaultSchedule
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &resolver{store: store, batchSize: opts.BatchSize, log: log.With("job", NameAutoResolve)}
	return Job{Name: NameAutoResolve, Schedule: opts.Schedule, Run: r.run}
}

// resolver runs auto-resolve.
type resolver struct {
	store     casedesk.Store
	batchSize int
	log       *slog.Logger
}

// run handles every tenant as of now. A tenant that fails is logged and
// reported in the error; the others are handled all the same.
func (r *resolver) run(ctx context.Context, now time.Time) (Summary, error) {
	// The database keeps microseconds; comparing at the same precision
	// makes the SQL preselection and decide agree exactly.
	now = now.UTC().Truncate(time.Microsecond)
	sum := Summary{KeyReminders: 0, KeySolved: 0, KeyClosed: 0}
	return eachTenant(ctx, r.store, r.log, NameAutoResolve, sum, func(t *casedesk.Tenant) (Summary, error) {
		return r.tenant(ctx, t, now)
	})
}

// tenant handles the due cases of one tenant, batch by batch, in ID order.
func (r *resolver) tenant(ctx context.Context, t *casedesk.Tenant, now time.Time) (Summary, error) {
	sum := Summary{}
	tokens := threading.NewTokens(t.ID, t.TokenSecret)
	var after int64
	for {
		if ctx.Err() != nil {
			return sum, fmt.Errorf("stopped: %w", context.Cause(ctx))
		}
		res, err := r.batchRetrying(ctx, t, tokens, now, after)
		if err != nil {
			return sum, err
		}
		for k, n := range res.sum {
			sum[k] += n
		}
		if res.sum.any() {
			r.log.Info("auto-resolved cases", "tenant_id", t.ID, "reminders", res.sum[KeyReminders],
				"solved", res.sum[KeySolved], "closed", res.sum[KeyClosed])
		}
		if res.cases < r.batchSize {
			return sum, nil
		}
		after = res.lastID
	}
}

// batchRetrying runs a batch, again when a concurrent change to one of its
// cases made it roll back.
func (r *resolver) batchRetrying(ctx context.Context, t *casedesk.Tenant, tokens threading.Tokens, now time.Time, after int64) (batchResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := r.batch(ctx, t, tokens, now, after)
		if casedesk.ErrorCode(err) != casedesk.ECONFLICT || attempt > conflictRetries {
			return res, err
		}
		r.log.Warn("auto-resolve batch met a concurrent change; trying again", "tenant_id", t.ID,
			"after_case_id", after, "attempt", attempt, "error", err)
	}
}

// batchResult is what one batch did.
type batchResult struct {
	cases  int   // cases locked
	lastID int64 // the highest of their IDs
	sum    Summary
}

// batch locks up to batchSize due cases of the tenant after the case ID
// after and acts on them, in one transaction. It runs to its end even when
// ctx is cancelled (up to batchTimeout), so that a cancelled run stops
// between batches.
func (r *resolver) batch(ctx context.Context, t *casedesk.Tenant, tokens threading.Tokens, now time.Time, after int64) (batchResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	s := t.Settings
	filter := casedesk.DueCaseFilter{AfterID: after, Limit: r.batchSize,
		RemindBefore: now.Add(-s.Reminder()), SolveBefore: now.Add(-s.Solve()), CloseBefore: now.Add(-s.Close())}
	var res batchResult
	err := r.store.Update(ctx, func(tx casedesk.Tx) error {
		cases, err := tx.LockDueCases(ctx, t.ID, filter)
		if err != nil {
			return err
		}
		p := planBatch(t, tokens, cases, now)
		if err := tx.ChangeStatuses(ctx, t.ID, p.changes); err != nil {
			return err
		}
		if _, err := tx.EnqueueOutboxItems(ctx, p.mail); err != nil {
			return err
		}
		if _, err := tx.AddEvents(ctx, p.events); err != nil {
			return err
		}
		if err := tx.MarkReminded(ctx, t.ID, p.reminded); err != nil {
			return err
		}
		res = batchResult{cases: len(cases), sum: p.sum}
		if len(cases) > 0 {
			res.lastID = cases[len(cases)-1].ID
		}
		return nil
	})
	if err != nil {
		return batchResult{}, fmt.Errorf("batch after case %d: %w", after, err)
	}
	return res, nil
}

// batchPlan is what one batch writes.
type batchPlan struct {
	changes  []casedesk.StatusChange
	mail     []casedesk.NewOutboxItem
	events   []casedesk.Event
	reminded map[int64]time.Time // case ID -> the wait its reminder is for
	sum      Summary
}

// planBatch decides each case and collects the writes.
func planBatch(t *casedesk.Tenant, tokens threading.Tokens, cases []*casedesk.Case, now time.Time) *batchPlan {
	p := &batchPlan{reminded: map[int64]time.Time{}, sum: Summary{}}
	s := t.Settings
	for _, c := range cases {
		since := c.WaitingSince()
		switch decide(c, s, now) {
		case actRemind:
			// Marked even without mail, so that the case is not read
			// again until it waits anew.
			p.reminded[c.ID] = since
			days := templates.Days(since.Add(s.Solve()).Sub(now))
			m, ok := p.queue(t, tokens, c, casedesk.OutboxReminder, map[string]any{"solve_in_days": days})
			if !ok {
				continue
			}
			p.event(c, casedesk.EventReminder, map[string]any{"to": m.To, "message_id": m.MessageID,
				"waiting_since": since, "solve_in_days": days})
			p.sum[KeyReminders]++
		case actSolve:
			p.changes = append(p.changes, casedesk.StatusChange{CaseID: c.ID,
				From: casedesk.StatusPending, To: casedesk.StatusSolved, By: casedesk.SystemActor})
			_, notice := p.queue(t, tokens, c, casedesk.OutboxSolved,
				map[string]any{"reopen_days": templates.Days(s.Close())})
			p.event(c, casedesk.EventAutoAction, map[string]any{"action": "solved",
				"after_days": templates.Days(s.Solve()), "waiting_since": since, "notice": notice})
			p.sum[KeySolved]++
		case actClose:
			p.changes = append(p.changes, casedesk.StatusChange{CaseID: c.ID,
				From: casedesk.StatusSolved, To: casedesk.StatusClosed, By: casedesk.SystemActor})
			p.event(c, casedesk.EventAutoAction, map[string]any{"action": "closed",
				"after_days": templates.Days(s.Close()), "solved_at": solvedAt(c)})
			p.sum[KeyClosed]++
		}
	}
	return p
}

// queue adds mail of kind to the case's requester, unless the address
// cannot receive mail, and returns it and whether it was queued.
func (p *batchPlan) queue(t *casedesk.Tenant, tokens threading.Tokens, c *casedesk.Case, kind casedesk.OutboxKind, extra map[string]any) (casedesk.NewOutboxItem, bool) {
	if c.Requester == nil || !casedesk.Deliverable(c.Requester.Email) {
		return casedesk.NewOutboxItem{}, false
	}
	data := map[string]any{"case_number": c.Number, "subject": c.Subject}
	for k, v := range extra {
		data[k] = v
	}
	payload, _ := json.Marshal(data) // numbers and strings only
	m := casedesk.NewOutboxItem{TenantID: t.ID, CaseID: c.ID, Kind: kind, To: c.Requester.Email,
		MessageID: tokens.MessageID(c.Number, casedesk.OutboundSeq(), casedesk.MessageIDDomain(t.SupportAddress)),
		Payload:   payload}
	p.mail = append(p.mail, m)
	return m, true
}

// event adds an event by the system to the case's history.
func (p *batchPlan) event(c *casedesk.Case, kind string, data map[string]any) {
	b, _ := json.Marshal(data) // numbers, strings, booleans and times only
	p.events = append(p.events, casedesk.Event{TenantID: c.TenantID, CaseID: c.ID, Kind: kind,
		Actor: casedesk.SystemActor, Data: b})
}

// action is what auto-resolve does to one case.
type action int

// Actions of auto-resolve.
const (
	actNone   action = iota
	actRemind        // queue a reminder and mark the wait reminded
	actSolve         // pending -> solved, with a notice
	actClose         // solved -> closed
)

func (a action) String() string {
	switch a {
	case actRemind:
		return "remind"
	case actSolve:
		return "solve"
	case actClose:
		return "close"
	}
	return "none"
}

// decide says what auto-resolve does to a case at now under the tenant's
// settings. A pending case that has waited (since WaitingSince) for
// Solve() is solved, with no reminder first even if it never had one; one
// that has waited for Reminder() gets a reminder, unless it had one for
// this wait. A solved case is closed Close() after it was solved. Merged
// cases and cases in other statuses are left alone.
func decide(c *casedesk.Case, s casedesk.TenantSettings, now time.Time) action {
	if c.MergedInto != 0 {
		return actNone
	}
	switch c.Status {
	case casedesk.StatusPending:
		since := c.WaitingSince()
		waited := now.Sub(since)
		switch {
		case waited >= s.Solve():
			return actSolve
		case waited >= s.Reminder() && !c.RemindedFor.Equal(since):
			return actRemind
		}
	case casedesk.StatusSolved:
		if now.Sub(solvedAt(c)) >= s.Close() {
			return actClose
		}
	}
	return actNone
}

// solvedAt is when a solved case was solved; UpdatedAt for a case solved
// before solved_at was kept.
func solvedAt(c *casedesk.Case) time.Time {
	if c.SolvedAt.IsZero() {
		return c.UpdatedAt
	}
	return c.SolvedAt
}
