package casestore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// tenantColumns reads the table under the alias tn, so that queries
// joining tenants (Authenticate) can select them too.
const tenantColumns = `tn.id, tn.slug, tn.name, tn.kind, coalesce(tn.parent_id, 0), tn.support_address,
	tn.token_secret, tn.settings, tn.ready, tn.retired_at, tn.created_at, tn.updated_at`

// tenantScan holds the destinations of tenantColumns, for a scan that
// reads a tenant along with other columns.
type tenantScan struct {
	t        casedesk.Tenant
	settings []byte
	retired  *time.Time
}

func (s *tenantScan) dest() []any {
	t := &s.t
	return []any{&t.ID, &t.Slug, &t.Name, &t.Kind, &t.ParentID, &t.SupportAddress,
		&t.TokenSecret, &s.settings, &t.Ready, &s.retired, &t.CreatedAt, &t.UpdatedAt}
}

// tenant returns the scanned tenant with its settings decoded.
func (s *tenantScan) tenant() (*casedesk.Tenant, error) {
	t := s.t
	if s.retired != nil {
		t.RetiredAt = *s.retired
	}
	if err := json.Unmarshal(s.settings, &t.Settings); err != nil {
		return nil, fmt.Errorf("tenant %d settings: %w", t.ID, err)
	}
	return &t, nil
}

func scanTenant(row pgx.Row) (*casedesk.Tenant, error) {
	var s tenantScan
	if err := row.Scan(s.dest()...); err != nil {
		return nil, err
	}
	return s.tenant()
}

// CreateTenant creates a tenant with a fresh 32-byte token secret, its case
// counter and the built-in roles.
func (t *tx) CreateTenant(ctx context.Context, n casedesk.NewTenant) (*casedesk.Tenant, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("token secret: %w", err)
	}
	settings, err := json.Marshal(n.Settings)
	if err != nil {
		return nil, fmt.Errorf("tenant settings: %w", err)
	}
	ten, err := scanTenant(t.tx.QueryRow(ctx, `
		INSERT INTO tenants AS tn (slug, name, kind, parent_id, support_address, token_secret,
			settings, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
		RETURNING `+tenantColumns,
		n.Slug, clip(n.Name, maxNameBytes), n.Kind, nullID(n.ParentID),
		strings.ToLower(n.SupportAddress), secret, settings, t.now))
	if err != nil {
		return nil, wrap(err, "create tenant")
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO case_counters (tenant_id) VALUES ($1)`, ten.ID); err != nil {
		return nil, wrap(err, "create case counter")
	}
	if err := t.createBuiltInRoles(ctx, ten.ID); err != nil {
		return nil, err
	}
	return ten, nil
}

func (t *tx) createBuiltInRoles(ctx context.Context, tenantID int64) error {
	for _, r := range casedesk.BuiltInRoles() {
		_, err := t.tx.Exec(ctx, `
			INSERT INTO roles (tenant_id, name, permissions, built_in) VALUES ($1, $2, $3, true)`,
			tenantID, r.Name, r.Permissions)
		if err != nil {
			return wrap(err, "create role "+r.Name)
		}
	}
	return nil
}

// FindTenant returns a tenant by ID.
func (t *tx) FindTenant(ctx context.Context, id int64) (*casedesk.Tenant, error) {
	ten, err := scanTenant(t.tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants tn WHERE tn.id = $1`, id))
	if err != nil {
		return nil, notFound(err, "tenant %d not found", id)
	}
	return ten, nil
}

// ListTenants returns every tenant in use by ID.
func (t *tx) ListTenants(ctx context.Context) ([]*casedesk.Tenant, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+tenantColumns+` FROM tenants tn
		WHERE tn.ready AND tn.retired_at IS NULL ORDER BY tn.id`)
	if err != nil {
		return nil, wrap(err, "list tenants")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Tenant, error) { return scanTenant(r) })
	return out, wrap(err, "list tenants")
}

// UpdateTenantSupportAddress changes a tenant's support address.
func (t *tx) UpdateTenantSupportAddress(ctx context.Context, id int64, addr string) (*casedesk.Tenant, error) {
	if !casedesk.ValidEmail(addr) {
		return nil, casedesk.Errorf(casedesk.EINVALID, "support address %q is not an email address", addr)
	}
	ten, err := scanTenant(t.tx.QueryRow(ctx, `UPDATE tenants tn SET support_address = $2, updated_at = $3
		WHERE tn.id = $1 RETURNING `+tenantColumns, id, strings.ToLower(addr), t.now))
	if err != nil {
		return nil, notFound(err, "tenant %d not found", id)
	}
	return ten, nil
}

// FindTenantBySlug returns a tenant by its slug.
func (t *tx) FindTenantBySlug(ctx context.Context, slug string) (*casedesk.Tenant, error) {
	ten, err := scanTenant(t.tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants tn WHERE tn.slug = $1`, clean(slug)))
	if err != nil {
		return nil, notFound(err, "tenant %q not found", slug)
	}
	return ten, nil
}
