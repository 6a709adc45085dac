package casestore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// CreateContact creates a contact; see casedesk.ContactOps. A taken email
// is found by ON CONFLICT rather than by a failed insert, so the caller's
// transaction stays usable after ECONFLICT.
func (t *tx) CreateContact(ctx context.Context, n casedesk.NewContact) (*casedesk.Contact, error) {
	email := strings.TrimSpace(n.Email)
	if !casedesk.ValidEmail(email) {
		return nil, casedesk.Errorf(casedesk.EINVALID, "%q is not an email address", clip(n.Email, 100))
	}
	if n.AccountID != 0 {
		if err := t.checkAccount(ctx, n.TenantID, n.AccountID); err != nil {
			return nil, err
		}
	}
	// Without an account the contact joins the one of its domain, as
	// UpsertContacts does.
	c, err := scanContact(t.tx.QueryRow(ctx, `
		INSERT INTO contacts (tenant_id, email, name, phone, account_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, coalesce($5, (SELECT a.id FROM accounts a
			WHERE a.tenant_id = $1 AND a.domains @> ARRAY[$6::text] ORDER BY a.id LIMIT 1)), $7, $7)
		ON CONFLICT (tenant_id, lower(email)) DO NOTHING
		RETURNING `+contactColumns,
		n.TenantID, clean(email), clip(strings.TrimSpace(n.Name), maxNameBytes), clip(strings.TrimSpace(n.Phone), maxNameBytes),
		nullID(n.AccountID), casedesk.EmailDomain(clean(email)), t.now))
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, pgx.ErrNoRows):
		return nil, casedesk.Errorf(casedesk.ECONFLICT, "a contact with email %q exists", clip(email, 100))
	}
	return nil, wrap(err, "create contact")
}

// UpdateContact changes a contact; see casedesk.ContactOps.
func (t *tx) UpdateContact(ctx context.Context, tenantID, id int64, u casedesk.ContactUpdate) (*casedesk.Contact, error) {
	if u.Name == nil && u.Phone == nil && u.AccountID == nil {
		return t.FindContact(ctx, tenantID, id)
	}
	var name, phone *string
	if u.Name != nil {
		s := clip(strings.TrimSpace(*u.Name), maxNameBytes)
		name = &s
	}
	if u.Phone != nil {
		s := clip(strings.TrimSpace(*u.Phone), maxNameBytes)
		phone = &s
	}
	var account *int64
	if u.AccountID != nil && *u.AccountID != 0 {
		if err := t.checkAccount(ctx, tenantID, *u.AccountID); err != nil {
			return nil, err
		}
		account = u.AccountID
	}
	c, err := scanContact(t.tx.QueryRow(ctx, `
		UPDATE contacts SET name = coalesce($3, name), phone = coalesce($4, phone),
			account_id = CASE WHEN $5 THEN $6 ELSE account_id END, updated_at = $7
		WHERE tenant_id = $1 AND id = $2
		RETURNING `+contactColumns,
		tenantID, id, name, phone, u.AccountID != nil, account, t.now))
	if err != nil {
		return nil, notFound(err, "contact %d not found", id)
	}
	return c, nil
}

// checkAccount returns EINVALID unless the account exists in the tenant;
// an account of another tenant does not.
func (t *tx) checkAccount(ctx context.Context, tenantID, id int64) error {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE tenant_id = $1 AND id = $2)`,
		tenantID, id).Scan(&ok)
	if err != nil {
		return wrap(err, "find account")
	}
	if !ok {
		return casedesk.Errorf(casedesk.EINVALID, "no such account %d", id)
	}
	return nil
}

// UpdateAccount changes an account; see casedesk.ContactOps. Domains are
// checked and lower-cased as CreateAccount does; like it, UpdateAccount
// lets two accounts share a domain (new contacts of the domain join the
// older account). Contacts already in the account stay in it when its
// domains change.
func (t *tx) UpdateAccount(ctx context.Context, tenantID, id int64, u casedesk.AccountUpdate) (*casedesk.Account, error) {
	if u.Name == nil && u.Domains == nil && u.SLATier == nil && u.BillingContactID == nil {
		return t.FindAccount(ctx, tenantID, id)
	}
	// NewAccount.Validate holds the rules for names and domains; the name
	// it is given stands in for the one kept when Name is nil.
	check := casedesk.NewAccount{Name: "unchanged"}
	if u.Name != nil {
		check.Name = *u.Name
	}
	var domains []string // nil: unchanged
	if u.Domains != nil {
		// A copy, so the caller's slice is not lower-cased; never nil, as
		// nil would leave the domains unchanged.
		check.Domains = append([]string{}, *u.Domains...)
	}
	if err := check.Validate(); err != nil {
		return nil, err
	}
	if u.Domains != nil {
		domains = check.Domains
	}
	var name, tier *string
	if u.Name != nil {
		s := clip(strings.TrimSpace(*u.Name), maxNameBytes)
		name = &s
	}
	if u.SLATier != nil {
		s := clip(strings.TrimSpace(*u.SLATier), maxNameBytes)
		tier = &s
	}
	var billing *int64
	if u.BillingContactID != nil && *u.BillingContactID != 0 {
		// The foreign key is checked only at commit (deferred): check now,
		// so the error names the contact.
		if _, err := t.FindContact(ctx, tenantID, *u.BillingContactID); err != nil {
			if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
				return nil, casedesk.Errorf(casedesk.EINVALID, "no such contact %d", *u.BillingContactID)
			}
			return nil, err
		}
		billing = u.BillingContactID
	}
	a, err := scanAccount(t.tx.QueryRow(ctx, `
		UPDATE accounts SET name = coalesce($3, name), domains = coalesce($4, domains),
			sla_tier = coalesce($5, sla_tier),
			billing_contact_id = CASE WHEN $6 THEN $7 ELSE billing_contact_id END, updated_at = $8
		WHERE tenant_id = $1 AND id = $2
		RETURNING `+accountColumns,
		tenantID, id, name, domains, tier, u.BillingContactID != nil, billing, t.now))
	if err != nil {
		return nil, notFound(err, "account %d not found", id)
	}
	return a, nil
}

// listCursor names the page a contact or account listing ended on: the
// case listing's cursor with the ID as the key and the kind of listing as
// its "sort", so that one listing's cursor is refused by another.
func listCursor(kind string, lastID int64) string {
	return encodeCursor(caseCursor{Sort: kind, ID: lastID})
}

// listPage adds the keyset condition of a cursor and returns the page
// size, clamped as casedesk.PageSize does.
func listPage(w *where, kind, cursor string, limit int) (int, error) {
	if cursor != "" {
		cur, err := decodeCursor(cursor, kind)
		if err != nil {
			return 0, err
		}
		w.add("id > ?", cur.ID)
	}
	return casedesk.PageSize(limit), nil
}

// ListContacts returns a page of the tenant's contacts ordered by ID; see
// casedesk.ContactOps.
func (t *tx) ListContacts(ctx context.Context, tenantID int64, f casedesk.ContactFilter) (*casedesk.ContactPage, error) {
	w := &where{}
	w.add("tenant_id = ?", tenantID)
	if f.AccountID != 0 {
		w.add("account_id = ?", f.AccountID)
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		w.add("(email ILIKE ? OR name ILIKE ?)", likePattern(q), likePattern(q))
	}
	limit, err := listPage(w, "contacts", f.Cursor, f.Limit)
	if err != nil {
		return nil, err
	}
	w.args = append(w.args, limit+1)
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM contacts WHERE %s ORDER BY id LIMIT $%d`,
		contactColumns, w.String(), len(w.args)), w.args...)
	if err != nil {
		return nil, wrap(err, "list contacts")
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Contact, error) { return scanContact(r) })
	if err != nil {
		return nil, wrap(err, "list contacts")
	}
	page := &casedesk.ContactPage{Contacts: cs}
	if len(cs) > limit {
		page.Contacts = cs[:limit]
		page.NextCursor = listCursor("contacts", cs[limit-1].ID)
	}
	return page, nil
}

// ListAccounts returns a page of the tenant's accounts ordered by ID; see
// casedesk.ContactOps.
func (t *tx) ListAccounts(ctx context.Context, tenantID int64, f casedesk.AccountFilter) (*casedesk.AccountPage, error) {
	w := &where{}
	w.add("tenant_id = ?", tenantID)
	if q := strings.TrimSpace(f.Q); q != "" {
		w.add("name ILIKE ?", likePattern(q))
	}
	limit, err := listPage(w, "accounts", f.Cursor, f.Limit)
	if err != nil {
		return nil, err
	}
	w.args = append(w.args, limit+1)
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT %s FROM accounts WHERE %s ORDER BY id LIMIT $%d`,
		accountColumns, w.String(), len(w.args)), w.args...)
	if err != nil {
		return nil, wrap(err, "list accounts")
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, wrap(err, "list accounts")
	}
	page := &casedesk.AccountPage{Accounts: as}
	if len(as) > limit {
		page.Accounts = as[:limit]
		page.NextCursor = listCursor("accounts", as[limit-1].ID)
	}
	return page, nil
}
