package casedesk

import (
	"context"
	"time"
)

// Store is the persistence the engine is written against. Work happens in
// transactions: the caller groups the operations that must commit together
// (a message, its case, the events, the outbox rows and the mailbox
// checkpoint) into one function.
type Store interface {
	// Update runs fn in a read-write transaction and commits when fn
	// returns nil; any error rolls everything back. fn may be run again
	// when the database reports a serialisation failure or deadlock, so it
	// must not have effects outside the transaction.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn for reads only: a write in it fails. Each read sees the
	// latest committed data; reads that must agree with each other (one
	// snapshot) belong in Update.
	View(ctx context.Context, fn func(tx Tx) error) error
}

// Locker hands out named locks that every replica sharing the database
// respects, so that exactly one of them runs a given mailbox poller or job.
type Locker interface {
	// TryLock takes the lock called name if no one holds it, and returns
	// nil, nil if someone does. The lock lasts until Release, or until the
	// lease's Lost channel closes because the session that held it ended.
	TryLock(ctx context.Context, name string) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	// Lost is closed when the lock is no longer held for sure (the
	// connection holding it failed), so the holder must stop.
	Lost() <-chan struct{}
	// Release gives the lock up; calling it again does nothing.
	Release()
}

// Tx is one transaction. Every tenant-scoped operation takes the tenant's ID
// and never sees another tenant's rows: an object of another tenant is
// ENOTFOUND, exactly like one that does not exist.
type Tx interface {
	// Now is the transaction's clock reading: one instant for everything it
	// writes.
	Now() time.Time

	TenantOps
	ContactOps
	UserOps
	CaseOps
	MessageOps
	OutboxOps
	CheckpointOps
	QuarantineOps
	AuditOps
	TemplateOps
	AccessOps
	SandboxOps
	InvoiceOps
}

// TenantOps manage tenants.
type TenantOps interface {
	// CreateTenant creates a tenant with a fresh token secret, its case
	// counter and the built-in roles.
	CreateTenant(ctx context.Context, n NewTenant) (*Tenant, error)
	FindTenant(ctx context.Context, id int64) (*Tenant, error)
	FindTenantBySlug(ctx context.Context, slug string) (*Tenant, error)
	// ListTenants returns every tenant in use, production and sandbox, by
	// ID: not a sandbox still being built or retired.
	ListTenants(ctx context.Context) ([]*Tenant, error)
	// UpdateTenantSupportAddress changes the address customers write to
	// (and outbound mail comes from); an invalid one is EINVALID.
	UpdateTenantSupportAddress(ctx context.Context, id int64, addr string) (*Tenant, error)
}

// ContactOps manage the people and organisations who write in.
type ContactOps interface {
	CreateAccount(ctx context.Context, n NewAccount) (*Account, error)
	FindAccount(ctx context.Context, tenantID, id int64) (*Account, error)
	// UpsertContact returns the contact with this email (compared
	// case-insensitively), creating it if needed. A new contact joins the
	// account whose domains include the email's domain. An empty stored
	// name is filled from addr.Name.
	UpsertContact(ctx context.Context, tenantID int64, addr Address) (*Contact, error)
	FindContact(ctx context.Context, tenantID, id int64) (*Contact, error)
	FindContactByEmail(ctx context.Context, tenantID int64, email string) (*Contact, error)
	// MarkBouncing records that mail to the address bounced.
	MarkBouncing(ctx context.Context, tenantID int64, email string) error
	// FindContactsByEmails returns the tenant's contacts among emails
	// (compared case-insensitively), in no particular order; unknown
	// addresses are left out. One round trip.
	FindContactsByEmails(ctx context.Context, tenantID int64, emails []string) ([]*Contact, error)
	// UpsertContacts does what UpsertContact does for many addresses in a
	// constant number of round trips. Results are in input order; an
	// address given twice (in any letter case) yields the same contact
	// twice. A known contact whose name is set is read, not written.
	UpsertContacts(ctx context.Context, tenantID int64, addrs []Address) ([]*Contact, error)
	// CreateContact creates a contact; a taken email is ECONFLICT. Without
	// an account it joins the one its email's domain names, if any.
	CreateContact(ctx context.Context, n NewContact) (*Contact, error)
	// UpdateContact changes a contact; nil fields stay.
	UpdateContact(ctx context.Context, tenantID, id int64, u ContactUpdate) (*Contact, error)
	// ListContacts returns a page of contacts ordered by ID.
	ListContacts(ctx context.Context, tenantID int64, f ContactFilter) (*ContactPage, error)
	// UpdateAccount changes an account; nil fields stay.
	UpdateAccount(ctx context.Context, tenantID, id int64, u AccountUpdate) (*Account, error)
	// ListAccounts returns a page of accounts ordered by ID.
	ListAccounts(ctx context.Context, tenantID int64, f AccountFilter) (*AccountPage, error)
}

// UserOps manage staff users.
type UserOps interface {
	// CreateUser creates an active user with the named role.
	CreateUser(ctx context.Context, n NewUser) (*User, error)
	// FindUserByEmail finds a user by address, case-insensitively and also
	// with a "+tag" stripped from the local part, with the role filled in.
	FindUserByEmail(ctx context.Context, tenantID int64, email string) (*User, error)
	// FindUsersByEmails does what FindUserByEmail does for many addresses
	// in one round trip. The map holds, under each input address
	// lower-cased, the user it names; addresses of no user are left out.
	FindUsersByEmails(ctx context.Context, tenantID int64, emails []string) (map[string]*User, error)
	// FindUsersByIDs returns the tenant's users with these IDs, with their
	// roles, keyed by ID, in one round trip; unknown IDs are left out.
	FindUsersByIDs(ctx context.Context, tenantID int64, ids []int64) (map[int64]*User, error)
}

// CaseOps manage cases and their history.
type CaseOps interface {
	// CreateCase allocates the tenant's next case number (no gaps: a
	// rolled-back transaction gives its number back), adds the requester as
	// a participant and writes the "created" event.
	CreateCase(ctx context.Context, n NewCase) (*Case, error)
	FindCase(ctx context.Context, tenantID, id int64) (*Case, error)
	FindCaseByNumber(ctx context.Context, tenantID, number int64) (*Case, error)
	ListCases(ctx context.Context, tenantID int64, f CaseFilter) (*CasePage, error)
	// ChangeStatus moves a case along the lifecycle and writes an event;
	// a disallowed move is EINVALID, the same status is a no-op.
	ChangeStatus(ctx context.Context, tenantID, caseID int64, to Status, by Actor) (*Case, error)
	AddParticipants(ctx context.Context, tenantID, caseID int64, contactIDs ...int64) error
	ListParticipants(ctx context.Context, tenantID, caseID int64) ([]*Contact, error)
	AddEvent(ctx context.Context, e Event) (*Event, error)
	ListEvents(ctx context.Context, tenantID, caseID int64) ([]*Event, error)
	// FindCasesByNumbers returns the tenant's cases with these numbers, in
	// no particular order; unknown numbers are left out. One round trip.
	FindCasesByNumbers(ctx context.Context, tenantID int64, numbers []int64) ([]*Case, error)
	// FindCasesByIDs returns the tenant's cases with these IDs, in no
	// particular order; unknown IDs are left out. One round trip.
	FindCasesByIDs(ctx context.Context, tenantID int64, ids []int64) ([]*Case, error)
	// ParticipantEmails returns, for each of the cases, the lower-cased
	// email addresses of its participants (the requester included), and
	// the email domains of its account, in one round trip. Cases that do
	// not exist are left out of the map.
	ParticipantEmails(ctx context.Context, tenantID int64, caseIDs []int64) (map[int64]CaseParties, error)
	// FindErrorCase returns the newest case with this error fingerprint
	// that is neither solved nor closed; ENOTFOUND if there is none.
	FindErrorCase(ctx context.Context, tenantID int64, fingerprint string) (*Case, error)
	// AddOccurrence counts one more occurrence of a case's error report and
	// writes an "occurrence" event; ENOTFOUND for an unknown case.
	AddOccurrence(ctx context.Context, tenantID, caseID int64, by Actor) error

	// CreateCases creates cases of one tenant as CreateCase does, numbered
	// consecutively in input order, in a constant number of round trips.
	// Results are in input order.
	CreateCases(ctx context.Context, ns []NewCase) ([]*Case, error)
	// ChangeStatuses applies status changes to the tenant's cases in order
	// (a case may change several times), each with its status_changed
	// event, in a constant number of round trips. Each change must be
	// allowed (CheckTransition) and follow on from the case's previous
	// change; otherwise the error is EINVALID and nothing is written. Each
	// case must still be in the From status of its first change: if
	// another transaction moved it since it was read, the error is
	// ECONFLICT, and the caller must roll the transaction back.
	ChangeStatuses(ctx context.Context, tenantID int64, changes []StatusChange) error
	// AddCaseParticipants adds contacts to cases of the tenant in one round
	// trip; pairs already present are skipped.
	AddCaseParticipants(ctx context.Context, tenantID int64, ps []CaseParticipant) error
	// AddEvents appends events of one tenant, in input order, in one round
	// trip, and returns them with their IDs.
	AddEvents(ctx context.Context, es []Event) ([]*Event, error)
	// SetPriority changes a case's priority and writes a priority_changed
	// event; the same priority is a no-op.
	SetPriority(ctx context.Context, tenantID, caseID int64, p Priority, by Actor) (*Case, error)
	// AssignCase sets a case's assignee (0: nobody) and writes an assigned
	// event. A user of the tenant who is not an active agent is EINVALID.
	AssignCase(ctx context.Context, tenantID, caseID, userID int64, by Actor) (*Case, error)
	// MergeCase merges case from into case into: from's messages and
	// participants move to into, from points at into (MergedInto) and is
	// closed, and both get a merged event. Mail for from found later by
	// its number lands in into. Merging a case into itself, a case merged
	// already, or into a merged case is EINVALID. Returns into.
	MergeCase(ctx context.Context, tenantID, fromID, intoID int64, by Actor) (*Case, error)
	// LockDueCases returns the tenant's cases that DueCaseFilter selects,
	// not merged, by ascending ID, with their requesters, in one round
	// trip, and locks them until the transaction ends. Cases another
	// transaction has locked are skipped: they wait for a later call.
	LockDueCases(ctx context.Context, tenantID int64, f DueCaseFilter) ([]*Case, error)
	// MarkReminded sets RemindedFor of the tenant's cases, keyed by case
	// ID, in one round trip; it is bookkeeping and leaves UpdatedAt as it
	// is. An unknown case is ENOTFOUND, and the caller must roll the
	// transaction back.
	MarkReminded(ctx context.Context, tenantID int64, waitingSince map[int64]time.Time) error
}

// MessageOps store mail and notes.
type MessageOps interface {
	// AppendMessage stores a message on a case with its raw bytes and
	// attachments. It is idempotent: if the tenant already has a message
	// with the same Message-ID (or, without one, the same raw sha256), it
	// writes nothing and returns the stored message with duplicate true.
	// A caller that created a case for the message in this transaction
	// should then roll back.
	AppendMessage(ctx context.Context, n NewMessage) (m *Message, duplicate bool, err error)
	// AppendMessages appends several messages of one tenant as
	// AppendMessage does, in a constant number of round trips to the
	// database; results are in input order. A message repeated within the
	// batch is stored once and reported as a duplicate the second time.
	AppendMessages(ctx context.Context, ns []NewMessage) ([]Appended, error)
	// FindMessagesByMessageIDs returns the stored messages among ids, with
	// their cases, in no particular order; unknown ids are left out.
	FindMessagesByMessageIDs(ctx context.Context, tenantID int64, ids []string) ([]MessageRef, error)
	// ListMessages returns a case's messages, oldest first, with
	// attachment metadata.
	ListMessages(ctx context.Context, tenantID, caseID int64) ([]*Message, error)
	// RawMessage returns the original bytes of a stored message.
	RawMessage(ctx context.Context, tenantID, messageID int64) ([]byte, error)
	// AttachmentContent returns an attachment's bytes by its sha256.
	AttachmentContent(ctx context.Context, tenantID int64, sha256 []byte) ([]byte, error)
	// FindMessagesByIDs returns the tenant's messages with these IDs (the
	// database's, not Message-IDs), with attachment metadata, in no
	// particular order; unknown IDs are left out. A constant number of
	// round trips.
	FindMessagesByIDs(ctx context.Context, tenantID int64, ids []int64) ([]*Message, error)
	// IndexMessageText moves up to limit messages of any tenant, oldest
	// first, from the search queue into the full-text index and returns
	// how many it took; fewer than limit means the queue is empty. Case
	// search (CaseFilter.Q) finds mail by its text only once it is
	// indexed. Concurrent indexers take different messages.
	IndexMessageText(ctx context.Context, limit int) (int, error)
	// ThreadMessageIDs returns, for each of the cases, the Message-IDs of
	// the mail on it that its customers have seen, oldest first: inbound
	// mail written by customers and every outbound message; never notes,
	// an agent's mail to the support address, or bounces. A long thread is
	// cut to its first message and the limit-1 most recent ones (limit <= 0
	// means 20). Cases without such mail are left out. One round trip.
	ThreadMessageIDs(ctx context.Context, tenantID int64, caseIDs []int64, limit int) (map[int64][]string, error)
}

// OutboxOps queue and track outbound mail.
type OutboxOps interface {
	EnqueueOutbox(ctx context.Context, n NewOutboxItem) (*OutboxItem, error)
	// ClaimOutbox marks up to limit due items of any tenant as sending and
	// returns them; concurrent claimers never get the same item.
	ClaimOutbox(ctx context.Context, limit int) ([]*OutboxItem, error)
	MarkOutboxSent(ctx context.Context, tenantID, id int64) error
	// RetryOutbox records a temporary failure; the item is due again at at.
	RetryOutbox(ctx context.Context, tenantID, id int64, errText string, at time.Time) error
	// FailOutbox records a permanent failure; the item is never sent.
	FailOutbox(ctx context.Context, tenantID, id int64, errText string) error
	FindOutboxItem(ctx context.Context, tenantID, id int64) (*OutboxItem, error)
	// CountOutbox counts items of a kind to an address created since a time
	// (the acknowledgement rate limit).
	CountOutbox(ctx context.Context, tenantID int64, kind OutboxKind, to string, since time.Time) (int, error)
	// EnqueueOutboxItems queues several items of one tenant as
	// EnqueueOutbox does, in one round trip; results are in input order.
	EnqueueOutboxItems(ctx context.Context, ns []NewOutboxItem) ([]*OutboxItem, error)
	// CountOutboxTo counts, per recipient, the items of any of the kinds
	// created since a time to any of the addresses, in one round trip. The
	// map is keyed by the lower-cased address; addresses with none are
	// left out.
	CountOutboxTo(ctx context.Context, tenantID int64, kinds []OutboxKind, to []string, since time.Time) (map[string]int, error)
	// FinishOutboxItems records the outcome of claimed items, of any
	// tenants, in one round trip: each item named must be in "sending",
	// or the error is ECONFLICT (an unknown item: ENOTFOUND) and nothing
	// is written.
	FinishOutboxItems(ctx context.Context, results []OutboxResult) error
	// RequeueStuckOutbox hands out again the items claimed before
	// claimedBefore and never finished, because the worker that claimed
	// them crashed or lost the database: they become due now, and the
	// count is returned. Their mail may have gone out already; it is sent
	// again under the same Message-ID.
	RequeueStuckOutbox(ctx context.Context, claimedBefore time.Time) (int, error)
	// ClaimOutboxFor claims as ClaimOutbox does and records owner, the
	// claiming worker's instance name ("" for none), as the claims' owner,
	// so that they can be handed out again as soon as that worker is gone.
	ClaimOutboxFor(ctx context.Context, owner string, limit int) ([]*OutboxItem, error)
	// OutboxClaimOwners returns the distinct owners of the items in
	// "sending", sorted; claims without an owner are not counted.
	OutboxClaimOwners(ctx context.Context) ([]string, error)
	// RequeueOutboxClaims makes the items in "sending" claimed by owner
	// due now, as RequeueStuckOutbox does, and returns how many there were.
	// The caller must know that owner is gone.
	RequeueOutboxClaims(ctx context.Context, owner string) (int, error)
	// UnmarkOutboxSent takes back the record that an item was sent, when
	// the server refused the message after the record committed: r.State
	// is OutboxPending (due again at r.NextAttemptAt) or OutboxFailed, with
	// r.Error. An item not in "sent" is ECONFLICT, an unknown one
	// ENOTFOUND. The copy of the message stored on its case stays: history
	// is append-only, and a resend carries the same Message-ID.
	UnmarkOutboxSent(ctx context.Context, r OutboxResult) error
}

// CheckpointOps remember how far each mailbox has been read.
type CheckpointOps interface {
	// Checkpoint returns the mailbox's checkpoint, ENOTFOUND before the first.
	Checkpoint(ctx context.Context, tenantID int64, mailbox string) (*MailboxCheckpoint, error)
	// SaveCheckpoint stores a checkpoint. Within one UIDVALIDITY the last UID
	// only moves forward; a new UIDVALIDITY replaces it.
	SaveCheckpoint(ctx context.Context, cp MailboxCheckpoint) error
}

// QuarantineOps keep mail that could not be processed, raw, so nothing is
// ever dropped.
type QuarantineOps interface {
	// QuarantineMessage stores raw mail with the error. The same bytes
	// quarantined again (a refetch after a crash) return the stored entry.
	QuarantineMessage(ctx context.Context, q QuarantinedMessage) (*QuarantinedMessage, error)
	// ListQuarantine returns unresolved entries, newest first, before the
	// entry beforeID (0: from the newest).
	ListQuarantine(ctx context.Context, tenantID int64, limit int, beforeID int64) ([]*QuarantinedMessage, error)
	// QuarantinedRaw returns an entry with its raw bytes.
	QuarantinedRaw(ctx context.Context, tenantID, id int64) (*QuarantinedMessage, error)
	// ResolveQuarantine marks an entry done (its retry succeeded).
	ResolveQuarantine(ctx context.Context, tenantID, id int64) error
}

// AuditOps write and read the audit log.
type AuditOps interface {
	AppendAudit(ctx context.Context, e AuditEntry) (*AuditEntry, error)
	ListAudit(ctx context.Context, tenantID int64, f AuditFilter) ([]*AuditEntry, error)
}

// TemplateOps keep tenants' template overrides. The store checks that an
// override names a tenant, a template and a language, not that it parses
// (the root cannot import package templates): save through templates.Save,
// which validates first.
type TemplateOps interface {
	// SaveTemplateOverride inserts the tenant's override for its name and
	// language, or replaces the one there is, and returns it as stored.
	SaveTemplateOverride(ctx context.Context, o TemplateOverride) (*TemplateOverride, error)
	// TemplateOverrides returns the tenant's overrides ordered by name,
	// then language.
	TemplateOverrides(ctx context.Context, tenantID int64) ([]TemplateOverride, error)
	// DeleteTemplateOverride removes the tenant's override for name and
	// lang; ENOTFOUND when there is none.
	DeleteTemplateOverride(ctx context.Context, tenantID int64, name, lang string) error
}

// relaxedCommitKey marks a context whose Update may commit without waiting
// for the disk.
type relaxedCommitKey struct{}

// WithRelaxedCommit returns a context under which Update returns once its
// commit is visible to every other transaction, without waiting for it to
// reach the disk. Only a crash of the database server itself (not of this
// process) can then lose the commit, within a fraction of a second. It is
// for records whose loss only repeats work (the outbox marking mail sent
// just before the mail goes out), never for mail taken in.
func WithRelaxedCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, relaxedCommitKey{}, true)
}

// RelaxedCommit reports whether ctx asks for relaxed commits.
func RelaxedCommit(ctx context.Context) bool {
	v, _ := ctx.Value(relaxedCommitKey{}).(bool)
	return v
}

// commitSentKey carries the function WithCommitSent registers.
type commitSentKey struct{}

// WithCommitSent returns a context under which Update, once fn has
// succeeded, sends the commit to the database and calls then at once,
// before it waits for the answer. The commit and what then does (the end
// of an SMTP message) thus leave the process back to back: a crash can
// hardly fall between them. then is called at most once, and not at all
// when the commit could not be sent; Update does not run fn again after
// calling it. A store that cannot do this commits first and leaves then
// uncalled, and the caller must notice.
func WithCommitSent(ctx context.Context, then func()) context.Context {
	return context.WithValue(ctx, commitSentKey{}, then)
}

// CommitSentHook returns the function WithCommitSent registered, or nil.
func CommitSentHook(ctx context.Context) func() {
	fn, _ := ctx.Value(commitSentKey{}).(func())
	return fn
}
