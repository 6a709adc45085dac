package casedesk

import "time"

// InvoiceStatus is where an invoice stands.
type InvoiceStatus string

// Invoice statuses.
const (
	InvoiceOpen    InvoiceStatus = "open"
	InvoicePaid    InvoiceStatus = "paid"
	InvoiceOverdue InvoiceStatus = "overdue"
	InvoiceVoid    InvoiceStatus = "void"
)

// Invoice belongs to an account. Amounts are in minor units of Currency
// (cents), so no float ever touches money. Dates are calendar days, kept
// as midnight UTC.
type Invoice struct {
	ID          int64
	TenantID    int64
	AccountID   int64
	Number      string // unique per tenant; ValidInvoiceNumber
	PeriodStart time.Time
	PeriodEnd   time.Time
	IssueDate   time.Time
	DueDate     time.Time
	AmountMinor int64  // the sum of the lines
	Currency    string // ISO 4217, upper case; CurrencyExponent knows it
	Status      InvoiceStatus
	Lines       []InvoiceLine
	SentAt      time.Time // zero until first emailed
	RemindedAt  time.Time // zero until the overdue reminder was queued
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Account and BillingContact are filled by the lookups that say so;
	// BillingContact is nil when the account has none.
	Account        *Account
	BillingContact *Contact
}

// InvoiceLine is one line item.
type InvoiceLine struct {
	Description    string `json:"description"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
}

// SandboxJobKind is what a sandbox job does.
type SandboxJobKind string

// Sandbox job kinds.
const (
	SandboxCreateEmpty     SandboxJobKind = "create_empty"
	SandboxCloneAnonymised SandboxJobKind = "clone_anonymised" // the default clone
	SandboxCloneFull       SandboxJobKind = "clone_full"       // explicit opt-in, audited
	SandboxDelete          SandboxJobKind = "delete"
)

// JobState is the progress of a background job.
type JobState string

// Job states.
const (
	JobQueued  JobState = "queued"
	JobRunning JobState = "running"
	JobDone    JobState = "done"
	JobFailed  JobState = "failed"
)

// SandboxJob creates, clones or deletes the sandbox of a production tenant
// in the background, with progress readable through the API.
type SandboxJob struct {
	ID              int64
	TenantID        int64 // the production tenant
	SandboxTenantID int64
	Kind            SandboxJobKind
	State           JobState
	Progress        int64 // rows done
	Total           int64 // rows to do, when known
	Error           string
	RequestedBy     int64 // user
	CreatedAt       time.Time
	StartedAt       time.Time
	FinishedAt      time.Time
}
