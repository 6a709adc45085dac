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
// (cents), so no float ever touches money.
type Invoice struct {
	ID          int64
	TenantID    int64
	AccountID   int64
	Number      string // unique per tenant
	PeriodStart time.Time
	PeriodEnd   time.Time
	AmountMinor int64
	Currency    string // ISO 4217, upper case
	Status      InvoiceStatus
	DueDate     time.Time
	Lines       []InvoiceLine
	SentAt      time.Time // zero until first emailed
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// InvoiceLine is one line item.
type InvoiceLine struct {
	Description    string `json:"description"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
}
