package casestore_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func ptr[T any](v T) *T { return &v }

// accountOf creates an account of the fixture's tenant.
func (f *fixture) accountOf(t *testing.T, name string, domains ...string) *casedesk.Account {
	t.Helper()
	var a *casedesk.Account
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		a, err = tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: name, Domains: domains})
		return err
	})
	return a
}

func TestCreateContact(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	acme := f.accountOf(t, "Acme", "acme-customer.example")
	second := f.accountOf(t, "Second", "second.example")
	foreign := other.accountOf(t, "Foreign", "foreign.example")

	create := func(fx *fixture, n casedesk.NewContact) (*casedesk.Contact, error) {
		n.TenantID = fx.tenant.ID
		var c *casedesk.Contact
		err := fx.tryUpdate(func(tx casedesk.Tx) (err error) {
			c, err = tx.CreateContact(ctx(), n)
			return err
		})
		return c, err
	}
	tests := []struct {
		name        string
		n           casedesk.NewContact
		wantAccount int64
	}{
		{"joins the account of its domain", casedesk.NewContact{Email: " Dan@ACME-Customer.Example ", Name: " Dan ", Phone: "+1 555"}, acme.ID},
		{"a given account wins", casedesk.NewContact{Email: "eve@acme-customer.example", AccountID: second.ID}, second.ID},
		{"no account", casedesk.NewContact{Email: "fay@elsewhere.example"}, 0},
		{"another tenant's domain is not joined", casedesk.NewContact{Email: "gus@foreign.example"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := create(f, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if c.AccountID != tt.wantAccount || c.TenantID != f.tenant.ID || !c.CreatedAt.Equal(now) || c.ID == 0 {
				t.Errorf("contact = %+v, want account %d", c, tt.wantAccount)
			}
		})
	}
	var dan *casedesk.Contact
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		dan, err = tx.FindContactByEmail(ctx(), f.tenant.ID, "dan@acme-customer.example")
		return err
	})
	if dan.Email != "Dan@ACME-Customer.Example" || dan.Name != "Dan" || dan.Phone != "+1 555" {
		t.Errorf("stored %q %q %q", dan.Email, dan.Name, dan.Phone)
	}

	bad := []struct {
		name string
		fx   *fixture
		n    casedesk.NewContact
		code string
	}{
		{"taken email, other case", f, casedesk.NewContact{Email: "DAN@acme-customer.example"}, casedesk.ECONFLICT},
		{"not an email", f, casedesk.NewContact{Email: "dan at acme"}, casedesk.EINVALID},
		{"empty email", f, casedesk.NewContact{}, casedesk.EINVALID},
		{"unknown account", f, casedesk.NewContact{Email: "hal@acme.example", AccountID: foreign.ID + 1_000_000}, casedesk.EINVALID},
		{"another tenant's account", f, casedesk.NewContact{Email: "hal@acme.example", AccountID: foreign.ID}, casedesk.EINVALID},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := create(tt.fx, tt.n)
			wantCode(t, err, tt.code)
		})
	}
	// The same email in another tenant is another contact.
	if _, err := create(other, casedesk.NewContact{Email: "dan@acme-customer.example"}); err != nil {
		t.Fatal(err)
	}
	// ECONFLICT leaves the transaction usable.
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.CreateContact(ctx(), casedesk.NewContact{TenantID: f.tenant.ID, Email: "dan@acme-customer.example"})
		wantCode(t, err, casedesk.ECONFLICT)
		_, err = tx.CreateContact(ctx(), casedesk.NewContact{TenantID: f.tenant.ID, Email: "ida@acme-customer.example"})
		return err
	})
}

func TestUpdateContact(t *testing.T) {
	now := time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	acme := f.accountOf(t, "Acme", "customer.example")
	foreign := other.accountOf(t, "Foreign")
	var c *casedesk.Contact
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		c, err = tx.CreateContact(ctx(), casedesk.NewContact{TenantID: f.tenant.ID, Email: "dan@customer.example",
			Name: "Dan", Phone: "+1 555"})
		return err
	})
	if c.AccountID != acme.ID {
		t.Fatalf("account = %d, want %d", c.AccountID, acme.ID)
	}
	apply := func(fx *fixture, id int64, u casedesk.ContactUpdate) (*casedesk.Contact, error) {
		var got *casedesk.Contact
		err := fx.tryUpdate(func(tx casedesk.Tx) (err error) {
			got, err = tx.UpdateContact(ctx(), fx.tenant.ID, id, u)
			return err
		})
		return got, err
	}
	steps := []struct {
		name             string
		u                casedesk.ContactUpdate
		wantName, phone  string
		account          int64
		updatedAtMovesOn bool
	}{
		{"nothing", casedesk.ContactUpdate{}, "Dan", "+1 555", acme.ID, false},
		{"name", casedesk.ContactUpdate{Name: ptr(" Daniel ")}, "Daniel", "+1 555", acme.ID, true},
		{"phone", casedesk.ContactUpdate{Phone: ptr("")}, "Daniel", "", acme.ID, true},
		{"out of the account", casedesk.ContactUpdate{AccountID: ptr(int64(0))}, "Daniel", "", 0, true},
		{"into it again", casedesk.ContactUpdate{AccountID: ptr(acme.ID), Name: ptr("Dan")}, "Dan", "", acme.ID, true},
	}
	for _, s := range steps {
		now = now.Add(time.Minute)
		got, err := apply(f, c.ID, s.u)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Name != s.wantName || got.Phone != s.phone || got.AccountID != s.account || got.UpdatedAt.Equal(now) != s.updatedAtMovesOn {
			t.Errorf("%s: %q %q account %d updated %v", s.name, got.Name, got.Phone, got.AccountID, got.UpdatedAt)
		}
	}
	bad := []struct {
		name string
		fx   *fixture
		id   int64
		u    casedesk.ContactUpdate
		code string
	}{
		{"another tenant's account", f, c.ID, casedesk.ContactUpdate{AccountID: ptr(foreign.ID)}, casedesk.EINVALID},
		{"unknown account", f, c.ID, casedesk.ContactUpdate{AccountID: ptr(foreign.ID + 1_000_000)}, casedesk.EINVALID},
		{"unknown contact", f, c.ID + 1_000_000, casedesk.ContactUpdate{Name: ptr("x")}, casedesk.ENOTFOUND},
		{"unknown contact, no change", f, c.ID + 1_000_000, casedesk.ContactUpdate{}, casedesk.ENOTFOUND},
		{"another tenant's contact", other, c.ID, casedesk.ContactUpdate{Name: ptr("Mallory")}, casedesk.ENOTFOUND},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apply(tt.fx, tt.id, tt.u)
			wantCode(t, err, tt.code)
		})
	}
	got, err := apply(f, c.ID, casedesk.ContactUpdate{})
	if err != nil || got.Name != "Dan" || got.AccountID != acme.ID {
		t.Errorf("after refused updates: %+v, %v", got, err)
	}
}

func TestUpdateAccount(t *testing.T) {
	now := time.Date(2026, 5, 3, 9, 0, 0, 0, time.UTC)
	f, other := newFixture(t, casestoreClock(&now)), newFixture(t)
	a := f.accountOf(t, "Acme", "acme.example")
	f.accountOf(t, "Shares a domain", "shared.example")
	foreignContact := other.requester
	apply := func(fx *fixture, id int64, u casedesk.AccountUpdate) (*casedesk.Account, error) {
		var got *casedesk.Account
		err := fx.tryUpdate(func(tx casedesk.Tx) (err error) {
			got, err = tx.UpdateAccount(ctx(), fx.tenant.ID, id, u)
			return err
		})
		return got, err
	}
	domains := []string{" Acme.COM", "shared.example"}
	steps := []struct {
		name    string
		u       casedesk.AccountUpdate
		want    string // name|domains|tier|billing
		updated bool
	}{
		{"nothing", casedesk.AccountUpdate{}, "Acme|acme.example||0", false},
		{"name and tier", casedesk.AccountUpdate{Name: ptr(" Acme Corp "), SLATier: ptr("gold")}, "Acme Corp|acme.example|gold|0", true},
		// Another account has shared.example: allowed, as CreateAccount allows it.
		{"domains", casedesk.AccountUpdate{Domains: &domains}, "Acme Corp|acme.com,shared.example|gold|0", true},
		{"billing contact", casedesk.AccountUpdate{BillingContactID: ptr(f.requester.ID)}, fmt.Sprintf("Acme Corp|acme.com,shared.example|gold|%d", f.requester.ID), true},
		{"no billing contact, no domains", casedesk.AccountUpdate{BillingContactID: ptr(int64(0)), Domains: &[]string{}}, "Acme Corp||gold|0", true},
	}
	for _, s := range steps {
		now = now.Add(time.Minute)
		got, err := apply(f, a.ID, s.u)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		desc := fmt.Sprintf("%s|%s|%s|%d", got.Name, strings.Join(got.Domains, ","), got.SLATier, got.BillingContactID)
		if desc != s.want || got.UpdatedAt.Equal(now) != s.updated {
			t.Errorf("%s: %s updated %v, want %s", s.name, desc, got.UpdatedAt, s.want)
		}
	}
	if domains[0] != " Acme.COM" {
		t.Errorf("the caller's domains were changed: %q", domains)
	}
	bad := []struct {
		name string
		fx   *fixture
		id   int64
		u    casedesk.AccountUpdate
		code string
	}{
		{"empty name", f, a.ID, casedesk.AccountUpdate{Name: ptr("  ")}, casedesk.EINVALID},
		{"not a domain", f, a.ID, casedesk.AccountUpdate{Domains: &[]string{"bob@acme.example"}}, casedesk.EINVALID},
		{"empty domain", f, a.ID, casedesk.AccountUpdate{Domains: &[]string{""}}, casedesk.EINVALID},
		{"another tenant's billing contact", f, a.ID, casedesk.AccountUpdate{BillingContactID: ptr(foreignContact.ID)}, casedesk.EINVALID},
		{"unknown billing contact", f, a.ID, casedesk.AccountUpdate{BillingContactID: ptr(foreignContact.ID + 1_000_000)}, casedesk.EINVALID},
		{"unknown account", f, a.ID + 1_000_000, casedesk.AccountUpdate{Name: ptr("x")}, casedesk.ENOTFOUND},
		{"another tenant's account", other, a.ID, casedesk.AccountUpdate{Name: ptr("Mallory")}, casedesk.ENOTFOUND},
		{"another tenant's account, no change", other, a.ID, casedesk.AccountUpdate{}, casedesk.ENOTFOUND},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apply(tt.fx, tt.id, tt.u)
			wantCode(t, err, tt.code)
		})
	}
	got, err := apply(f, a.ID, casedesk.AccountUpdate{})
	if err != nil || got.Name != "Acme Corp" || len(got.Domains) != 0 {
		t.Errorf("after refused updates: %+v, %v", got, err)
	}
	// A contact of the new domain joins the account.
	update(t, f.db, func(tx casedesk.Tx) error {
		if _, err := tx.UpdateAccount(ctx(), f.tenant.ID, a.ID, casedesk.AccountUpdate{Domains: &[]string{"newdomain.example"}}); err != nil {
			return err
		}
		c, err := tx.CreateContact(ctx(), casedesk.NewContact{TenantID: f.tenant.ID, Email: "zoe@NewDomain.example"})
		if err == nil && c.AccountID != a.ID {
			err = fmt.Errorf("new contact joined account %d, want %d", c.AccountID, a.ID)
		}
		return err
	})
}

// contactEmails lists a tenant's contacts page by page and returns the
// emails in order, with the number of pages.
func (f *fixture) contactEmails(t *testing.T, filter casedesk.ContactFilter, between func()) ([]string, int) {
	t.Helper()
	var out []string
	for pages := 1; ; pages++ {
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		var page *casedesk.ContactPage
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			page, err = tx.ListContacts(ctx(), f.tenant.ID, filter)
			return err
		})
		for i, c := range page.Contacts {
			if c.TenantID != f.tenant.ID || i > 0 && c.ID <= page.Contacts[i-1].ID {
				t.Fatalf("contact %+v out of place", c)
			}
			out = append(out, c.Email)
		}
		if page.NextCursor == "" {
			return out, pages
		}
		if between != nil {
			between()
		}
		filter.Cursor = page.NextCursor
	}
}

func TestListContacts(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	acme := f.accountOf(t, "Acme", "acme.example")
	addrs := []casedesk.Address{
		{Name: "Ann Archer", Email: "ann@acme.example"},
		{Name: "Ben Baker", Email: "ben@bakery.example"},
		{Name: "Zoë Ärger", Email: "zoe@acme.example"},
		{Name: "Percy 100%", Email: "percy_p@pct.example"},
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.UpsertContacts(ctx(), f.tenant.ID, addrs)
		return err
	})
	update(t, other.db, func(tx casedesk.Tx) error {
		_, err := tx.UpsertContacts(ctx(), other.tenant.ID, []casedesk.Address{{Name: "Ann Archer", Email: "ann@acme.example"}})
		return err
	})
	all := []string{"cara@customer.example", "ann@acme.example", "ben@bakery.example", "zoe@acme.example", "percy_p@pct.example"}
	tests := []struct {
		name   string
		filter casedesk.ContactFilter
		want   []string
	}{
		{"all", casedesk.ContactFilter{}, all},
		{"name part, any case", casedesk.ContactFilter{Q: "ARCH"}, []string{"ann@acme.example"}},
		{"email part", casedesk.ContactFilter{Q: "bakery.EX"}, []string{"ben@bakery.example"}},
		{"name or email", casedesk.ContactFilter{Q: "acme"}, []string{"ann@acme.example", "zoe@acme.example"}},
		{"non-ASCII", casedesk.ContactFilter{Q: "ärger"}, []string{"zoe@acme.example"}},
		{"percent is literal", casedesk.ContactFilter{Q: "0%"}, []string{"percy_p@pct.example"}},
		{"underscore is literal", casedesk.ContactFilter{Q: "y_p"}, []string{"percy_p@pct.example"}},
		{"underscore matches no other character", casedesk.ContactFilter{Q: "n_a"}, nil},
		{"account", casedesk.ContactFilter{AccountID: acme.ID}, []string{"ann@acme.example", "zoe@acme.example"}},
		{"account and text", casedesk.ContactFilter{AccountID: acme.ID, Q: "zo"}, []string{"zoe@acme.example"}},
		{"unknown account", casedesk.ContactFilter{AccountID: acme.ID + 1_000_000}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 0} {
				tt.filter.Limit = limit
				got, _ := f.contactEmails(t, tt.filter, nil)
				if !slices.Equal(got, tt.want) {
					t.Errorf("limit %d: got %q, want %q", limit, got, tt.want)
				}
			}
		})
	}
	if got, _ := other.contactEmails(t, casedesk.ContactFilter{Q: "a"}, nil); !slices.Equal(got, []string{"cara@customer.example", "ann@acme.example"}) {
		t.Errorf("other tenant lists %q", got)
	}
	// Contacts created between pages come after the cursor: every contact
	// is listed once, and the new ones at the end.
	n := 0
	got, _ := f.contactEmails(t, casedesk.ContactFilter{Limit: 2}, func() {
		n++
		update(t, f.db, func(tx casedesk.Tx) error {
			_, err := tx.CreateContact(ctx(), casedesk.NewContact{TenantID: f.tenant.ID, Email: fmt.Sprintf("late%d@acme.example", n)})
			return err
		})
	})
	if len(got) < len(all)+2 || !slices.Equal(got[:len(all)], all) || got[len(all)] != "late1@acme.example" {
		t.Errorf("paged while contacts arrived: %q", got)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e] {
			t.Errorf("%s listed twice", e)
		}
		seen[e] = true
	}
}

func TestListPageSizeAndCursors(t *testing.T) {
	f := newFixture(t)
	addrs := make([]casedesk.Address, casedesk.MaxPageSize+10)
	for i := range addrs {
		addrs[i] = casedesk.Address{Email: fmt.Sprintf("c%03d@bulk.example", i)}
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.UpsertContacts(ctx(), f.tenant.ID, addrs)
		return err
	})
	for _, tt := range []struct{ limit, want int }{{0, casedesk.DefaultPageSize}, {-1, casedesk.DefaultPageSize}, {casedesk.MaxPageSize * 2, casedesk.MaxPageSize}, {7, 7}} {
		var page *casedesk.ContactPage
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			page, err = tx.ListContacts(ctx(), f.tenant.ID, casedesk.ContactFilter{Limit: tt.limit})
			return err
		})
		if len(page.Contacts) != tt.want || page.NextCursor == "" {
			t.Errorf("limit %d: %d contacts, cursor %q; want %d and a cursor", tt.limit, len(page.Contacts), page.NextCursor, tt.want)
		}
	}
	var contactCursor, accountCursor string
	update(t, f.db, func(tx casedesk.Tx) error {
		for i := range 3 {
			if _, err := tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: fmt.Sprintf("Acct %d", i)}); err != nil {
				return err
			}
		}
		cp, err := tx.ListContacts(ctx(), f.tenant.ID, casedesk.ContactFilter{Limit: 1})
		if err != nil {
			return err
		}
		ap, err := tx.ListAccounts(ctx(), f.tenant.ID, casedesk.AccountFilter{Limit: 1})
		contactCursor, accountCursor = cp.NextCursor, ap.NextCursor
		return err
	})
	caseCursor := "eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjoieCIsImkiOjF9" // of a case listing
	for _, tt := range []struct {
		name string
		list func(tx casedesk.Tx) error
	}{
		{"garbage", func(tx casedesk.Tx) error {
			_, err := tx.ListContacts(ctx(), f.tenant.ID, casedesk.ContactFilter{Cursor: "not-a-cursor"})
			return err
		}},
		{"account cursor for contacts", func(tx casedesk.Tx) error {
			_, err := tx.ListContacts(ctx(), f.tenant.ID, casedesk.ContactFilter{Cursor: accountCursor})
			return err
		}},
		{"case cursor for contacts", func(tx casedesk.Tx) error {
			_, err := tx.ListContacts(ctx(), f.tenant.ID, casedesk.ContactFilter{Cursor: caseCursor})
			return err
		}},
		{"contact cursor for accounts", func(tx casedesk.Tx) error {
			_, err := tx.ListAccounts(ctx(), f.tenant.ID, casedesk.AccountFilter{Cursor: contactCursor})
			return err
		}},
		{"contact cursor for cases", func(tx casedesk.Tx) error {
			_, err := tx.ListCases(ctx(), f.tenant.ID, casedesk.CaseFilter{Cursor: contactCursor})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, f.db.View(ctx(), tt.list), casedesk.EINVALID)
		})
	}
}

func TestListAccounts(t *testing.T) {
	f, other := newFixture(t), newFixture(t)
	names := []string{"Acme Corp", "Bakery_Ltd", "acme labs", "100% Juice", "Zeta"}
	for _, n := range names {
		f.accountOf(t, n)
	}
	other.accountOf(t, "Acme Corp")
	list := func(fx *fixture, filter casedesk.AccountFilter, between func()) []string {
		var out []string
		for pages := 0; ; pages++ {
			if pages > 100 {
				t.Fatal("pagination does not end")
			}
			var page *casedesk.AccountPage
			update(t, fx.db, func(tx casedesk.Tx) (err error) {
				page, err = tx.ListAccounts(ctx(), fx.tenant.ID, filter)
				return err
			})
			for _, a := range page.Accounts {
				if a.TenantID != fx.tenant.ID {
					t.Fatalf("account %+v of another tenant", a)
				}
				out = append(out, a.Name)
			}
			if page.NextCursor == "" {
				return out
			}
			if between != nil {
				between()
			}
			filter.Cursor = page.NextCursor
		}
	}
	tests := []struct {
		name   string
		filter casedesk.AccountFilter
		want   []string
	}{
		{"all", casedesk.AccountFilter{}, names},
		{"part, any case", casedesk.AccountFilter{Q: "ACME"}, []string{"Acme Corp", "acme labs"}},
		{"underscore is literal", casedesk.AccountFilter{Q: "y_l"}, []string{"Bakery_Ltd"}},
		{"underscore matches no other character", casedesk.AccountFilter{Q: "e_c"}, nil},
		{"percent is literal", casedesk.AccountFilter{Q: "%"}, []string{"100% Juice"}},
		{"none", casedesk.AccountFilter{Q: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, limit := range []int{1, 3, 0} {
				tt.filter.Limit = limit
				if got := list(f, tt.filter, nil); !slices.Equal(got, tt.want) {
					t.Errorf("limit %d: got %q, want %q", limit, got, tt.want)
				}
			}
		})
	}
	if got := list(other, casedesk.AccountFilter{}, nil); !slices.Equal(got, []string{"Acme Corp"}) {
		t.Errorf("other tenant lists %q", got)
	}
	n := 0
	got := list(f, casedesk.AccountFilter{Limit: 2}, func() {
		n++
		f.accountOf(t, fmt.Sprintf("Late %d", n))
	})
	if len(got) < len(names)+1 || !slices.Equal(got[:len(names)], names) || got[len(names)] != "Late 1" {
		t.Errorf("paged while accounts arrived: %q", got)
	}
}
