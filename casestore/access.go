package casestore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// Roles.

const roleColumns = `r.tenant_id, r.id, r.name, r.permissions, r.built_in`

func scanRole(row pgx.Row) (*casedesk.Role, error) {
	var r casedesk.Role
	var perms []string
	if err := row.Scan(&r.TenantID, &r.ID, &r.Name, &perms, &r.BuiltIn); err != nil {
		return nil, err
	}
	for _, p := range perms {
		r.Permissions = append(r.Permissions, casedesk.Permission(p))
	}
	return &r, nil
}

// ListRoles returns the tenant's roles, built-in first, then by name.
func (t *tx) ListRoles(ctx context.Context, tenantID int64) ([]*casedesk.Role, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+roleColumns+` FROM roles r
		WHERE r.tenant_id = $1 ORDER BY r.built_in DESC, r.name, r.id`, tenantID)
	if err != nil {
		return nil, wrap(err, "list roles")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Role, error) { return scanRole(r) })
	return out, wrap(err, "list roles")
}

// FindRole returns the tenant's role by name.
func (t *tx) FindRole(ctx context.Context, tenantID int64, name string) (*casedesk.Role, error) {
	r, err := scanRole(t.tx.QueryRow(ctx, `SELECT `+roleColumns+` FROM roles r
		WHERE r.tenant_id = $1 AND r.name = $2`, tenantID, clean(name)))
	if err != nil {
		return nil, notFound(err, "role %q not found", clip(name, 100))
	}
	return r, nil
}

// CreateRole creates a custom role. The built-in names are reserved, in
// any letter case, even in a tenant that lacks the built-in role.
func (t *tx) CreateRole(ctx context.Context, tenantID int64, name string, perms []casedesk.Permission) (*casedesk.Role, error) {
	name = strings.TrimSpace(name)
	if err := casedesk.ValidateRole(name, perms); err != nil {
		return nil, err
	}
	for _, b := range casedesk.BuiltInRoles() {
		if strings.EqualFold(name, b.Name) {
			return nil, casedesk.Errorf(casedesk.EINVALID, "%q is the name of a built-in role", name)
		}
	}
	r, err := scanRole(t.tx.QueryRow(ctx, `
		INSERT INTO roles AS r (tenant_id, name, permissions) VALUES ($1, $2, $3)
		RETURNING `+roleColumns, tenantID, name, permissionSet(perms)))
	if err != nil {
		return nil, wrap(err, "create role")
	}
	return r, nil
}

// UpdateRole replaces a role's permissions; see casedesk.AccessOps.
func (t *tx) UpdateRole(ctx context.Context, tenantID int64, name string, perms []casedesk.Permission) (*casedesk.Role, error) {
	if err := casedesk.ValidateRole(name, perms); err != nil {
		return nil, err
	}
	r, err := t.FindRole(ctx, tenantID, name)
	if err != nil {
		return nil, err
	}
	if r.BuiltIn && r.Name != casedesk.RoleSupportAccess {
		return nil, casedesk.Errorf(casedesk.EINVALID, "the built-in role %q cannot be changed", r.Name)
	}
	r, err = scanRole(t.tx.QueryRow(ctx, `UPDATE roles r SET permissions = $3
		WHERE r.tenant_id = $1 AND r.id = $2 RETURNING `+roleColumns, tenantID, r.ID, permissionSet(perms)))
	if err != nil {
		return nil, notFound(err, "role %q not found", clip(name, 100))
	}
	return r, nil
}

// permissionSet stores permissions as a set: each once, in the order of
// casedesk.AllPermissions, never NULL.
func permissionSet(perms []casedesk.Permission) []string {
	out := make([]string, 0, len(perms))
	for _, p := range casedesk.AllPermissions {
		if slices.Contains(perms, p) {
			out = append(out, string(p))
		}
	}
	return out
}

// Users.

// FindUser returns the tenant's user with the role.
func (t *tx) FindUser(ctx context.Context, tenantID, id int64) (*casedesk.User, error) {
	return t.findUser(ctx, `u.tenant_id = $1 AND u.id = $2`, tenantID, id)
}

// ListUsers returns a page of the tenant's users with their roles, by ID.
func (t *tx) ListUsers(ctx context.Context, tenantID int64, f casedesk.UserFilter) ([]*casedesk.User, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+userColumns+` FROM users u
		JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
		WHERE u.tenant_id = $1 AND u.id > $2 ORDER BY u.id LIMIT $3`,
		tenantID, f.AfterID, casedesk.PageSize(f.Limit))
	if err != nil {
		return nil, wrap(err, "list users")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.User, error) { return scanUser(r) })
	return out, wrap(err, "list users")
}

// UpdateUser changes a user's name, role or active flag. Reactivating a
// user counts as activity: without it the next DeactivateInactiveUsers
// would turn a long-idle user off again at once.
func (t *tx) UpdateUser(ctx context.Context, tenantID, id int64, u casedesk.UserUpdate) (*casedesk.User, error) {
	var roleID *int64
	if u.RoleName != nil {
		r, err := t.FindRole(ctx, tenantID, *u.RoleName)
		if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
			return nil, casedesk.Errorf(casedesk.EINVALID, "unknown role %q", clip(*u.RoleName, 100))
		} else if err != nil {
			return nil, err
		}
		roleID = &r.ID
	}
	var name *string
	if u.Name != nil {
		n := clip(*u.Name, maxNameBytes)
		name = &n
	}
	user, err := scanUser(t.tx.QueryRow(ctx, `
		WITH u AS (
			UPDATE users SET name = coalesce($3, name), role_id = coalesce($4, role_id),
				active = coalesce($5, active), updated_at = $6,
				last_active_at = CASE WHEN $5 AND NOT active THEN $6 ELSE last_active_at END
			WHERE tenant_id = $1 AND id = $2
			RETURNING *)
		SELECT `+userColumns+` FROM u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id`,
		tenantID, id, name, roleID, u.Active, t.now))
	if err != nil {
		return nil, notFound(err, "user not found")
	}
	return user, nil
}

// DeactivateInactiveUsers turns off, in every tenant, the active users
// whose last activity (or creation) is before since, and returns them by
// tenant and ID. Users already off are not touched, so a second run, or a
// concurrent one, returns nobody twice.
func (t *tx) DeactivateInactiveUsers(ctx context.Context, since time.Time) ([]*casedesk.User, error) {
	rows, err := t.tx.Query(ctx, `
		WITH u AS (
			UPDATE users SET active = false, updated_at = $2
			WHERE active AND coalesce(last_active_at, created_at) < $1
			RETURNING *)
		SELECT `+userColumns+` FROM u JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
		ORDER BY u.tenant_id, u.id`, since, t.now)
	if err != nil {
		return nil, wrap(err, "deactivate inactive users")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.User, error) { return scanUser(r) })
	return out, wrap(err, "deactivate inactive users")
}

// API keys.

const apiKeyColumns = `k.tenant_id, k.id, k.user_id, k.name, k.hash, k.created_at,
	k.expires_at, k.revoked_at, k.last_used_at`

// apiKeyScan holds the destinations of apiKeyColumns.
type apiKeyScan struct {
	k                          casedesk.APIKey
	expires, revoked, lastUsed *time.Time
}

func (s *apiKeyScan) dest() []any {
	k := &s.k
	return []any{&k.TenantID, &k.ID, &k.UserID, &k.Name, &k.Hash, &k.CreatedAt,
		&s.expires, &s.revoked, &s.lastUsed}
}

func (s *apiKeyScan) key() *casedesk.APIKey {
	k := s.k
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, k.RevokedAt, k.LastUsedAt = timeOf(s.expires), timeOf(s.revoked), timeOf(s.lastUsed)
	return &k
}

// CreateAPIKey stores a key for an active user of the tenant. An unknown
// user is ENOTFOUND, an inactive one EINVALID.
func (t *tx) CreateAPIKey(ctx context.Context, n casedesk.NewAPIKey) (*casedesk.APIKey, error) {
	if len(n.Hash) != sha256.Size {
		return nil, casedesk.Errorf(casedesk.EINVALID, "an API key hash is %d bytes, not %d", sha256.Size, len(n.Hash))
	}
	var expires *time.Time
	if !n.ExpiresAt.IsZero() {
		if !n.ExpiresAt.After(t.now) {
			return nil, casedesk.Errorf(casedesk.EINVALID, "an API key must expire in the future")
		}
		expires = &n.ExpiresAt
	}
	var s apiKeyScan
	err := t.tx.QueryRow(ctx, `
		INSERT INTO api_keys AS k (tenant_id, user_id, name, hash, created_at, expires_at)
		SELECT u.tenant_id, u.id, $3, $4, $5, $6 FROM users u
		WHERE u.tenant_id = $1 AND u.id = $2 AND u.active
		RETURNING `+apiKeyColumns,
		n.TenantID, n.UserID, clip(n.Name, maxNameBytes), n.Hash, t.now, expires).Scan(s.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		// No active user: say whether there is one at all.
		if _, err := t.FindUser(ctx, n.TenantID, n.UserID); err != nil {
			return nil, err
		}
		return nil, casedesk.Errorf(casedesk.EINVALID, "user %d is inactive", n.UserID)
	}
	if err != nil {
		return nil, wrap(err, "create API key")
	}
	return s.key(), nil
}

// usedEvery is how often the use of a key is written down: a busy key
// writes at most once per this interval, not on every request.
const usedEvery = time.Minute

// errBadKey is the one answer for every key that does not authenticate,
// so a caller learns nothing about why.
func errBadKey() error { return casedesk.Errorf(casedesk.EUNAUTHORIZED, "invalid API key") }

// Authenticate finds the usable key with this hash in the tenant, with its
// active user (and role) and the tenant, and records its use; see
// casedesk.AccessOps. Recording writes, so in a View it fails whenever a
// use is due, rather than lose it.
func (t *tx) Authenticate(ctx context.Context, tenantID int64, hash []byte) (*casedesk.Principal, error) {
	if len(hash) != sha256.Size {
		return nil, errBadKey()
	}
	var ks apiKeyScan
	var ts tenantScan
	user, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+`, `+apiKeyColumns+`, `+tenantColumns+`
		FROM api_keys k
			JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.user_id
			JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
			JOIN tenants tn ON tn.id = k.tenant_id AND tn.retired_at IS NULL
		WHERE k.tenant_id = $1 AND k.hash = $2 AND k.revoked_at IS NULL
			AND (k.expires_at IS NULL OR k.expires_at > $3) AND u.active`,
		tenantID, hash, t.now), append(ks.dest(), ts.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errBadKey()
	}
	if err != nil {
		return nil, wrap(err, "authenticate")
	}
	ten, err := ts.tenant()
	if err != nil {
		return nil, err
	}
	p := &casedesk.Principal{Tenant: ten, User: user, Key: ks.key()}
	if err := t.recordUse(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// recordUse sets the key's last_used_at and its user's last_active_at to
// now where they are older than usedEvery. The statement checks again, so
// concurrent requests with one key write once.
func (t *tx) recordUse(ctx context.Context, p *casedesk.Principal) error {
	cutoff := t.now.Add(-usedEvery)
	keyDue, userDue := p.Key.LastUsedAt.Before(cutoff), p.User.LastActiveAt.Before(cutoff)
	if !keyDue && !userDue {
		return nil
	}
	_, err := t.tx.Exec(ctx, `
		WITH k AS (
			UPDATE api_keys SET last_used_at = $4
			WHERE tenant_id = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at < $5))
		UPDATE users SET last_active_at = $4
		WHERE tenant_id = $1 AND id = $3 AND (last_active_at IS NULL OR last_active_at < $5)`,
		p.Tenant.ID, p.Key.ID, p.User.ID, t.now, cutoff)
	if err != nil {
		return wrap(err, "record API key use")
	}
	if keyDue {
		p.Key.LastUsedAt = t.now
	}
	if userDue {
		p.User.LastActiveAt = t.now
	}
	return nil
}

// ListAPIKeys returns the keys of a user of the tenant by ID, revoked and
// expired ones included; an unknown user is ENOTFOUND.
func (t *tx) ListAPIKeys(ctx context.Context, tenantID, userID int64) ([]*casedesk.APIKey, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys k
		WHERE k.tenant_id = $1 AND k.user_id = $2 ORDER BY k.id`, tenantID, userID)
	if err != nil {
		return nil, wrap(err, "list API keys")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.APIKey, error) {
		var s apiKeyScan
		err := r.Scan(s.dest()...)
		return s.key(), err
	})
	if err != nil {
		return nil, wrap(err, "list API keys")
	}
	if len(out) == 0 {
		// Nothing to list, or nobody to list it for.
		if _, err := t.FindUser(ctx, tenantID, userID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RevokeAPIKey revokes a key of the tenant. Revoking it again keeps the
// first revocation time.
func (t *tx) RevokeAPIKey(ctx context.Context, tenantID, id int64) error {
	tag, err := t.tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3)
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, t.now)
	if err != nil {
		return wrap(err, "revoke API key")
	}
	if tag.RowsAffected() == 0 {
		return casedesk.Errorf(casedesk.ENOTFOUND, "API key %d not found", id)
	}
	return nil
}

// Tenant settings.

// UpdateTenantSettings replaces a tenant's settings and returns the tenant.
func (t *tx) UpdateTenantSettings(ctx context.Context, tenantID int64, s casedesk.TenantSettings) (*casedesk.Tenant, error) {
	settings, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("tenant settings: %w", err)
	}
	ten, err := scanTenant(t.tx.QueryRow(ctx, `UPDATE tenants tn SET settings = $2, updated_at = $3
		WHERE tn.id = $1 RETURNING `+tenantColumns, tenantID, settings, t.now))
	if err != nil {
		return nil, notFound(err, "tenant %d not found", tenantID)
	}
	return ten, nil
}
