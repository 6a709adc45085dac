package casestore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

const accountColumns = `tenant_id, id, name, domains, sla_tier, coalesce(billing_contact_id, 0),
	created_at, updated_at`

func scanAccount(row pgx.Row) (*casedesk.Account, error) {
	var a casedesk.Account
	err := row.Scan(&a.TenantID, &a.ID, &a.Name, &a.Domains, &a.SLATier, &a.BillingContactID,
		&a.CreatedAt, &a.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// CreateAccount creates a customer organisation.
func (t *tx) CreateAccount(ctx context.Context, n casedesk.NewAccount) (*casedesk.Account, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	if n.Domains == nil {
		n.Domains = []string{}
	}
	a, err := scanAccount(t.tx.QueryRow(ctx, `
		INSERT INTO accounts (tenant_id, name, domains, sla_tier, billing_contact_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		RETURNING `+accountColumns,
		n.TenantID, clip(n.Name, maxNameBytes), n.Domains, clip(n.SLATier, maxNameBytes),
		nullID(n.BillingContactID), t.now))
	if err != nil {
		return nil, wrap(err, "create account")
	}
	return a, nil
}

// FindAccount returns an account of the tenant.
func (t *tx) FindAccount(ctx context.Context, tenantID, id int64) (*casedesk.Account, error) {
	a, err := scanAccount(t.tx.QueryRow(ctx,
		`SELECT `+accountColumns+` FROM accounts WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "account %d not found", id)
	}
	return a, nil
}

const contactColumns = `tenant_id, id, email, name, phone, coalesce(account_id, 0), bouncing_since,
	created_at, updated_at`

func scanContact(row pgx.Row) (*casedesk.Contact, error) {
	var c casedesk.Contact
	var bouncing *time.Time
	err := row.Scan(&c.TenantID, &c.ID, &c.Email, &c.Name, &c.Phone, &c.AccountID, &bouncing,
		&c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return nil, err
	}
	c.BouncingSince = timeOf(bouncing)
	return &c, nil
}

// UpsertContact returns the contact with addr's email, creating it if needed.
// The common case, a known sender, is one indexed read and no write.
func (t *tx) UpsertContact(ctx context.Context, tenantID int64, addr casedesk.Address) (*casedesk.Contact, error) {
	email := strings.TrimSpace(addr.Email)
	if !casedesk.ValidEmail(email) {
		return nil, casedesk.Errorf(casedesk.EINVALID, "%q is not an email address", clip(addr.Email, 100))
	}
	email, name := clean(email), clip(strings.TrimSpace(addr.Name), maxNameBytes)
	c, err := t.FindContactByEmail(ctx, tenantID, email)
	if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
		c, err = t.insertContact(ctx, tenantID, email, name)
	}
	if err != nil {
		return nil, err
	}
	if c.Name == "" && name != "" {
		c.Name, c.UpdatedAt = name, t.now
		_, err := t.tx.Exec(ctx, `UPDATE contacts SET name = $3, updated_at = $4
			WHERE tenant_id = $1 AND id = $2`, tenantID, c.ID, name, t.now)
		if err != nil {
			return nil, wrap(err, "name contact")
		}
	}
	return c, nil
}

// insertContact inserts a new contact in the account that owns its domain.
// A concurrent insert of the same address wins the race; its row is returned.
func (t *tx) insertContact(ctx context.Context, tenantID int64, email, name string) (*casedesk.Contact, error) {
	c, err := scanContact(t.tx.QueryRow(ctx, `
		INSERT INTO contacts (tenant_id, email, name, account_id, created_at, updated_at)
		VALUES ($1, $2, $3,
			(SELECT id FROM accounts WHERE tenant_id = $1 AND domains @> ARRAY[$4::text] ORDER BY id LIMIT 1),
			$5, $5)
		ON CONFLICT (tenant_id, lower(email)) DO NOTHING
		RETURNING `+contactColumns,
		tenantID, email, name, casedesk.EmailDomain(email), t.now))
	if errors.Is(err, pgx.ErrNoRows) {
		return t.FindContactByEmail(ctx, tenantID, email)
	}
	if err != nil {
		return nil, wrap(err, "create contact")
	}
	return c, nil
}

// FindContact returns a contact of the tenant.
func (t *tx) FindContact(ctx context.Context, tenantID, id int64) (*casedesk.Contact, error) {
	c, err := scanContact(t.tx.QueryRow(ctx,
		`SELECT `+contactColumns+` FROM contacts WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if err != nil {
		return nil, notFound(err, "contact %d not found", id)
	}
	return c, nil
}

// FindContactByEmail returns a contact by email, compared case-insensitively.
func (t *tx) FindContactByEmail(ctx context.Context, tenantID int64, email string) (*casedesk.Contact, error) {
	c, err := scanContact(t.tx.QueryRow(ctx,
		`SELECT `+contactColumns+` FROM contacts WHERE tenant_id = $1 AND lower(email) = lower($2)`,
		tenantID, clean(email)))
	if err != nil {
		return nil, notFound(err, "no contact with email %q", clip(email, 100))
	}
	return c, nil
}

// MarkBouncing records that mail to the address bounced; the first bounce's
// time is kept.
func (t *tx) MarkBouncing(ctx context.Context, tenantID int64, email string) error {
	tag, err := t.tx.Exec(ctx, `
		UPDATE contacts SET bouncing_since = coalesce(bouncing_since, $3), updated_at = $3
		WHERE tenant_id = $1 AND lower(email) = lower($2)`, tenantID, clean(email), t.now)
	if err != nil {
		return wrap(err, "mark bouncing")
	}
	if tag.RowsAffected() == 0 {
		return casedesk.Errorf(casedesk.ENOTFOUND, "no contact with email %q", clip(email, 100))
	}
	return nil
}
