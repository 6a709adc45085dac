package casestore_test

import (
	"bytes"
	"testing"

	"github.com/casedesk/casedesk"
)

func TestCreateTenant(t *testing.T) {
	f := newFixture(t)
	if len(f.tenant.TokenSecret) != 32 || bytes.Equal(f.tenant.TokenSecret, make([]byte, 32)) {
		t.Fatalf("token secret %x is not 32 random bytes", f.tenant.TokenSecret)
	}
	other := newFixture(t)
	if bytes.Equal(f.tenant.TokenSecret, other.tenant.TokenSecret) {
		t.Fatal("two tenants share a token secret")
	}
	tests := []struct {
		name string
		in   casedesk.NewTenant
		code string
	}{
		{"duplicate slug", casedesk.NewTenant{Slug: f.tenant.Slug, Name: "x"}, casedesk.ECONFLICT},
		{"bad slug", casedesk.NewTenant{Slug: "Has Spaces", Name: "x"}, casedesk.EINVALID},
		{"sandbox without parent", casedesk.NewTenant{Slug: "sb-" + randHex(4), Name: "x", Kind: casedesk.TenantSandbox}, casedesk.EINVALID},
		{"sandbox", casedesk.NewTenant{Slug: "sb-" + randHex(4), Name: "x", Kind: casedesk.TenantSandbox, ParentID: f.tenant.ID}, ""},
		{"second sandbox", casedesk.NewTenant{Slug: "sb-" + randHex(4), Name: "x", Kind: casedesk.TenantSandbox, ParentID: f.tenant.ID}, casedesk.ECONFLICT},
		{"bad support address", casedesk.NewTenant{Slug: "t-" + randHex(4), Name: "x", SupportAddress: "support"}, casedesk.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
				_, err := tx.CreateTenant(ctx(), tt.in)
				return err
			})
			wantCode(t, err, tt.code)
		})
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.FindTenantBySlug(ctx(), f.tenant.Slug)
		if err == nil && (got.ID != f.tenant.ID || got.SupportAddress != "support@acme.example" || got.Kind != casedesk.TenantProduction) {
			t.Errorf("FindTenantBySlug = %+v", got)
		}
		_, err = tx.FindTenant(ctx(), -1)
		wantCode(t, err, casedesk.ENOTFOUND)
		return nil
	})
}

func TestUpsertContact(t *testing.T) {
	f := newFixture(t)
	update(t, f.db, func(tx casedesk.Tx) error {
		acct, err := tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: "Initech", Domains: []string{"initech.example"}})
		if err != nil {
			return err
		}
		first, err := tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Email: "Peter@Initech.example"})
		if err != nil {
			return err
		}
		if first.AccountID != acct.ID {
			t.Errorf("new contact account = %d, want %d from its domain", first.AccountID, acct.ID)
		}
		again, err := tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Name: "Peter Gibbons", Email: "peter@INITECH.example"})
		if err != nil {
			return err
		}
		if again.ID != first.ID || again.Name != "Peter Gibbons" || again.Email != "Peter@Initech.example" {
			t.Errorf("second upsert = %+v, want the same contact, named now", again)
		}
		third, err := tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Name: "Someone Else", Email: "peter@initech.example"})
		if err != nil {
			return err
		}
		if third.Name != "Peter Gibbons" {
			t.Errorf("a known name was overwritten by %q", third.Name)
		}
		if err := tx.MarkBouncing(ctx(), f.tenant.ID, "PETER@initech.example"); err != nil {
			return err
		}
		bounced, err := tx.FindContact(ctx(), f.tenant.ID, first.ID)
		if err == nil && bounced.BouncingSince.IsZero() {
			t.Error("bouncing not recorded")
		}
		wantCode(t, tx.MarkBouncing(ctx(), f.tenant.ID, "ghost@initech.example"), casedesk.ENOTFOUND)
		return err
	})
}

func TestFindUserByEmail(t *testing.T) {
	f := newFixture(t)
	update(t, f.db, func(tx casedesk.Tx) error {
		agent, err := tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: "Ann@Acme.example", Name: "Ann", RoleName: casedesk.RoleSupport})
		if err != nil {
			return err
		}
		finance, err := tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: "bill+ops@acme.example", Name: "Bill", RoleName: casedesk.RoleFinance})
		if err != nil {
			return err
		}
		tests := []struct {
			email  string
			wantID int64
			agent  bool
		}{
			{"ann@acme.example", agent.ID, true},
			{"ANN+case123@acme.example", agent.ID, true},
			{"bill+ops@ACME.example", finance.ID, false},
			{"nobody@acme.example", 0, false},
		}
		for _, tt := range tests {
			u, err := tx.FindUserByEmail(ctx(), f.tenant.ID, tt.email)
			if tt.wantID == 0 {
				wantCode(t, err, casedesk.ENOTFOUND)
				continue
			}
			if err != nil {
				return err
			}
			if u.ID != tt.wantID || u.IsAgent() != tt.agent {
				t.Errorf("%s: user %d agent=%v, want %d agent=%v", tt.email, u.ID, u.IsAgent(), tt.wantID, tt.agent)
			}
		}
		_, err = tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: "x@acme.example", RoleName: "wizard"})
		wantCode(t, err, casedesk.EINVALID)
		return nil
	})
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: "ann@ACME.example", RoleName: casedesk.RoleSupport})
		return err
	})
	wantCode(t, err, casedesk.ECONFLICT)
}
