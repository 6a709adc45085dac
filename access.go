package casedesk

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// API keys read "cdk_<tenant id>_<secret>": 32 random bytes in unpadded
// base64url. The tenant in the text keeps the lookup tenant-local (by
// tenant and hash); only the sha256 of the whole key is stored.
const apiKeyPrefix = "cdk_"

// NewAPIKeySecret returns a fresh key for a tenant and the hash to store.
func NewAPIKeySecret(tenantID int64) (secret string, hash []byte) {
	var b [32]byte
	rand.Read(b[:])
	secret = apiKeyPrefix + strconv.FormatInt(tenantID, 10) + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashAPIKey(secret)
}

// HashAPIKey returns the stored form of a key.
func HashAPIKey(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// ParseAPIKey reads the tenant out of a key and hashes it. A key not
// exactly in the form NewAPIKeySecret makes (leading zeros, a sign, line
// breaks, non-canonical base64) is EUNAUTHORIZED.
func ParseAPIKey(secret string) (tenantID int64, hash []byte, err error) {
	rest, ok := strings.CutPrefix(secret, apiKeyPrefix)
	tenant, raw, ok2 := strings.Cut(rest, "_")
	id, perr := strconv.ParseInt(tenant, 10, 64)
	b, berr := base64.RawURLEncoding.DecodeString(raw)
	if !ok || !ok2 || perr != nil || id <= 0 || berr != nil || len(b) != 32 ||
		secret != apiKeyPrefix+strconv.FormatInt(id, 10)+"_"+base64.RawURLEncoding.EncodeToString(b) {
		return 0, nil, Errorf(EUNAUTHORIZED, "malformed API key")
	}
	return id, HashAPIKey(secret), nil
}

// NewAPIKey is the input for storing a key; Hash from NewAPIKeySecret.
type NewAPIKey struct {
	TenantID  int64
	UserID    int64
	Name      string
	Hash      []byte
	ExpiresAt time.Time // zero: never
}

// Principal is who makes a request: the key, its user (with the role) and
// the tenant.
type Principal struct {
	Tenant *Tenant
	User   *User
	Key    *APIKey
}

// UserUpdate changes a user; nil fields stay as they are.
type UserUpdate struct {
	Name     *string
	RoleName *string
	Active   *bool
}

// UserFilter selects users, ordered by ID.
type UserFilter struct {
	Limit   int
	AfterID int64 // cursor: users with a greater ID
}

// InactiveAfter is how long a user may go without activity (a request with
// one of their keys, or their mail on a case) before the deactivation job
// turns them off.
const InactiveAfter = 183 * 24 * time.Hour

// AccessOps manage roles, users and API keys.
type AccessOps interface {
	// ListRoles returns the tenant's roles, built-in first, then by name.
	ListRoles(ctx context.Context, tenantID int64) ([]*Role, error)
	// FindRole returns the tenant's role by name.
	FindRole(ctx context.Context, tenantID int64, name string) (*Role, error)
	// CreateRole creates a custom role (ValidateRole); a taken name is
	// ECONFLICT.
	CreateRole(ctx context.Context, tenantID int64, name string, perms []Permission) (*Role, error)
	// UpdateRole replaces a role's permissions. Of the built-in roles only
	// support-access may change, and only to read permissions; the others
	// are EINVALID.
	UpdateRole(ctx context.Context, tenantID int64, name string, perms []Permission) (*Role, error)

	// FindUser returns a user with the role.
	FindUser(ctx context.Context, tenantID, id int64) (*User, error)
	// ListUsers returns users with their roles, by ID.
	ListUsers(ctx context.Context, tenantID int64, f UserFilter) ([]*User, error)
	// UpdateUser changes name, role or active flag; an unknown role is
	// EINVALID.
	UpdateUser(ctx context.Context, tenantID, id int64, u UserUpdate) (*User, error)
	// DeactivateInactiveUsers turns off, in every tenant, the active users
	// whose last activity (or creation, if none) is before since, and
	// returns them. Running it again changes nothing.
	DeactivateInactiveUsers(ctx context.Context, since time.Time) ([]*User, error)

	// CreateAPIKey stores a key for an active user of the tenant.
	CreateAPIKey(ctx context.Context, n NewAPIKey) (*APIKey, error)
	// Authenticate finds the usable key with this hash in the tenant, with
	// its active user and the tenant, and records its use (last_used_at,
	// the user's last_active_at; at most once a minute). An unknown,
	// expired or revoked key, or one of an inactive user, is
	// EUNAUTHORIZED.
	Authenticate(ctx context.Context, tenantID int64, hash []byte) (*Principal, error)
	// ListAPIKeys returns a user's keys (never their hashes' secrets).
	ListAPIKeys(ctx context.Context, tenantID, userID int64) ([]*APIKey, error)
	// RevokeAPIKey revokes a key of the tenant; ENOTFOUND if unknown.
	RevokeAPIKey(ctx context.Context, tenantID, id int64) error

	// UpdateTenantSettings stores a tenant's settings.
	UpdateTenantSettings(ctx context.Context, tenantID int64, s TenantSettings) (*Tenant, error)
}
