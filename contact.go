package casedesk

import (
	"strings"
	"time"
)

// Account is a customer organisation.
type Account struct {
	ID       int64
	TenantID int64
	Name     string
	// Domains are lower-case email domains whose senders belong here.
	Domains []string
	SLATier string
	// BillingContactID receives invoices; zero when unset.
	BillingContactID int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// NewAccount is the input for creating an account.
type NewAccount struct {
	TenantID         int64
	Name             string
	Domains          []string
	SLATier          string
	BillingContactID int64
}

// Validate checks the input and normalises the domains to lower case.
func (n *NewAccount) Validate() error {
	if strings.TrimSpace(n.Name) == "" {
		return Errorf(EINVALID, "account name is required")
	}
	for i, d := range n.Domains {
		d = strings.ToLower(strings.TrimSpace(d))
		if d == "" || strings.ContainsAny(d, "@ \t") || !strings.Contains(d, ".") {
			return Errorf(EINVALID, "domain %q is not a mail domain", n.Domains[i])
		}
		n.Domains[i] = d
	}
	return nil
}

// Contact is a person who writes in. Email is unique per tenant, compared
// case-insensitively.
type Contact struct {
	ID        int64
	TenantID  int64
	Email     string
	Name      string
	Phone     string
	AccountID int64 // zero when the contact belongs to no account
	// BouncingSince is set when mail to this address bounced; zero otherwise.
	BouncingSince time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// ValidEmail reports whether s looks like a single addr-spec (local@domain).
// It is deliberately lenient: mail from the wild is accepted as long as it
// can be addressed.
func ValidEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || len(s) > 320 {
		return false
	}
	return !strings.ContainsAny(s, " \t\r\n<>,;\x00")
}

// Deliverable reports whether mail to an address can arrive: a valid
// address outside the reserved "invalid" domain (RFC 2606), where contacts
// whose sender could not be told live.
func Deliverable(addr string) bool {
	d := EmailDomain(addr)
	return ValidEmail(addr) && d != "invalid" && !strings.HasSuffix(d, ".invalid")
}

// EmailDomain returns the lower-case domain part of an address.
func EmailDomain(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(addr[at+1:])
}

// NewContact is the input for creating a contact.
type NewContact struct {
	TenantID  int64
	Email     string
	Name      string
	Phone     string
	AccountID int64 // zero: the account of the email's domain, if any
}

// ContactUpdate changes a contact; nil fields stay as they are. AccountID
// 0 takes the contact out of its account.
type ContactUpdate struct {
	Name      *string
	Phone     *string
	AccountID *int64
}

// ContactFilter selects contacts, ordered by ID.
type ContactFilter struct {
	Q         string // part of the name or email, case-insensitive
	AccountID int64
	Limit     int
	Cursor    string
}

// ContactPage is one page of contacts.
type ContactPage struct {
	Contacts   []*Contact
	NextCursor string // empty on the last page
}

// AccountUpdate changes an account; nil fields stay as they are.
type AccountUpdate struct {
	Name             *string
	Domains          *[]string
	SLATier          *string
	BillingContactID *int64 // 0: none
}

// AccountFilter selects accounts, ordered by ID.
type AccountFilter struct {
	Q      string // part of the name, case-insensitive
	Limit  int
	Cursor string
}

// AccountPage is one page of accounts.
type AccountPage struct {
	Accounts   []*Account
	NextCursor string
}
