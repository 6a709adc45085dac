package casedesk

import (
	"slices"
	"strings"
	"time"
)

// Permission is one thing a role allows, named "resource:action".
type Permission string

// Permissions, the building blocks of every role.
const (
	PermCasesRead      Permission = "cases:read"
	PermCasesWrite     Permission = "cases:write"
	PermCasesReply     Permission = "cases:reply"
	PermCasesCreate    Permission = "cases:create"
	PermCasesReadOwn   Permission = "cases:read_own" // own cases and own account's cases
	PermContactsRead   Permission = "contacts:read"
	PermContactsWrite  Permission = "contacts:write"
	PermAccountsRead   Permission = "accounts:read"
	PermAccountsWrite  Permission = "accounts:write"
	PermUsersRead      Permission = "users:read"
	PermUsersWrite     Permission = "users:write"
	PermSandboxManage  Permission = "sandboxes:manage"
	PermInvoicesRead   Permission = "invoices:read"
	PermInvoicesSend   Permission = "invoices:send"
	PermInvoicesWrite  Permission = "invoices:write"
	PermSettingsRead   Permission = "settings:read" // view administration details
	PermSettingsWrite  Permission = "settings:write"
	PermAuditRead      Permission = "audit:read"
	PermQuarantineRead Permission = "quarantine:read"
	PermQuarantineFix  Permission = "quarantine:write"
)

// AllPermissions lists every permission, in a stable order.
var AllPermissions = []Permission{
	PermCasesRead, PermCasesWrite, PermCasesReply, PermCasesCreate, PermCasesReadOwn,
	PermContactsRead, PermContactsWrite, PermAccountsRead, PermAccountsWrite,
	PermUsersRead, PermUsersWrite, PermSandboxManage,
	PermInvoicesRead, PermInvoicesSend, PermInvoicesWrite,
	PermSettingsRead, PermSettingsWrite, PermAuditRead,
	PermQuarantineRead, PermQuarantineFix,
}

// Valid reports whether p is a known permission.
func (p Permission) Valid() bool { return slices.Contains(AllPermissions, p) }

// IsWrite reports whether p changes anything (everything but reads).
func (p Permission) IsWrite() bool {
	_, action, _ := strings.Cut(string(p), ":")
	return action != "read" && action != "read_own"
}

// Built-in role names.
const (
	RoleAdmin         = "admin"
	RoleTechnical     = "technical"
	RoleSupport       = "support"
	RoleFinance       = "finance"
	RoleGeneral       = "general"
	RoleSupportAccess = "support-access"
)

// Role is a named set of permissions. Built-in roles exist in every tenant;
// custom roles are sets of the same permissions.
type Role struct {
	ID          int64
	TenantID    int64
	Name        string
	Permissions []Permission
	BuiltIn     bool
}

// Has reports whether the role grants p.
func (r *Role) Has(p Permission) bool { return slices.Contains(r.Permissions, p) }

// BuiltInRoles returns the roles every tenant starts with (DESIGN.md RBAC).
func BuiltInRoles() []Role {
	return []Role{
		{Name: RoleAdmin, BuiltIn: true, Permissions: slices.Clone(AllPermissions)},
		{Name: RoleTechnical, BuiltIn: true, Permissions: []Permission{
			PermCasesRead, PermCasesWrite, PermSandboxManage, PermSettingsRead}},
		{Name: RoleSupport, BuiltIn: true, Permissions: []Permission{
			PermCasesRead, PermCasesWrite, PermCasesReply, PermContactsRead}},
		{Name: RoleFinance, BuiltIn: true, Permissions: []Permission{
			PermInvoicesRead, PermInvoicesSend, PermAccountsRead}},
		{Name: RoleGeneral, BuiltIn: true, Permissions: []Permission{
			PermCasesCreate, PermCasesReadOwn}},
		{Name: RoleSupportAccess, BuiltIn: true, Permissions: []Permission{
			PermCasesRead, PermContactsRead, PermAccountsRead, PermSettingsRead}},
	}
}

// ValidateRole checks a role's name and permissions. The support-access role
// may only ever hold read permissions.
func ValidateRole(name string, perms []Permission) error {
	if strings.TrimSpace(name) == "" || len(name) > 64 {
		return Errorf(EINVALID, "role name must be 1-64 characters")
	}
	for _, p := range perms {
		if !p.Valid() {
			return Errorf(EINVALID, "unknown permission %q", p)
		}
		if name == RoleSupportAccess && p.IsWrite() {
			return Errorf(EINVALID, "the support-access role cannot hold the write permission %q", p)
		}
	}
	return nil
}

// User is a staff or portal user. A user whose role has cases:reply is an
// agent: their mail onto a case is an agent reply.
type User struct {
	ID           int64
	TenantID     int64
	Email        string
	Name         string
	RoleID       int64
	Role         *Role // filled by lookups that join the role
	Active       bool
	LastActiveAt time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// IsAgent reports whether the user may reply to cases.
func (u *User) IsAgent() bool {
	return u.Active && u.Role != nil && u.Role.Has(PermCasesReply)
}

// NewUser is the input for creating a user.
type NewUser struct {
	TenantID int64
	Email    string
	Name     string
	RoleName string
}

// APIKey authenticates one user of one tenant. Only a hash of the secret is
// stored; the secret is shown once, when the key is created.
type APIKey struct {
	ID         int64
	TenantID   int64
	UserID     int64
	Name       string
	Hash       []byte // sha256 of the secret
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	RevokedAt  time.Time // zero: not revoked
	LastUsedAt time.Time
}

// Usable reports whether the key may authenticate a request at now.
func (k *APIKey) Usable(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// NormalizeAgentAddress lower-cases an address and strips a "+tag" from its
// local part, so mail from "Ann+x@Example.com" matches "ann@example.com".
func NormalizeAgentAddress(addr string) string {
	addr = strings.ToLower(strings.TrimSpace(addr))
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	local, domain := addr[:at], addr[at:]
	if plus := strings.IndexByte(local, '+'); plus > 0 {
		local = local[:plus]
	}
	return local + domain
}
