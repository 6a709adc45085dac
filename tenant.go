package casedesk

import (
	"strings"
	"time"
)

// TenantKind tells production workspaces from their sandboxes.
type TenantKind string

// Tenant kinds.
const (
	TenantProduction TenantKind = "production"
	TenantSandbox    TenantKind = "sandbox"
)

// Tenant is an isolated workspace: its mailboxes, settings, templates, users,
// accounts, contacts and cases. Every row of tenant data carries its ID.
type Tenant struct {
	ID   int64
	Slug string // stable short name, unique across the installation
	Name string
	Kind TenantKind
	// ParentID is the production tenant of a sandbox; zero for production.
	ParentID int64
	// SupportAddress is where customers write; outbound mail comes from it.
	SupportAddress string
	// TokenSecret keys the HMAC of case tokens in Message-IDs and
	// plus-addresses. Generated at creation, never shown through the API.
	TokenSecret []byte
	Settings    TenantSettings
	// Ready is false while a sandbox is being built: its keys are refused
	// until the build finishes. Production tenants are always ready.
	Ready bool
	// RetiredAt is when a sandbox was replaced or deleted; zero for a live
	// tenant. A retired tenant's keys are refused and its data is purged.
	RetiredAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TenantSettings are the per-tenant knobs of the lifecycle and mail rules.
// Zero values mean "use the default"; read them through the methods.
type TenantSettings struct {
	ReminderAfter time.Duration `json:"reminder_after,omitempty"`
	SolveAfter    time.Duration `json:"solve_after,omitempty"`
	CloseAfter    time.Duration `json:"close_after,omitempty"`
	// AckLimitPerHour caps acknowledgements to one address per hour.
	AckLimitPerHour int `json:"ack_limit_per_hour,omitempty"`
	// SubjectTagPrefix is the word in "[Case #123]".
	SubjectTagPrefix string `json:"subject_tag_prefix,omitempty"`
	// SupportAccess enables the support-access role (off by default).
	SupportAccess bool `json:"support_access,omitempty"`
	// Language is the default template language.
	Language string `json:"language,omitempty"`
}

// Lifecycle and mail defaults from DESIGN.md.
const (
	DefaultReminderAfter   = 3 * 24 * time.Hour
	DefaultSolveAfter      = 7 * 24 * time.Hour
	DefaultCloseAfter      = 14 * 24 * time.Hour
	DefaultAckLimitPerHour = 5
	DefaultSubjectTag      = "Case"
	DefaultLanguage        = "en"
)

// Reminder returns how long a case may wait on the customer before a reminder.
func (s TenantSettings) Reminder() time.Duration {
	return orDefault(s.ReminderAfter, DefaultReminderAfter)
}

// Solve returns how long a case may wait on the customer before it is solved.
func (s TenantSettings) Solve() time.Duration {
	return orDefault(s.SolveAfter, DefaultSolveAfter)
}

// Close returns how long a solved case stays solved before it is closed.
func (s TenantSettings) Close() time.Duration {
	return orDefault(s.CloseAfter, DefaultCloseAfter)
}

// AckLimit returns the per-address acknowledgement limit per hour.
func (s TenantSettings) AckLimit() int {
	if s.AckLimitPerHour <= 0 {
		return DefaultAckLimitPerHour
	}
	return s.AckLimitPerHour
}

// TagPrefix returns the word used in subject tags.
func (s TenantSettings) TagPrefix() string {
	if strings.TrimSpace(s.SubjectTagPrefix) == "" {
		return DefaultSubjectTag
	}
	return s.SubjectTagPrefix
}

// Lang returns the default template language.
func (s TenantSettings) Lang() string {
	if s.Language == "" {
		return DefaultLanguage
	}
	return s.Language
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// NewTenant is the input for creating a tenant.
type NewTenant struct {
	Slug           string
	Name           string
	Kind           TenantKind // production when empty
	ParentID       int64      // required for a sandbox
	SupportAddress string
	Settings       TenantSettings
}

// Validate reports the first problem with the input as an EINVALID error.
func (n *NewTenant) Validate() error {
	if n.Kind == "" {
		n.Kind = TenantProduction
	}
	switch {
	case !validSlug(n.Slug):
		return Errorf(EINVALID, "slug %q: use 1-63 lower-case letters, digits and dashes", n.Slug)
	case strings.TrimSpace(n.Name) == "":
		return Errorf(EINVALID, "name is required")
	case n.Kind != TenantProduction && n.Kind != TenantSandbox:
		return Errorf(EINVALID, "kind %q: must be production or sandbox", n.Kind)
	case n.Kind == TenantSandbox && n.ParentID == 0:
		return Errorf(EINVALID, "a sandbox needs a production parent")
	case n.Kind == TenantProduction && n.ParentID != 0:
		return Errorf(EINVALID, "a production tenant has no parent")
	case n.SupportAddress != "" && !ValidEmail(n.SupportAddress):
		return Errorf(EINVALID, "support address %q is not an email address", n.SupportAddress)
	}
	return nil
}

func validSlug(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
