package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
)

// init is "casedesk init": it makes sure the default tenant and its admin
// user exist, and prints a new admin API key when the admin has no usable
// key yet. Running it again creates nothing and prints no key.
func (m *Main) init(ctx context.Context) error {
	db, err := m.openDB(ctx)
	if err != nil {
		return err
	}
	if err := db.CheckSchema(ctx); err != nil {
		return lineError{err}
	}
	res, err := m.bootstrap(ctx, db, true)
	if err != nil {
		return err
	}
	t := res.tenant
	fmt.Fprintf(m.Stdout, "tenant %s (id %d, support address %s): %s\n", t.Slug, t.ID, t.SupportAddress, createdOrExists(res.tenantCreated))
	fmt.Fprintf(m.Stdout, "admin user %s (id %d): %s\n", res.admin.Email, res.admin.ID, createdOrExists(res.adminCreated))
	switch {
	case res.key != "":
		fmt.Fprintf(m.Stdout, "admin API key (shown once, store it now):\n%s\n", res.key)
	case res.bootstrapKey:
		fmt.Fprintf(m.Stdout, "admin API key: the one in %s\n", envBootstrapKey)
	default:
		fmt.Fprintln(m.Stdout, "admin API key: the admin has one already; create more with POST /v1/users/{id}/keys")
	}
	return nil
}

func createdOrExists(created bool) string {
	if created {
		return "created"
	}
	return "exists"
}

// bootstrapped is what bootstrap found or made.
type bootstrapped struct {
	tenant        *casedesk.Tenant
	tenantCreated bool
	admin         *casedesk.User
	adminCreated  bool
	// key is a new admin key to show, once; bootstrapKey says the
	// configured CASEDESK_BOOTSTRAP_ADMIN_KEY is the admin's key.
	key          string
	bootstrapKey bool
}

// bootstrap makes sure the default tenant exists, with the configured
// support address, and, with withAdmin or a bootstrap key, an active admin
// user holding the bootstrap key (or, for init, some usable key). It is
// idempotent and safe when several replicas start at once.
func (m *Main) bootstrap(ctx context.Context, db *casestore.DB, withAdmin bool) (*bootstrapped, error) {
	res, err := m.bootstrapOnce(ctx, db, withAdmin)
	if casedesk.ErrorCode(err) == casedesk.ECONFLICT {
		// Another replica created the same tenant or user a moment ago:
		// now it is there to be found.
		res, err = m.bootstrapOnce(ctx, db, withAdmin)
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return res, nil
}

func (m *Main) bootstrapOnce(ctx context.Context, db *casestore.DB, withAdmin bool) (*bootstrapped, error) {
	var res *bootstrapped
	err := db.Update(ctx, func(tx casedesk.Tx) (err error) {
		res = &bootstrapped{}
		if res.tenant, res.tenantCreated, err = m.ensureTenant(ctx, tx); err != nil {
			return err
		}
		if !withAdmin && m.Config.BootstrapAdminKey == "" {
			return nil
		}
		if res.admin, res.adminCreated, err = m.ensureAdmin(ctx, tx, res.tenant); err != nil {
			return err
		}
		if m.Config.BootstrapAdminKey != "" {
			res.bootstrapKey = true
			return m.ensureBootstrapKey(ctx, tx, res.tenant, res.admin)
		}
		res.key, err = ensureSomeKey(ctx, tx, res.admin)
		return err
	})
	return res, err
}

// ensureTenant finds the default tenant, or creates it, and brings its
// support address in line with the configuration.
func (m *Main) ensureTenant(ctx context.Context, tx casedesk.Tx) (*casedesk.Tenant, bool, error) {
	c := m.Config
	t, err := tx.FindTenantBySlug(ctx, c.Tenant)
	switch {
	case casedesk.ErrorCode(err) == casedesk.ENOTFOUND:
		t, err = tx.CreateTenant(ctx, casedesk.NewTenant{Slug: c.Tenant, Name: m.tenantName(), SupportAddress: c.SupportAddress})
		if err != nil {
			return nil, false, fmt.Errorf("create tenant %q: %w", c.Tenant, err)
		}
		m.logger.Info("default tenant created", "tenant_id", t.ID, "slug", t.Slug, "support_address", t.SupportAddress)
		return t, true, nil
	case err != nil:
		return nil, false, err
	case t.Kind != casedesk.TenantProduction:
		// A sandbox never polls mail, nor is the default tenant.
		return nil, false, lineError{fmt.Errorf("%s=%q names a sandbox; name its production tenant", envTenant, c.Tenant)}
	}
	if c.SupportAddress != "" && !strings.EqualFold(t.SupportAddress, c.SupportAddress) {
		old := t.SupportAddress
		if t, err = tx.UpdateTenantSupportAddress(ctx, t.ID, c.SupportAddress); err != nil {
			return nil, false, fmt.Errorf("set support address of tenant %q: %w", c.Tenant, err)
		}
		m.logger.Warn("support address of the default tenant changed to the configured one",
			"tenant_id", t.ID, "old", old, "new", t.SupportAddress)
	}
	return t, false, nil
}

// tenantName is the configured name, or the support address's domain.
func (m *Main) tenantName() string {
	if m.Config.TenantName != "" {
		return m.Config.TenantName
	}
	if d := casedesk.EmailDomain(m.Config.SupportAddress); d != "" {
		return d
	}
	return m.Config.Tenant
}

// ensureAdmin finds the admin user by the configured address (admin@ the
// support domain by default) or creates it.
func (m *Main) ensureAdmin(ctx context.Context, tx casedesk.Tx, t *casedesk.Tenant) (*casedesk.User, bool, error) {
	email := m.Config.AdminEmail
	if email == "" {
		email = "admin@" + casedesk.MessageIDDomain(t.SupportAddress)
	}
	u, err := tx.FindUserByEmail(ctx, t.ID, email)
	switch {
	case err == nil:
		if !u.Active || u.Role == nil || u.Role.Name != casedesk.RoleAdmin {
			return nil, false, fmt.Errorf("user %s exists but is not an active admin; fix it through the API or set %s",
				email, envAdminEmail)
		}
		return u, false, nil
	case casedesk.ErrorCode(err) != casedesk.ENOTFOUND:
		return nil, false, err
	}
	u, err = tx.CreateUser(ctx, casedesk.NewUser{TenantID: t.ID, Email: email, Name: "Administrator", RoleName: casedesk.RoleAdmin})
	if err != nil {
		return nil, false, fmt.Errorf("create admin %s: %w", email, err)
	}
	return u, true, nil
}

// ensureBootstrapKey stores the configured key for the admin unless it is
// stored already.
func (m *Main) ensureBootstrapKey(ctx context.Context, tx casedesk.Tx, t *casedesk.Tenant, admin *casedesk.User) error {
	tenantID, hash, err := casedesk.ParseAPIKey(m.Config.BootstrapAdminKey)
	if err != nil {
		return fmt.Errorf("%s is not a valid API key", envBootstrapKey)
	}
	if tenantID != t.ID {
		return fmt.Errorf("%s is a key for tenant %d, but the default tenant %q has id %d: use a key that starts with cdk_%d_",
			envBootstrapKey, tenantID, t.Slug, t.ID, t.ID)
	}
	keys, err := tx.ListAPIKeys(ctx, t.ID, admin.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if string(k.Hash) == string(hash) {
			if !k.Usable(tx.Now()) {
				return fmt.Errorf("%s was revoked or has expired: set a new key", envBootstrapKey)
			}
			return nil
		}
	}
	_, err = tx.CreateAPIKey(ctx, casedesk.NewAPIKey{TenantID: t.ID, UserID: admin.ID, Name: "bootstrap", Hash: hash})
	if casedesk.ErrorCode(err) == casedesk.ECONFLICT {
		return fmt.Errorf("%s belongs to another user of tenant %q", envBootstrapKey, t.Slug)
	}
	return err
}

// ensureSomeKey creates a key for the admin, and returns it, when the
// admin has no usable one.
func ensureSomeKey(ctx context.Context, tx casedesk.Tx, admin *casedesk.User) (string, error) {
	keys, err := tx.ListAPIKeys(ctx, admin.TenantID, admin.ID)
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if k.Usable(tx.Now()) {
			return "", nil
		}
	}
	secret, hash := casedesk.NewAPIKeySecret(admin.TenantID)
	if _, err := tx.CreateAPIKey(ctx, casedesk.NewAPIKey{TenantID: admin.TenantID, UserID: admin.ID, Name: "init", Hash: hash}); err != nil {
		return "", err
	}
	return secret, nil
}
