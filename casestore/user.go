package casestore

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

const userColumns = `u.tenant_id, u.id, u.email, u.name, u.role_id, u.active, u.last_active_at,
	u.created_at, u.updated_at, r.id, r.name, r.permissions, r.built_in`

// scanUser scans userColumns plus any extra destinations.
func scanUser(row pgx.Row, extra ...any) (*casedesk.User, error) {
	var u casedesk.User
	r := &casedesk.Role{}
	var lastActive *time.Time
	var perms []string
	err := row.Scan(append([]any{&u.TenantID, &u.ID, &u.Email, &u.Name, &u.RoleID, &u.Active, &lastActive,
		&u.CreatedAt, &u.UpdatedAt, &r.ID, &r.Name, &perms, &r.BuiltIn}, extra...)...)
	if err != nil {
		return nil, err
	}
	u.LastActiveAt = timeOf(lastActive)
	r.TenantID = u.TenantID
	for _, p := range perms {
		r.Permissions = append(r.Permissions, casedesk.Permission(p))
	}
	u.Role = r
	return &u, nil
}

// CreateUser creates an active user with the named role of the tenant.
func (t *tx) CreateUser(ctx context.Context, n casedesk.NewUser) (*casedesk.User, error) {
	email := strings.TrimSpace(n.Email)
	if !casedesk.ValidEmail(email) {
		return nil, casedesk.Errorf(casedesk.EINVALID, "%q is not an email address", clip(n.Email, 100))
	}
	var id int64
	err := t.tx.QueryRow(ctx, `
		INSERT INTO users (tenant_id, email, name, role_id, created_at, updated_at)
		SELECT $1, $2, $3, r.id, $5, $5 FROM roles r WHERE r.tenant_id = $1 AND r.name = $4
		RETURNING id`,
		n.TenantID, clean(email), clip(n.Name, maxNameBytes), n.RoleName, t.now).Scan(&id)
	if err != nil {
		if err == pgx.ErrNoRows {
			return nil, casedesk.Errorf(casedesk.EINVALID, "unknown role %q", clip(n.RoleName, 100))
		}
		return nil, wrap(err, "create user")
	}
	return t.findUser(ctx, `u.tenant_id = $1 AND u.id = $2`, n.TenantID, id)
}

// FindUserByEmail finds a user by address, case-insensitively, also trying
// the address with its "+tag" removed.
func (t *tx) FindUserByEmail(ctx context.Context, tenantID int64, email string) (*casedesk.User, error) {
	email = clean(email)
	u, err := t.findUser(ctx, `u.tenant_id = $1 AND lower(u.email) IN (lower($2), $3)
		ORDER BY lower(u.email) = lower($2) DESC LIMIT 1`,
		tenantID, email, casedesk.NormalizeAgentAddress(email))
	if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
		return nil, casedesk.Errorf(casedesk.ENOTFOUND, "no user with email %q", clip(email, 100))
	}
	return u, err
}

// FindUsersByEmails finds the users among addresses in one statement,
// each as FindUserByEmail does: case-insensitively, also with a "+tag"
// removed, an exact match winning. The map is keyed by the input address
// lower-cased; see casedesk.UserOps.
func (t *tx) FindUsersByEmails(ctx context.Context, tenantID int64, emails []string) (map[string]*casedesk.User, error) {
	out := make(map[string]*casedesk.User, len(emails))
	keys := make([]string, 0, len(emails))
	exact, stripped := make([]string, 0, len(emails)), make([]string, 0, len(emails))
	seen := make(map[string]bool, len(emails))
	for _, e := range emails {
		e = clean(e)
		key := strings.ToLower(e)
		if seen[key] {
			continue
		}
		seen[key] = true
		keys, exact = append(keys, key), append(exact, e)
		stripped = append(stripped, casedesk.NormalizeAgentAddress(e))
	}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := t.tx.Query(ctx, `
		SELECT DISTINCT ON (i.ord) `+userColumns+`, i.ord
		FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS i(email, stripped, ord)
			JOIN users u ON u.tenant_id = $1 AND lower(u.email) IN (lower(i.email), i.stripped)
			JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
		ORDER BY i.ord, lower(u.email) = lower(i.email) DESC`, tenantID, exact, stripped)
	if err != nil {
		return nil, wrap(err, "find users")
	}
	defer rows.Close()
	for rows.Next() {
		var ord int
		u, err := scanUser(rows, &ord)
		if err != nil {
			return nil, wrap(err, "find users")
		}
		out[keys[ord-1]] = u
	}
	return out, wrap(rows.Err(), "find users")
}

// FindUsersByIDs returns the tenant's users among ids, with their roles,
// keyed by ID; see casedesk.UserOps.
func (t *tx) FindUsersByIDs(ctx context.Context, tenantID int64, ids []int64) (map[int64]*casedesk.User, error) {
	out := make(map[int64]*casedesk.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := t.tx.Query(ctx, `SELECT `+userColumns+` FROM users u
		JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id
		WHERE u.tenant_id = $1 AND u.id = ANY($2::bigint[])`, tenantID, ids)
	if err != nil {
		return nil, wrap(err, "find users")
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap(err, "find users")
		}
		out[u.ID] = u
	}
	return out, wrap(rows.Err(), "find users")
}

func (t *tx) findUser(ctx context.Context, where string, args ...any) (*casedesk.User, error) {
	u, err := scanUser(t.tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u
		JOIN roles r ON r.tenant_id = u.tenant_id AND r.id = u.role_id WHERE `+where, args...))
	if err != nil {
		return nil, notFound(err, "user not found")
	}
	return u, nil
}
