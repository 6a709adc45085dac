package casedesk

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Status is where a case stands in its lifecycle.
type Status string

// Case statuses, in lifecycle order.
const (
	StatusNew     Status = "new"
	StatusOpen    Status = "open"
	StatusPending Status = "pending" // waiting on the customer
	StatusSolved  Status = "solved"
	StatusClosed  Status = "closed" // final: a reply starts a follow-up case
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusNew, StatusOpen, StatusPending, StatusSolved, StatusClosed}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusNew, StatusOpen, StatusPending, StatusSolved, StatusClosed:
		return true
	}
	return false
}

// transitions lists, for each status, the statuses a case may move to.
// Closed is final: a customer writing again gets a follow-up case instead.
var transitions = map[Status][]Status{
	StatusNew:     {StatusOpen, StatusPending, StatusSolved},
	StatusOpen:    {StatusPending, StatusSolved},
	StatusPending: {StatusOpen, StatusSolved},
	StatusSolved:  {StatusOpen, StatusPending, StatusClosed},
	StatusClosed:  nil,
}

// CanTransition reports whether a case may move from one status to another.
// Staying in the same status is not a transition.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckTransition returns an EINVALID error naming both statuses when the
// move is not allowed.
func CheckTransition(from, to Status) error {
	if !to.Valid() {
		return Errorf(EINVALID, "unknown status %q", to)
	}
	if !CanTransition(from, to) {
		return Errorf(EINVALID, "a %s case cannot become %s", from, to)
	}
	return nil
}

// Priority orders the work.
type Priority string

// Priorities, lowest first.
const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Valid reports whether p is a known priority.
func (p Priority) Valid() bool {
	switch p {
	case PriorityLow, PriorityNormal, PriorityHigh, PriorityUrgent:
		return true
	}
	return false
}

// Case categories.
const (
	CategoryEmail       = "email"
	CategoryErrorReport = "error_report"
	CategoryAPI         = "api"
)

// Case is one support conversation, numbered per tenant.
type Case struct {
	ID          int64
	TenantID    int64
	Number      int64
	Subject     string
	Status      Status
	Priority    Priority
	Category    string
	RequesterID int64
	AccountID   int64 // zero: none
	AssigneeID  int64 // zero: unassigned
	// Fields holds custom fields (error-report data and the like) as a JSON object.
	Fields json.RawMessage
	// FollowUpOf is the closed case this one continues; zero otherwise.
	FollowUpOf int64
	// MergedInto is the case this one was merged into; zero otherwise.
	MergedInto int64
	// ErrorFingerprint groups repeated error reports; empty for other cases.
	ErrorFingerprint string
	Occurrences      int
	MessageCount     int
	CreatedAt        time.Time
	UpdatedAt        time.Time
	FirstResponseAt  time.Time
	PendingSince     time.Time
	SolvedAt         time.Time
	ClosedAt         time.Time
	// LastAgentReplyAt is the last customer-visible agent message; the
	// auto-resolve timers run from it.
	LastAgentReplyAt time.Time
	// RemindedFor is the WaitingSince of the wait the last auto-resolve
	// reminder was for; zero if none was sent. A reminder is due again only
	// once the case waits anew.
	RemindedFor time.Time

	// Filled by lookups that join them.
	Requester    *Contact
	AccountName  string
	AssigneeName string
}

// WaitingSince is when the case started waiting on the customer, the start
// of the auto-resolve clock of a pending case: the later of the last
// customer-visible agent message and the move to pending (a case set
// pending without a message), or UpdatedAt if neither is set. Automatic
// mail from the customer (out-of-office) changes neither.
func (c *Case) WaitingSince() time.Time {
	since := c.LastAgentReplyAt
	if c.PendingSince.After(since) {
		since = c.PendingSince
	}
	if since.IsZero() {
		return c.UpdatedAt
	}
	return since
}

// DueCaseFilter selects the cases of a tenant on which auto-resolve has
// something to do (CaseOps.LockDueCases): pending cases to remind or to
// solve, and solved cases to close. A zero time selects none of its kind.
type DueCaseFilter struct {
	// AfterID and Limit page through the cases by ascending ID.
	AfterID int64
	Limit   int
	// RemindBefore selects pending cases waiting since (WaitingSince) at
	// or before it whose RemindedFor is not that instant.
	RemindBefore time.Time
	// SolveBefore selects pending cases waiting since at or before it.
	SolveBefore time.Time
	// CloseBefore selects solved cases solved at or before it.
	CloseBefore time.Time
}

// NewCase is the input for creating a case; its number is allocated by the store.
type NewCase struct {
	TenantID         int64
	Subject          string
	Status           Status   // new when empty
	Priority         Priority // normal when empty
	Category         string   // email when empty
	RequesterID      int64
	AccountID        int64
	AssigneeID       int64
	Fields           json.RawMessage
	FollowUpOf       int64
	ErrorFingerprint string
}

// Validate fills defaults and reports the first problem as EINVALID.
func (n *NewCase) Validate() error {
	if n.Status == "" {
		n.Status = StatusNew
	}
	if n.Priority == "" {
		n.Priority = PriorityNormal
	}
	if n.Category == "" {
		n.Category = CategoryEmail
	}
	switch {
	case n.TenantID == 0:
		return Errorf(EINVALID, "tenant is required")
	case n.RequesterID == 0:
		return Errorf(EINVALID, "requester is required")
	case !n.Status.Valid() || n.Status == StatusClosed:
		return Errorf(EINVALID, "a case cannot start as %q", n.Status)
	case !n.Priority.Valid():
		return Errorf(EINVALID, "unknown priority %q", n.Priority)
	case len(n.Fields) > 0 && !json.Valid(n.Fields):
		return Errorf(EINVALID, "fields are not valid JSON")
	}
	return nil
}

// CaseFilter selects and orders cases for a listing.
type CaseFilter struct {
	Statuses       []Status
	Priority       Priority
	Category       string
	AssigneeID     int64
	AccountID      int64
	RequesterEmail string // exact, case-insensitive
	// Requester and Account match part of the requester's name or email,
	// and of the account's name, case-insensitively.
	Requester string
	Account   string
	// Q searches the subject and the text of the case's mail (PostgreSQL
	// full-text search, websearch syntax). Mail is found by its text once
	// the search indexer has indexed it, seconds after it arrived.
	Q string
	// WithoutNotes keeps internal notes out of the search, for readers
	// who may not see them.
	WithoutNotes bool
	CreatedFrom  time.Time
	CreatedTo    time.Time // exclusive
	Sort         string    // a CaseSortColumns key, optionally prefixed by "-" for descending
	Limit        int
	Cursor       string // from a previous page's NextCursor
}

// CaseSortColumns are the columns a case listing can be sorted by.
var CaseSortColumns = []string{
	"number", "subject", "status", "priority", "category", "requester",
	"account", "assignee", "message_count", "created_at", "updated_at",
}

// Listing limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// ParseSort splits "-created_at" into the column and direction and checks
// the column is sortable. The default is newest first.
func ParseSort(sort string) (column string, desc bool, err error) {
	if sort == "" {
		return "created_at", true, nil
	}
	column, desc = strings.TrimPrefix(sort, "-"), strings.HasPrefix(sort, "-")
	for _, c := range CaseSortColumns {
		if c == column {
			return column, desc, nil
		}
	}
	return "", false, Errorf(EINVALID, "cannot sort by %q", sort)
}

// PageSize clamps a requested page size.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// CasePage is one page of a listing.
type CasePage struct {
	Cases      []*Case
	NextCursor string // empty on the last page
}

// CaseRef renders a case number the way people see it.
func CaseRef(number int64) string { return fmt.Sprintf("#%d", number) }
