package casedesk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// OutboundSeq returns the unique part of the Message-ID of an outbound
// message (threading.Tokens.MessageID): 44 random bits, positive.
func OutboundSeq() int64 {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:]) >> 20)
}

// MessageIDDomain is the domain of our Message-IDs: the support address's,
// or the reserved casedesk.invalid when it has none.
func MessageIDDomain(supportAddress string) string {
	if d := EmailDomain(supportAddress); d != "" {
		return d
	}
	return "casedesk.invalid"
}

// OutboxKind says which template renders an outbox item.
type OutboxKind string

// Outbox kinds.
const (
	OutboxAck         OutboxKind = "ack"
	OutboxFollowUpAck OutboxKind = "followup_ack"
	OutboxRelay       OutboxKind = "relay"
	OutboxReminder    OutboxKind = "reminder"
	OutboxSolved      OutboxKind = "solved_notice"
	OutboxInvoice     OutboxKind = "invoice"
)

// OutboxState is where an outbox item is in delivery.
type OutboxState string

// Outbox states.
const (
	OutboxPending OutboxState = "pending" // waiting for next_attempt_at
	OutboxSending OutboxState = "sending" // claimed by a worker
	OutboxSent    OutboxState = "sent"
	OutboxFailed  OutboxState = "failed" // permanent: no more attempts
)

// OutboxItem is mail waiting to be sent, written in the same transaction as
// the change that caused it.
type OutboxItem struct {
	ID       int64
	TenantID int64
	CaseID   int64 // zero for mail not about a case (invoices)
	Kind     OutboxKind
	State    OutboxState
	// To is the main recipient, kept in its own column for rate limits.
	To string
	// MessageID is fixed when the item is enqueued, so a resend after a
	// crash carries the same Message-ID and the receiver can deduplicate.
	MessageID     string
	Payload       json.RawMessage // template data, a JSON object
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	ClaimedAt     time.Time
	// ClaimedBy is the instance name of the worker holding the claim, ""
	// when the item is not claimed or its worker has no name.
	ClaimedBy string
	SentAt    time.Time
	CreatedAt time.Time
}

// NewOutboxItem is the input for enqueuing mail.
type NewOutboxItem struct {
	TenantID  int64
	CaseID    int64
	Kind      OutboxKind
	To        string
	MessageID string
	Payload   json.RawMessage
	// NotBefore delays the first attempt; zero means now.
	NotBefore time.Time
}

// OutboxResult is the outcome of one attempt to send a claimed item.
type OutboxResult struct {
	TenantID int64
	ID       int64
	// State is OutboxSent, OutboxPending (a temporary failure: due again at
	// NextAttemptAt) or OutboxFailed (permanent).
	State         OutboxState
	NextAttemptAt time.Time
	// Error is the failure's text, kept in last_error; empty when sent.
	Error string
}

// Backoff computes retry delays: Initial doubling up to Max, with jitter,
// giving up once GiveUpAfter has passed since the item was created.
type Backoff struct {
	Initial     time.Duration
	Max         time.Duration
	GiveUpAfter time.Duration
}

// DefaultBackoff is 1 minute doubling to 1 hour, for at most 24 hours.
var DefaultBackoff = Backoff{Initial: time.Minute, Max: time.Hour, GiveUpAfter: 24 * time.Hour}

// Delay returns the wait before attempt number attempts+1. jitter in [0,1)
// spreads retries of many items; the delay lies in [d/2, d) for the doubled d.
func (b Backoff) Delay(attempts int, jitter float64) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	d := float64(b.Initial) * math.Pow(2, float64(attempts-1))
	if d > float64(b.Max) || math.IsInf(d, 0) {
		d = float64(b.Max)
	}
	return time.Duration(d/2 + d/2*jitter)
}

// GiveUp reports whether an item created at created should not be retried at now.
func (b Backoff) GiveUp(created, now time.Time) bool {
	return b.GiveUpAfter > 0 && now.Sub(created) >= b.GiveUpAfter
}

// MailboxCheckpoint is how far a poller has read one mailbox. A message is
// flagged on the server only after its checkpoint has committed.
type MailboxCheckpoint struct {
	TenantID    int64
	Mailbox     string
	UIDValidity uint32
	LastUID     uint32
	UpdatedAt   time.Time
}

// OutboxWorkerLock is the name of the lock an outbox worker holds, for as
// long as it runs, under its instance name, the owner recorded on its
// claims: whoever can take the lock knows that the worker is gone.
func OutboxWorkerLock(instance string) string { return "outbox-worker:" + instance }

// RequeueOrphanedOutboxClaims hands out again, due now, the outbox items
// claimed by workers that are gone: for each owner of claims in "sending"
// whose lock (OutboxWorkerLock) locker can take, the lock is taken, the
// owner's claims are requeued, and the lock is released. It returns how
// many items were requeued. An owner whose lock cannot be checked is left
// to the claim timeout; the error then says so, after every other owner
// was dealt with.
func RequeueOrphanedOutboxClaims(ctx context.Context, store Store, locker Locker) (int, error) {
	var owners []string
	err := store.View(ctx, func(tx Tx) (err error) {
		owners, err = tx.OutboxClaimOwners(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("list outbox claim owners: %w", err)
	}
	total := 0
	var errs []error
	for _, owner := range owners {
		lease, err := locker.TryLock(ctx, OutboxWorkerLock(owner))
		if err != nil {
			errs = append(errs, fmt.Errorf("check outbox worker %s: %w", owner, err))
			continue
		}
		if lease == nil {
			continue // the worker runs
		}
		var n int
		err = store.Update(ctx, func(tx Tx) (err error) {
			n, err = tx.RequeueOutboxClaims(ctx, owner)
			return err
		})
		lease.Release()
		if err != nil {
			errs = append(errs, fmt.Errorf("requeue the claims of outbox worker %s: %w", owner, err))
			continue
		}
		total += n
	}
	return total, errors.Join(errs...)
}
