package casedesk

import (
	"encoding/json"
	"time"
)

// Event kinds written to a case's history.
const (
	EventCreated       = "created"
	EventStatusChanged = "status_changed"
	EventAssigned      = "assigned"
	EventPriority      = "priority_changed"
	EventMerged        = "merged"
	EventReminder      = "reminder_sent"
	EventBounce        = "bounce"
	EventAutoAction    = "auto_action"
	EventDeliveryFail  = "delivery_failed"
	EventOccurrence    = "occurrence"
	EventFollowUp      = "follow_up"
)

// Actor is who did something: a user, a contact, or the system itself.
type Actor struct {
	Kind   AuthorKind `json:"kind"`
	UserID int64      `json:"user_id,omitempty"`
	// ContactID is set when a customer's mail caused the change.
	ContactID int64 `json:"contact_id,omitempty"`
}

// SystemActor is the actor of automatic changes (jobs, the pipeline).
var SystemActor = Actor{Kind: AuthorSystem}

// Event is one entry in a case's history. Events are append-only.
type Event struct {
	ID        int64
	TenantID  int64
	CaseID    int64
	Kind      string
	Actor     Actor
	Data      json.RawMessage // kind-specific details, a JSON object
	CreatedAt time.Time
}

// AuditEntry records an admin API write or a support-access read.
// The audit log is append-only.
type AuditEntry struct {
	ID         int64
	TenantID   int64
	UserID     int64 // zero for the system
	Action     string
	TargetKind string
	TargetID   string
	Data       json.RawMessage
	CreatedAt  time.Time
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	UserID     int64
	Action     string
	TargetKind string
	TargetID   string
	From, To   time.Time
	Limit      int
	BeforeID   int64 // cursor: entries with a smaller ID
}
