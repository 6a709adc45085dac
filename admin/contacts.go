package admin

import (
	"net/http"
	"time"

	"github.com/casedesk/casedesk"
)

type contactJSON struct {
	ID            int64      `json:"id"`
	Email         string     `json:"email"`
	Name          string     `json:"name"`
	Phone         string     `json:"phone"`
	AccountID     *int64     `json:"account_id"`
	BouncingSince *time.Time `json:"bouncing_since"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

func contactOut(c *casedesk.Contact) contactJSON {
	out := contactJSON{ID: c.ID, Email: c.Email, Name: c.Name, Phone: c.Phone, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.AccountID != 0 {
		out.AccountID = &c.AccountID
	}
	if !c.BouncingSince.IsZero() {
		out.BouncingSince = &c.BouncingSince
	}
	return out
}

type accountJSON struct {
	ID               int64     `json:"id"`
	Name             string    `json:"name"`
	Domains          []string  `json:"domains"`
	SLATier          string    `json:"sla_tier"`
	BillingContactID *int64    `json:"billing_contact_id"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

func accountOut(a *casedesk.Account) accountJSON {
	out := accountJSON{ID: a.ID, Name: a.Name, Domains: a.Domains, SLATier: a.SLATier, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if out.Domains == nil {
		out.Domains = []string{}
	}
	if a.BillingContactID != 0 {
		out.BillingContactID = &a.BillingContactID
	}
	return out
}

// listContacts: GET /v1/contacts?q=&account_id=&limit=&cursor=
func (s *Server) listContacts(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	f := casedesk.ContactFilter{Q: r.URL.Query().Get("q"), Cursor: r.URL.Query().Get("cursor")}
	var err error
	if f.AccountID, err = queryInt(r, "account_id"); err != nil {
		return err
	}
	if f.Limit, err = limitOf(r); err != nil {
		return err
	}
	if err := checkLen("q", f.Q, 200); err != nil {
		return err
	}
	var page *casedesk.ContactPage
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		page, err = tx.ListContacts(r.Context(), p.Tenant.ID, f)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Contacts   []contactJSON `json:"contacts"`
		NextCursor *string       `json:"next_cursor"`
	}{Contacts: []contactJSON{}}
	for _, c := range page.Contacts {
		out.Contacts = append(out.Contacts, contactOut(c))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getContact: GET /v1/contacts/{id}
func (s *Server) getContact(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var c *casedesk.Contact
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		c, err = tx.FindContact(r.Context(), p.Tenant.ID, id)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, contactOut(c))
	return nil
}

type contactRequest struct {
	Email     *string `json:"email"`
	Name      *string `json:"name"`
	Phone     *string `json:"phone"`
	AccountID *int64  `json:"account_id"`
}

func (req contactRequest) check() error {
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"email", req.Email, 320}, {"name", req.Name, maxNameLen}, {"phone", req.Phone, 50}} {
		if f.v != nil {
			if err := checkLen(f.name, *f.v, f.max); err != nil {
				return err
			}
		}
	}
	if req.AccountID != nil && *req.AccountID < 0 {
		return casedesk.Errorf(casedesk.EINVALID, "field \"account_id\" must be an account ID, or 0 for none")
	}
	return nil
}

// createContact: POST /v1/contacts {"email", "name"?, "phone"?, "account_id"?}
func (s *Server) createContact(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req contactRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	if req.Email == nil || !casedesk.ValidEmail(*req.Email) {
		return casedesk.Errorf(casedesk.EINVALID, "field \"email\" must be an email address")
	}
	n := casedesk.NewContact{TenantID: p.Tenant.ID, Email: *req.Email, Name: deref(req.Name), Phone: deref(req.Phone)}
	if req.AccountID != nil {
		n.AccountID = *req.AccountID
	}
	var c *casedesk.Contact
	err := s.write(r, p, "contact.create", "contact", func() string { return itoa(c.ID) }, req,
		func(tx casedesk.Tx) (err error) {
			c, err = tx.CreateContact(r.Context(), n)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, contactOut(c))
	return nil
}

// patchContact: PATCH /v1/contacts/{id} {"name"?, "phone"?, "account_id"?}
func (s *Server) patchContact(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var req contactRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Email != nil {
		return casedesk.Errorf(casedesk.EINVALID, "field \"email\" cannot change; create a new contact")
	}
	if err := req.check(); err != nil {
		return err
	}
	var c *casedesk.Contact
	err = s.write(r, p, "contact.update", "contact", func() string { return itoa(id) }, req,
		func(tx casedesk.Tx) (err error) {
			c, err = tx.UpdateContact(r.Context(), p.Tenant.ID, id, casedesk.ContactUpdate{Name: req.Name, Phone: req.Phone,
				AccountID: req.AccountID})
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, contactOut(c))
	return nil
}

// listAccounts: GET /v1/accounts?q=&limit=&cursor=
func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	f := casedesk.AccountFilter{Q: r.URL.Query().Get("q"), Cursor: r.URL.Query().Get("cursor")}
	var err error
	if f.Limit, err = limitOf(r); err != nil {
		return err
	}
	if err := checkLen("q", f.Q, 200); err != nil {
		return err
	}
	var page *casedesk.AccountPage
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		page, err = tx.ListAccounts(r.Context(), p.Tenant.ID, f)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Accounts   []accountJSON `json:"accounts"`
		NextCursor *string       `json:"next_cursor"`
	}{Accounts: []accountJSON{}}
	for _, a := range page.Accounts {
		out.Accounts = append(out.Accounts, accountOut(a))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getAccount: GET /v1/accounts/{id}
func (s *Server) getAccount(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var a *casedesk.Account
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		a, err = tx.FindAccount(r.Context(), p.Tenant.ID, id)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, accountOut(a))
	return nil
}

type accountRequest struct {
	Name             *string   `json:"name"`
	Domains          *[]string `json:"domains"`
	SLATier          *string   `json:"sla_tier"`
	BillingContactID *int64    `json:"billing_contact_id"`
}

func (req accountRequest) check() error {
	if req.Name != nil {
		if err := firstErr(required("name", *req.Name), checkLen("name", *req.Name, maxNameLen)); err != nil {
			return err
		}
	}
	if req.SLATier != nil {
		if err := checkLen("sla_tier", *req.SLATier, 50); err != nil {
			return err
		}
	}
	if req.Domains != nil {
		if len(*req.Domains) > 100 {
			return casedesk.Errorf(casedesk.EINVALID, "field \"domains\" holds at most 100 domains")
		}
		for _, d := range *req.Domains {
			if err := checkLen("domains", d, 253); err != nil {
				return err
			}
		}
	}
	if req.BillingContactID != nil && *req.BillingContactID < 0 {
		return casedesk.Errorf(casedesk.EINVALID, "field \"billing_contact_id\" must be a contact ID, or 0 for none")
	}
	return nil
}

// createAccount: POST /v1/accounts {"name", "domains"?, "sla_tier"?, "billing_contact_id"?}
func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req accountRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return casedesk.Errorf(casedesk.EINVALID, "field \"name\" is required")
	}
	if err := req.check(); err != nil {
		return err
	}
	n := casedesk.NewAccount{TenantID: p.Tenant.ID, Name: *req.Name, SLATier: deref(req.SLATier)}
	if req.Domains != nil {
		n.Domains = *req.Domains
	}
	if req.BillingContactID != nil {
		n.BillingContactID = *req.BillingContactID
	}
	var a *casedesk.Account
	err := s.write(r, p, "account.create", "account", func() string { return itoa(a.ID) }, req,
		func(tx casedesk.Tx) (err error) {
			a, err = tx.CreateAccount(r.Context(), n)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, accountOut(a))
	return nil
}

// patchAccount: PATCH /v1/accounts/{id}
func (s *Server) patchAccount(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var req accountRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	var a *casedesk.Account
	err = s.write(r, p, "account.update", "account", func() string { return itoa(id) }, req,
		func(tx casedesk.Tx) (err error) {
			a, err = tx.UpdateAccount(r.Context(), p.Tenant.ID, id, casedesk.AccountUpdate{Name: req.Name,
				Domains: req.Domains, SLATier: req.SLATier, BillingContactID: req.BillingContactID})
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, accountOut(a))
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
