package casestore

import (
	"context"
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
	if n.BillingContactID != 0 {
		// The foreign key is checked only at commit (deferred): check now,
		// so the error names the contact, as UpdateAccount's does.
		if _, err := t.FindContact(ctx, n.TenantID, n.BillingContactID); err != nil {
			if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
				return nil, casedesk.Errorf(casedesk.EINVALID, "no such contact %d", n.BillingContactID)
			}
			return nil, err
		}
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

// scanContact scans contactColumns plus any extra destinations.
func scanContact(row pgx.Row, extra ...any) (*casedesk.Contact, error) {
	var c casedesk.Contact
	var bouncing *time.Time
	err := row.Scan(append([]any{&c.TenantID, &c.ID, &c.Email, &c.Name, &c.Phone, &c.AccountID, &bouncing,
		&c.CreatedAt, &c.UpdatedAt}, extra...)...)
	if err != nil {
		return nil, err
	}
	c.BouncingSince = timeOf(bouncing)
	return &c, nil
}

// UpsertContact returns the contact with addr's email, creating it if
// needed. The common case, a known sender with a name (or none given), is
// one indexed read and no write: this SELECT takes half the time of
// upsertContactsSQL for one address, which sets up its writes even when
// they write nothing. Anything else is done by UpsertContacts.
func (t *tx) UpsertContact(ctx context.Context, tenantID int64, addr casedesk.Address) (*casedesk.Contact, error) {
	if email := strings.TrimSpace(addr.Email); casedesk.ValidEmail(email) {
		c, err := t.FindContactByEmail(ctx, tenantID, email)
		if err == nil && (c.Name != "" || strings.TrimSpace(addr.Name) == "") {
			return c, nil
		}
		if err != nil && casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
			return nil, err
		}
	}
	cs, err := t.UpsertContacts(ctx, tenantID, []casedesk.Address{addr})
	if err != nil {
		return nil, err
	}
	return cs[0], nil
}

// contactRow are the contacts columns that upsertContactsSQL carries from
// one part to the next; contactColumns are read from them at the end.
const contactRow = `tenant_id, id, email, name, phone, account_id, bouncing_since, created_at, updated_at`

// upsertContactsSQL returns, for each input address, the tenant's contact
// with that email, compared case-insensitively. Known contacts are only
// read, except nameless ones given a name, which are named. Unknown ones
// are inserted in the account that owns their domain. Input addresses
// that differ only in letter case are one contact, as if upserted one
// after another: spelled as the first, named as the first with a name. No
// row is locked or written for a known contact
// with a name: an INSERT ... ON CONFLICT DO UPDATE would lock it even when
// it changes nothing, and serialise every transaction upserting a frequent
// sender. A contact that another transaction inserted after this
// statement's snapshot is neither read nor inserted: its address has no
// row in the result.
const upsertContactsSQL = `
WITH input AS (
	SELECT * FROM unnest($2::text[], $3::text[], $4::text[])
		WITH ORDINALITY AS i(in_email, in_name, in_domain, in_ord)
), wanted AS (
	SELECT DISTINCT ON (lower(in_email)) lower(in_email) AS in_key, in_email, in_domain, in_ord,
		first_value(in_name) OVER (PARTITION BY lower(in_email) ORDER BY in_name = '', in_ord) AS in_name
	FROM input ORDER BY lower(in_email), in_ord
), known AS (
	SELECT w.in_key, w.in_name, c.tenant_id, c.id, c.email, c.name, c.phone, c.account_id,
		c.bouncing_since, c.created_at, c.updated_at
	-- One index probe per address (LIMIT keeps the planner from turning it
	-- into a scan of the tenant's contacts when it has no statistics).
	FROM wanted w CROSS JOIN LATERAL (
		SELECT * FROM contacts c WHERE c.tenant_id = $1 AND lower(c.email) = w.in_key LIMIT 1) AS c
), named AS (
	-- c.name = '' is checked again on the newest row version when another
	-- transaction was naming the contact at the same time: its name stays.
	UPDATE contacts c SET name = k.in_name, updated_at = $5
	FROM known k
	WHERE c.tenant_id = $1 AND c.id = k.id AND k.name = '' AND k.in_name <> '' AND c.name = ''
	RETURNING k.in_key, c.tenant_id, c.id, c.email, c.name, c.phone, c.account_id,
		c.bouncing_since, c.created_at, c.updated_at
), added AS (
	INSERT INTO contacts (tenant_id, email, name, account_id, created_at, updated_at)
	SELECT $1, w.in_email, w.in_name,
		(SELECT a.id FROM accounts a WHERE a.tenant_id = $1 AND a.domains @> ARRAY[w.in_domain]
			ORDER BY a.id LIMIT 1),
		$5, $5
	FROM wanted w WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.in_key = w.in_key)
	ORDER BY w.in_ord
	ON CONFLICT (tenant_id, lower(email)) DO NOTHING
	RETURNING lower(email) AS in_key, ` + contactRow + `
), found AS (
	SELECT * FROM named
	UNION ALL SELECT * FROM added
	UNION ALL SELECT in_key, ` + contactRow + ` FROM known k
		WHERE NOT EXISTS (SELECT 1 FROM named n WHERE n.id = k.id)
)
SELECT ` + contactColumns + `, i.in_ord
FROM input i JOIN found f ON f.in_key = lower(i.in_email)
ORDER BY i.in_ord`

// UpsertContacts returns the contacts with the addresses' emails, creating
// the missing ones; see casedesk.ContactOps. It takes one statement, and a
// second one only when another transaction inserted one of the contacts
// concurrently: the second statement's fresh snapshot (READ COMMITTED)
// sees it.
func (t *tx) UpsertContacts(ctx context.Context, tenantID int64, addrs []casedesk.Address) ([]*casedesk.Contact, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	emails, names := make([]string, len(addrs)), make([]string, len(addrs))
	for i, a := range addrs {
		email := strings.TrimSpace(a.Email)
		if !casedesk.ValidEmail(email) {
			err := casedesk.Errorf(casedesk.EINVALID, "%q is not an email address", clip(a.Email, 100))
			return nil, itemError(err, "address", i, len(addrs))
		}
		emails[i], names[i] = clean(email), clip(strings.TrimSpace(a.Name), maxNameBytes)
	}
	out := make([]*casedesk.Contact, len(addrs))
	todo := make([]int, len(addrs))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; attempt < 2 && len(todo) > 0; attempt++ {
		var err error
		if todo, err = t.upsertContacts(ctx, tenantID, emails, names, todo, out); err != nil {
			return nil, err
		}
	}
	if len(todo) > 0 {
		return nil, casedesk.Errorf(casedesk.ECONFLICT, "contact %q is being stored concurrently", clip(emails[todo[0]], 100))
	}
	return out, nil
}

// upsertContacts runs upsertContactsSQL for the addresses at the indexes
// todo, fills their contacts in out and returns the indexes left without.
func (t *tx) upsertContacts(ctx context.Context, tenantID int64, emails, names []string, todo []int, out []*casedesk.Contact) ([]int, error) {
	es, ns, ds := make([]string, len(todo)), make([]string, len(todo)), make([]string, len(todo))
	for j, i := range todo {
		es[j], ns[j], ds[j] = emails[i], names[i], casedesk.EmailDomain(emails[i])
	}
	rows, err := t.tx.Query(ctx, upsertContactsSQL, tenantID, es, ns, ds, t.now)
	if err != nil {
		return nil, wrap(err, "upsert contacts")
	}
	defer rows.Close()
	found := make([]bool, len(todo))
	for rows.Next() {
		var ord int
		c, err := scanContact(rows, &ord)
		if err != nil {
			return nil, wrap(err, "upsert contacts")
		}
		found[ord-1], out[todo[ord-1]] = true, c
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "upsert contacts")
	}
	var left []int
	for j, i := range todo {
		if !found[j] {
			left = append(left, i)
		}
	}
	return left, nil
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

// FindContactsByEmails returns the tenant's contacts among emails,
// compared case-insensitively, in one indexed read; see casedesk.ContactOps.
func (t *tx) FindContactsByEmails(ctx context.Context, tenantID int64, emails []string) ([]*casedesk.Contact, error) {
	if len(emails) == 0 {
		return nil, nil
	}
	cleaned := make([]string, len(emails))
	for i, e := range emails {
		cleaned[i] = clean(e)
	}
	// One probe of contacts_email per address: "lower(email) = ANY(...)"
	// is left out of the index condition by a generic plan when the table
	// has no statistics, and then all the tenant's contacts are read.
	rows, err := t.tx.Query(ctx, `SELECT `+contactColumns+`
		FROM (SELECT DISTINCT lower(e) AS wanted FROM unnest($2::text[]) AS e) AS w
		CROSS JOIN LATERAL (SELECT * FROM contacts
			WHERE tenant_id = $1 AND lower(email) = w.wanted LIMIT 1) AS c`,
		tenantID, cleaned)
	if err != nil {
		return nil, wrap(err, "find contacts")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Contact, error) { return scanContact(r) })
	return out, wrap(err, "find contacts")
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
