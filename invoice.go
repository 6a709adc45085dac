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
