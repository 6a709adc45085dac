package casedesk

import (
	"context"
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of an invoice.
const (
	MaxInvoiceNumberLen   = 64
	MaxInvoiceLines       = 1000
	MaxLineDescriptionLen = 1000 // characters
)

// Valid reports whether s is an invoice status.
func (s InvoiceStatus) Valid() bool {
	switch s {
	case InvoiceOpen, InvoicePaid, InvoiceOverdue, InvoiceVoid:
		return true
	}
	return false
}

// ValidInvoiceNumber reports whether s can number an invoice: 1 to 64
// letters, digits, '.', '_' or '-', starting with a letter or digit, so
// that it is one path segment of the API and a safe file name as it is.
func ValidInvoiceNumber(s string) bool {
	if s == "" || len(s) > MaxInvoiceNumberLen || !isAlnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// InvoiceFileName is the file name of an invoice's PDF. Numbers stored
// before ValidInvoiceNumber was enforced may hold other characters; they
// become '_'.
func InvoiceFileName(number string) string {
	b := []byte(number)
	for i, c := range b {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			b[i] = '_'
		}
	}
	return "invoice-" + strings.TrimLeft(string(b), ".") + ".pdf"
}

// Day returns the calendar day of t (in t's own location) as midnight
// UTC, the form invoice dates are kept in.
func Day(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// TotalMinor is the line's amount, quantity times unit price, or EINVALID
// if that does not fit in 64 bits.
func (l InvoiceLine) TotalMinor() (int64, error) {
	total, ok := mulInt64(l.Quantity, l.UnitPriceMinor)
	if !ok {
		return 0, Errorf(EINVALID, "quantity %d times unit price %d is too large", l.Quantity, l.UnitPriceMinor)
	}
	return total, nil
}

// InvoiceTotal is the sum of the lines' amounts, or EINVALID on overflow.
func InvoiceTotal(lines []InvoiceLine) (int64, error) {
	var sum int64
	for i, l := range lines {
		t, err := l.TotalMinor()
		if err != nil {
			return 0, Errorf(EINVALID, "lines[%d]: %s", i, ErrorMessage(err))
		}
		s := sum + t
		// Overflow: both operands of one sign and the sum of the other.
		if (sum >= 0) == (t >= 0) && (s >= 0) != (sum >= 0) {
			return 0, Errorf(EINVALID, "the sum of the lines is too large")
		}
		sum = s
	}
	return sum, nil
}

// mulInt64 multiplies exactly, reporting whether the product fits.
func mulInt64(a, b int64) (int64, bool) {
	neg := (a < 0) != (b < 0)
	hi, lo := bits.Mul64(absUint64(a), absUint64(b))
	if hi != 0 {
		return 0, false
	}
	if neg {
		if lo > 1<<63 {
			return 0, false
		}
		return int64(-lo), true // -(1<<63) wraps onto itself, which is right
	}
	if lo > 1<<63-1 {
		return 0, false
	}
	return int64(lo), true
}

func absUint64(v int64) uint64 {
	if v < 0 {
		return -uint64(v)
	}
	return uint64(v)
}

// NewInvoice is the input for creating an invoice.
type NewInvoice struct {
	TenantID    int64
	AccountID   int64
	Number      string
	PeriodStart time.Time
	PeriodEnd   time.Time
	IssueDate   time.Time
	DueDate     time.Time
	Currency    string
	Status      InvoiceStatus // empty: open
	Lines       []InvoiceLine
	// AmountMinor, when set, must equal the sum of the lines: a check
	// that client and server added up the same thing.
	AmountMinor *int64
}

// Validate checks the input, naming the field at fault in an EINVALID
// error, and normalises the dates to calendar days and an empty status to
// open. It returns the invoice's amount, the sum of its lines.
func (n *NewInvoice) Validate() (int64, error) {
	switch {
	case n.AccountID <= 0:
		return 0, Errorf(EINVALID, "field \"account_id\" is required")
	case n.Number == "":
		return 0, Errorf(EINVALID, "field \"number\" is required")
	case !ValidInvoiceNumber(n.Number):
		return 0, Errorf(EINVALID, "field \"number\" %q must be 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit",
			clipText(n.Number, 80), MaxInvoiceNumberLen)
	}
	if _, ok := CurrencyExponent(n.Currency); !ok {
		return 0, Errorf(EINVALID, "field \"currency\" %q is not an ISO 4217 code casedesk knows (three upper-case letters, e.g. EUR)",
			clipText(n.Currency, 20))
	}
	if n.Status == "" {
		n.Status = InvoiceOpen
	}
	if !n.Status.Valid() {
		return 0, Errorf(EINVALID, "field \"status\" must be open, paid, overdue or void, not %q", clipText(string(n.Status), 20))
	}
	if err := n.validateDates(); err != nil {
		return 0, err
	}
	return n.validateLines()
}

func (n *NewInvoice) validateDates() error {
	for _, d := range []struct {
		name string
		t    *time.Time
	}{{"period_start", &n.PeriodStart}, {"period_end", &n.PeriodEnd}, {"issue_date", &n.IssueDate}, {"due_date", &n.DueDate}} {
		if d.t.IsZero() {
			return Errorf(EINVALID, "field %q is required", d.name)
		}
		if y := d.t.Year(); y < 1900 || y > 9999 {
			return Errorf(EINVALID, "field %q is out of range", d.name)
		}
		*d.t = Day(*d.t)
	}
	if n.PeriodEnd.Before(n.PeriodStart) {
		return Errorf(EINVALID, "field \"period_end\" is before \"period_start\"")
	}
	if n.DueDate.Before(n.IssueDate) {
		return Errorf(EINVALID, "field \"due_date\" is before \"issue_date\"")
	}
	return nil
}

func (n *NewInvoice) validateLines() (int64, error) {
	switch {
	case len(n.Lines) == 0:
		return 0, Errorf(EINVALID, "field \"lines\" needs at least one line")
	case len(n.Lines) > MaxInvoiceLines:
		return 0, Errorf(EINVALID, "field \"lines\" has %d lines; at most %d are allowed", len(n.Lines), MaxInvoiceLines)
	}
	for i, l := range n.Lines {
		switch {
		case !utf8.ValidString(l.Description) || strings.ContainsRune(l.Description, 0):
			return 0, Errorf(EINVALID, "field \"lines[%d].description\" is not valid text", i)
		case utf8.RuneCountInString(l.Description) > MaxLineDescriptionLen:
			return 0, Errorf(EINVALID, "field \"lines[%d].description\" is longer than %d characters", i, MaxLineDescriptionLen)
		case l.Quantity <= 0:
			return 0, Errorf(EINVALID, "field \"lines[%d].quantity\" must be positive", i)
		}
	}
	total, err := InvoiceTotal(n.Lines)
	switch {
	case err != nil:
		return 0, err
	case total < 0:
		return 0, Errorf(EINVALID, "the lines add up to %s; an invoice cannot be negative", FormatMinor(total, n.Currency))
	case n.AmountMinor != nil && *n.AmountMinor != total:
		return 0, Errorf(EINVALID, "field \"amount_minor\" is %d, but the lines add up to %d", *n.AmountMinor, total)
	}
	return total, nil
}

// clipText cuts s to at most n bytes on a rune boundary, for messages.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// CheckInvoiceTransition reports whether an invoice may move from one
// status to another: open to paid, overdue or void; overdue to paid or
// void. Paid and void are final. The same status is allowed (a no-op).
func CheckInvoiceTransition(from, to InvoiceStatus) error {
	if !to.Valid() {
		return Errorf(EINVALID, "unknown invoice status %q", clipText(string(to), 20))
	}
	if from == to {
		return nil
	}
	switch {
	case from == InvoiceOpen && (to == InvoicePaid || to == InvoiceOverdue || to == InvoiceVoid),
		from == InvoiceOverdue && (to == InvoicePaid || to == InvoiceVoid):
		return nil
	case from == InvoicePaid || from == InvoiceVoid:
		return Errorf(EINVALID, "the invoice is %s, which is final", from)
	}
	return Errorf(EINVALID, "an invoice cannot go from %s to %s", from, to)
}

// InvoiceSortColumns are the columns an invoice listing can be sorted by;
// "account" sorts by the account's name.
var InvoiceSortColumns = []string{"number", "account", "period_start", "period_end", "issue_date", "due_date",
	"amount_minor", "currency", "status", "sent_at", "created_at", "updated_at"}

// DefaultInvoiceSort is the sort of a listing that names none, newest first.
const DefaultInvoiceSort = "issue_date"

// InvoiceFilter selects and orders invoices. The listing pages with a
// keyset cursor on (sort column, ID), which the store issues.
type InvoiceFilter struct {
	AccountID int64
	Statuses  []InvoiceStatus
	// PeriodFrom and PeriodTo select invoices whose period overlaps the
	// days between them (both included); zero leaves that end open.
	PeriodFrom time.Time
	PeriodTo   time.Time
	Sort       string // one of InvoiceSortColumns; empty: DefaultInvoiceSort, descending
	Desc       bool
	Limit      int
	Cursor     string
}

// Validate checks the filter's values and fills in the default sort.
func (f *InvoiceFilter) Validate() error {
	if f.Sort == "" {
		f.Sort, f.Desc = DefaultInvoiceSort, true
	}
	known := false
	for _, c := range InvoiceSortColumns {
		known = known || c == f.Sort
	}
	if !known {
		return Errorf(EINVALID, "cannot sort invoices by %q; the columns are %s", clipText(f.Sort, 40),
			strings.Join(InvoiceSortColumns, ", "))
	}
	for _, s := range f.Statuses {
		if !s.Valid() {
			return Errorf(EINVALID, "unknown invoice status %q", clipText(string(s), 20))
		}
	}
	if !f.PeriodFrom.IsZero() && !f.PeriodTo.IsZero() && f.PeriodTo.Before(f.PeriodFrom) {
		return Errorf(EINVALID, "period_to is before period_from")
	}
	return nil
}

// InvoicePage is one page of invoices.
type InvoicePage struct {
	Invoices   []*Invoice
	NextCursor string // empty on the last page
}

// InvoiceMailKind is which mail about an invoice is due.
type InvoiceMailKind int

// Mail about an invoice.
const (
	InvoiceMailNone    InvoiceMailKind = iota
	InvoiceMailNew                     // the invoice itself, once, from its issue date
	InvoiceMailOverdue                 // one reminder, once the due date has passed
)

// InvoiceMailDue says which automatic mail an invoice needs on the day
// today: the reminder once its due date has passed, if it is open or
// overdue and was not reminded; else, from its issue date, the invoice
// itself if it is open and was never sent. An invoice first seen after
// its due date gets only the reminder, which carries the PDF too.
func InvoiceMailDue(inv *Invoice, today time.Time) InvoiceMailKind {
	today = Day(today)
	if inv.Status != InvoiceOpen && inv.Status != InvoiceOverdue {
		return InvoiceMailNone
	}
	if inv.DueDate.Before(today) {
		if inv.RemindedAt.IsZero() {
			return InvoiceMailOverdue
		}
		return InvoiceMailNone
	}
	if inv.Status == InvoiceOpen && inv.SentAt.IsZero() && !inv.IssueDate.After(today) {
		return InvoiceMailNew
	}
	return InvoiceMailNone
}

// DueInvoiceFilter selects the invoices that InvoiceMailDue gives mail to
// on the day Today and whose account has a billing contact, by ascending
// ID after AfterID, at most Limit of them.
type DueInvoiceFilter struct {
	Today   time.Time
	AfterID int64
	Limit   int
}

// InvoiceOps keep invoices and what their mail needs.
type InvoiceOps interface {
	// CreateInvoices validates and creates invoices of one tenant, all or
	// none, in a constant number of round trips; results are in input
	// order. A number the tenant has, or one given twice, is ECONFLICT;
	// an account not of the tenant EINVALID. On an error the caller must
	// roll the transaction back.
	CreateInvoices(ctx context.Context, tenantID int64, ns []NewInvoice) ([]*Invoice, error)
	// FindInvoiceByNumber returns an invoice with its account and billing
	// contact.
	FindInvoiceByNumber(ctx context.Context, tenantID int64, number string) (*Invoice, error)
	// ListInvoices returns a page of invoices, with their accounts.
	ListInvoices(ctx context.Context, tenantID int64, f InvoiceFilter) (*InvoicePage, error)
	// SetInvoiceStatus moves an invoice to a status (CheckInvoiceTransition)
	// and returns it with its account and billing contact; the same status
	// is a no-op.
	SetInvoiceStatus(ctx context.Context, tenantID int64, number string, to InvoiceStatus) (*Invoice, error)
	// LockDueInvoices returns the invoices DueInvoiceFilter selects, with
	// their accounts and billing contacts, in one round trip, and locks
	// them until the transaction ends. Invoices another transaction has
	// locked are skipped: they wait for a later call.
	LockDueInvoices(ctx context.Context, tenantID int64, f DueInvoiceFilter) ([]*Invoice, error)
	// MarkInvoicesMailed records mail queued for invoices, in one round
	// trip: InvoiceMailNew sets SentAt where it is zero (an unknown
	// invoice is ENOTFOUND); InvoiceMailOverdue also sets RemindedAt, and
	// an open invoice becomes overdue (an invoice reminded already, or
	// unknown, is ECONFLICT). On an error the caller must roll back.
	MarkInvoicesMailed(ctx context.Context, tenantID int64, ids []int64, kind InvoiceMailKind) error
	// MarkInvoicesOverdue moves up to limit open invoices whose due date
	// is before today to overdue, and returns how many it moved.
	MarkInvoicesOverdue(ctx context.Context, tenantID int64, today time.Time, limit int) (int, error)
	// SaveBlobs stores contents as blobs of the tenant, once per content,
	// in one round trip, and returns their sha256 sums in input order: an
	// outbox payload names them to attach them to its mail.
	SaveBlobs(ctx context.Context, tenantID int64, contents [][]byte) ([][]byte, error)
}

// InvoiceRenderer renders an invoice (with its account and billing
// contact) as a PDF; vendor is the name of the tenant that issues it.
type InvoiceRenderer func(vendor string, inv *Invoice) ([]byte, error)

// QueueInvoiceMail renders the invoices' PDFs, stores them, queues one
// mail of kind for each to its account's billing contact, with the PDF
// attached (template "invoice", marked overdue for reminders and for
// invoices already overdue), and records it (MarkInvoicesMailed), all in
// tx. Each invoice needs its account and a deliverable billing contact.
func QueueInvoiceMail(ctx context.Context, tx Tx, t *Tenant, invs []*Invoice, kind InvoiceMailKind, render InvoiceRenderer) ([]*OutboxItem, error) {
	if len(invs) == 0 {
		return nil, nil
	}
	pdfs := make([][]byte, len(invs))
	ids := make([]int64, len(invs))
	for i, inv := range invs {
		if err := CheckInvoiceRecipient(inv); err != nil {
			return nil, err
		}
		pdf, err := render(t.Name, inv)
		if err != nil {
			return nil, fmt.Errorf("render invoice %s: %w", inv.Number, err)
		}
		pdfs[i], ids[i] = pdf, inv.ID
	}
	sums, err := tx.SaveBlobs(ctx, t.ID, pdfs)
	if err != nil {
		return nil, fmt.Errorf("store invoice PDFs: %w", err)
	}
	mails := make([]NewOutboxItem, len(invs))
	for i, inv := range invs {
		mails[i] = invoiceMail(t, inv, sums[i], kind == InvoiceMailOverdue || inv.Status == InvoiceOverdue)
	}
	items, err := tx.EnqueueOutboxItems(ctx, mails)
	if err != nil {
		return nil, fmt.Errorf("queue invoice mail: %w", err)
	}
	if err := tx.MarkInvoicesMailed(ctx, t.ID, ids, kind); err != nil {
		return nil, err
	}
	return items, nil
}

// CheckInvoiceRecipient reports, as EINVALID, why an invoice cannot be
// emailed: it is void, or its account has no billing contact whose
// address can receive mail.
func CheckInvoiceRecipient(inv *Invoice) error {
	switch {
	case inv.Status == InvoiceVoid:
		return Errorf(EINVALID, "invoice %s is void and is not sent", inv.Number)
	case inv.Account == nil:
		return Errorf(EINVALID, "invoice %s has no account", inv.Number)
	case inv.BillingContact == nil:
		return Errorf(EINVALID, "the account %q of invoice %s has no billing contact: set one (PATCH /v1/accounts/%d)",
			inv.Account.Name, inv.Number, inv.Account.ID)
	case !Deliverable(inv.BillingContact.Email):
		return Errorf(EINVALID, "the billing contact %q of invoice %s cannot receive mail", inv.BillingContact.Email, inv.Number)
	}
	return nil
}

// invoiceMail is the outbox item that emails an invoice, the stored PDF
// with sha256 sum attached. Its payload is what package notify reads.
func invoiceMail(t *Tenant, inv *Invoice, sum []byte, overdue bool) NewOutboxItem {
	p := map[string]any{
		"invoice_number": inv.Number, "account_name": inv.Account.Name,
		"recipient_name": inv.BillingContact.Name,
		"period_start":   inv.PeriodStart, "period_end": inv.PeriodEnd, "issue_date": inv.IssueDate,
		"due_date": inv.DueDate, "amount_minor": inv.AmountMinor, "currency": inv.Currency, "overdue": overdue,
		"attachments": []map[string]string{{"name": InvoiceFileName(inv.Number), "content_type": "application/pdf",
			"sha256": fmt.Sprintf("%x", sum)}},
	}
	payload, _ := json.Marshal(p) // strings, integers, times and booleans only
	return NewOutboxItem{TenantID: t.ID, Kind: OutboxInvoice, To: inv.BillingContact.Email,
		MessageID: fmt.Sprintf("i%d.m%d@%s", inv.ID, OutboundSeq(), MessageIDDomain(t.SupportAddress)),
		Payload:   payload}
}
