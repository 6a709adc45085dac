package casestore_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func (f *fixture) user(t testing.TB, email, role string) *casedesk.User {
	t.Helper()
	var u *casedesk.User
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		u, err = tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: email, Name: "N " + email, RoleName: role})
		return err
	})
	return u
}

// apiKey creates a key for a user of the fixture's tenant and returns the
// secret shown to the user with the stored key.
func (f *fixture) apiKey(t testing.TB, userID int64, expires time.Time) (string, *casedesk.APIKey) {
	t.Helper()
	secret, hash := casedesk.NewAPIKeySecret(f.tenant.ID)
	var k *casedesk.APIKey
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		k, err = tx.CreateAPIKey(ctx(), casedesk.NewAPIKey{TenantID: f.tenant.ID, UserID: userID,
			Name: "ci", Hash: hash, ExpiresAt: expires})
		return err
	})
	return secret, k
}

// authenticate does what the API's middleware does with a bearer key.
func authenticate(db casedesk.Store, secret string) (*casedesk.Principal, error) {
	tenantID, hash, err := casedesk.ParseAPIKey(secret)
	if err != nil {
		return nil, err
	}
	var p *casedesk.Principal
	err = db.Update(ctx(), func(tx casedesk.Tx) (err error) {
		p, err = tx.Authenticate(ctx(), tenantID, hash)
		return err
	})
	return p, err
}

// view runs fn in a View and fails the test on error.
func view(t testing.TB, db casedesk.Store, fn func(tx casedesk.Tx) error) {
	t.Helper()
	if err := db.View(ctx(), fn); err != nil {
		t.Fatal(err)
	}
}

func roleNames(rs []*casedesk.Role) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestRoles(t *testing.T) {
	f := newFixture(t)
	tid := f.tenant.ID
	perms := func(ps ...casedesk.Permission) []casedesk.Permission { return ps }
	var triage *casedesk.Role
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		// Permissions are stored as a set, in AllPermissions order.
		triage, err = tx.CreateRole(ctx(), tid, " triage ", perms(casedesk.PermCasesWrite, casedesk.PermCasesRead, casedesk.PermCasesWrite))
		if err != nil {
			return err
		}
		_, err = tx.CreateRole(ctx(), tid, "billing-lite", nil)
		return err
	})
	want := &casedesk.Role{ID: triage.ID, TenantID: tid, Name: "triage",
		Permissions: perms(casedesk.PermCasesRead, casedesk.PermCasesWrite)}
	if !reflect.DeepEqual(triage, want) {
		t.Fatalf("created %+v, want %+v", triage, want)
	}
	view(t, f.db, func(tx casedesk.Tx) error {
		roles, err := tx.ListRoles(ctx(), tid)
		if err != nil {
			return err
		}
		got := strings.Join(roleNames(roles), " ")
		if want := "admin finance general support support-access technical billing-lite triage"; got != want {
			t.Errorf("roles %q, want %q", got, want)
		}
		if r := roles[0]; !r.BuiltIn || r.TenantID != tid || len(r.Permissions) != len(casedesk.AllPermissions) {
			t.Errorf("admin = %+v", r)
		}
		if r := roles[6]; r.BuiltIn || r.Permissions != nil {
			t.Errorf("billing-lite = %+v, want custom with no permissions", r)
		}
		found, err := tx.FindRole(ctx(), tid, "triage")
		if err != nil || !reflect.DeepEqual(found, want) {
			t.Errorf("FindRole = %+v, %v; want %+v", found, err, want)
		}
		_, err = tx.FindRole(ctx(), tid, "nope")
		wantCode(t, err, casedesk.ENOTFOUND)
		return nil
	})

	refused := []struct {
		name  string
		role  string
		perms []casedesk.Permission
		code  string
	}{
		{"taken", "triage", nil, casedesk.ECONFLICT},
		{"built-in name", casedesk.RoleAdmin, nil, casedesk.EINVALID},
		{"built-in name in other case", "Support-Access", nil, casedesk.EINVALID},
		{"unknown permission", "x", perms("cases:delete_all"), casedesk.EINVALID},
		{"blank name", "  ", nil, casedesk.EINVALID},
		{"long name", strings.Repeat("r", 65), nil, casedesk.EINVALID},
	}
	for _, tt := range refused {
		t.Run("create "+tt.name, func(t *testing.T) {
			wantCode(t, failUpdate(t, f.db, func(tx casedesk.Tx) error {
				_, err := tx.CreateRole(ctx(), tid, tt.role, tt.perms)
				return err
			}), tt.code)
		})
	}
	view(t, f.db, func(tx casedesk.Tx) error {
		roles, err := tx.ListRoles(ctx(), tid)
		if len(roles) != 8 {
			t.Errorf("%d roles after refused creates, want 8", len(roles))
		}
		return err
	})
}

func TestUpdateRole(t *testing.T) {
	f := newFixture(t)
	tid := f.tenant.ID
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.CreateRole(ctx(), tid, "triage", []casedesk.Permission{casedesk.PermCasesRead})
		return err
	})
	tests := []struct {
		name  string
		role  string
		perms []casedesk.Permission
		code  string // "" for success
	}{
		// Stored as a set in AllPermissions order: cases:reply first.
		{"custom replaced", "triage", []casedesk.Permission{casedesk.PermContactsWrite, casedesk.PermCasesReply, casedesk.PermContactsWrite}, ""},
		{"custom emptied", "triage", nil, ""},
		{"support-access narrowed", casedesk.RoleSupportAccess, []casedesk.Permission{casedesk.PermCasesRead}, ""},
		{"support-access with write", casedesk.RoleSupportAccess, []casedesk.Permission{casedesk.PermCasesRead, casedesk.PermCasesWrite}, casedesk.EINVALID},
		{"admin immutable", casedesk.RoleAdmin, []casedesk.Permission{casedesk.PermCasesRead}, casedesk.EINVALID},
		{"support immutable", casedesk.RoleSupport, []casedesk.Permission{casedesk.PermCasesRead}, casedesk.EINVALID},
		{"general immutable, even unchanged", casedesk.RoleGeneral, []casedesk.Permission{casedesk.PermCasesCreate, casedesk.PermCasesReadOwn}, casedesk.EINVALID},
		{"unknown permission", "triage", []casedesk.Permission{"cases:delete_all"}, casedesk.EINVALID},
		{"unknown role", "nope", nil, casedesk.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before *casedesk.Role
			view(t, f.db, func(tx casedesk.Tx) (err error) {
				before, _ = tx.FindRole(ctx(), tid, tt.role)
				return nil
			})
			var got *casedesk.Role
			err := f.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
				got, err = tx.UpdateRole(ctx(), tid, tt.role, tt.perms)
				return err
			})
			var after *casedesk.Role
			view(t, f.db, func(tx casedesk.Tx) (err error) {
				after, _ = tx.FindRole(ctx(), tid, tt.role)
				return nil
			})
			if tt.code != "" {
				wantCode(t, err, tt.code)
				if !reflect.DeepEqual(after, before) {
					t.Fatalf("refused update changed %+v to %+v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []casedesk.Permission
			for _, p := range casedesk.AllPermissions {
				if slices.Contains(tt.perms, p) {
					want = append(want, p)
				}
			}
			if !slices.Equal(got.Permissions, want) || !reflect.DeepEqual(got, after) ||
				got.ID != before.ID || got.BuiltIn != before.BuiltIn {
				t.Errorf("returned %+v, stored %+v, want %+v with permissions %v", got, after, before, want)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	now := time.Date(2032, 1, 2, 3, 4, 5, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	tid := f.tenant.ID
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.CreateRole(ctx(), tid, "triage", []casedesk.Permission{casedesk.PermCasesRead})
		return err
	})
	var users []*casedesk.User
	for _, e := range []string{"a", "b", "c", "d", "e"} {
		users = append(users, f.user(t, e+"@acme.example", casedesk.RoleSupport))
	}
	ann := users[0]

	view(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.FindUser(ctx(), tid, ann.ID)
		if err != nil || !reflect.DeepEqual(got, ann) || got.Role.Name != casedesk.RoleSupport {
			t.Errorf("FindUser = %+v, %v; want %+v with the support role", got, err, ann)
		}
		_, err = tx.FindUser(ctx(), tid, users[4].ID+1000)
		wantCode(t, err, casedesk.ENOTFOUND)

		// Pages of two, by ID, through the cursor.
		var ids []int64
		for after := int64(0); ; {
			page, err := tx.ListUsers(ctx(), tid, casedesk.UserFilter{Limit: 2, AfterID: after})
			if err != nil {
				return err
			}
			if len(page) > 2 {
				t.Fatalf("page of %d users, limit 2", len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, u := range page {
				if u.Role == nil || u.Role.Name != casedesk.RoleSupport {
					t.Errorf("listed user without role: %+v", u)
				}
				ids = append(ids, u.ID)
			}
			after = page[len(page)-1].ID
		}
		var want []int64
		for _, u := range users {
			want = append(want, u.ID)
		}
		if !slices.Equal(ids, want) {
			t.Errorf("paged IDs %v, want %v", ids, want)
		}
		return nil
	})

	upd := func(u casedesk.UserUpdate) (*casedesk.User, error) {
		var got *casedesk.User
		err := f.db.Update(ctx(), func(tx casedesk.Tx) (err error) {
			got, err = tx.UpdateUser(ctx(), tid, ann.ID, u)
			return err
		})
		return got, err
	}
	name, role, off := "Ann Agent", "triage", false
	now = now.Add(time.Hour)
	got, err := upd(casedesk.UserUpdate{Name: &name, RoleName: &role, Active: &off})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.Role.Name != "triage" || got.RoleID != got.Role.ID || got.Active ||
		!got.UpdatedAt.Equal(now) || !got.CreatedAt.Equal(ann.CreatedAt) || got.Email != ann.Email {
		t.Errorf("updated %+v", got)
	}
	// Nil fields stay.
	now = now.Add(time.Hour)
	if got, err = upd(casedesk.UserUpdate{}); err != nil || got.Name != name || got.Role.Name != "triage" || got.Active || !got.UpdatedAt.Equal(now) {
		t.Errorf("empty update = %+v, %v", got, err)
	}

	unknown := "nope"
	_, err = upd(casedesk.UserUpdate{Name: &unknown, RoleName: &unknown})
	wantCode(t, err, casedesk.EINVALID)
	err = f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.UpdateUser(ctx(), tid, users[4].ID+1000, casedesk.UserUpdate{Name: &name})
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)
	view(t, f.db, func(tx casedesk.Tx) error {
		got, err := tx.FindUser(ctx(), tid, ann.ID)
		if err == nil && (got.Name != name || got.Role.Name != "triage") {
			t.Errorf("refused update changed the user: %+v", got)
		}
		return err
	})
}

func TestListUsersPageSize(t *testing.T) {
	f := newFixture(t)
	update(t, f.db, func(tx casedesk.Tx) error {
		for i := range casedesk.DefaultPageSize + 2 {
			_, err := tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID,
				Email: "u" + strings.Repeat("x", i) + "@acme.example", RoleName: casedesk.RoleGeneral})
			if err != nil {
				return err
			}
		}
		return nil
	})
	for _, tt := range []struct{ limit, want int }{
		{0, casedesk.DefaultPageSize}, {-1, casedesk.DefaultPageSize},
		{casedesk.MaxPageSize + 1, casedesk.DefaultPageSize + 2}, {3, 3},
	} {
		view(t, f.db, func(tx casedesk.Tx) error {
			us, err := tx.ListUsers(ctx(), f.tenant.ID, casedesk.UserFilter{Limit: tt.limit})
			if len(us) != tt.want {
				t.Errorf("limit %d: %d users, want %d", tt.limit, len(us), tt.want)
			}
			return err
		})
	}
}

func TestAPIKeys(t *testing.T) {
	now := time.Date(2033, 5, 6, 7, 8, 9, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	tid := f.tenant.ID
	ann := f.user(t, "ann@acme.example", casedesk.RoleSupport)
	bob := f.user(t, "bob@acme.example", casedesk.RoleFinance)

	secret, key := f.apiKey(t, ann.ID, time.Time{})
	wantKey := &casedesk.APIKey{ID: key.ID, TenantID: tid, UserID: ann.ID, Name: "ci",
		Hash: casedesk.HashAPIKey(secret), CreatedAt: now}
	if !reflect.DeepEqual(key, wantKey) {
		t.Fatalf("created %+v, want %+v", key, wantKey)
	}
	now = now.Add(time.Minute)
	p, err := authenticate(f.db, secret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant.ID != tid || p.Tenant.Slug != f.tenant.Slug || !bytes.Equal(p.Tenant.TokenSecret, f.tenant.TokenSecret) ||
		p.User.ID != ann.ID || p.User.Role == nil || p.User.Role.Name != casedesk.RoleSupport || !p.User.Role.Has(casedesk.PermCasesReply) ||
		p.Key.ID != key.ID || !p.Key.LastUsedAt.Equal(now) || !p.User.LastActiveAt.Equal(now) {
		t.Fatalf("principal = tenant %+v, user %+v, key %+v", p.Tenant, p.User, p.Key)
	}

	createErr := func(n casedesk.NewAPIKey) error {
		return failUpdate(t, f.db, func(tx casedesk.Tx) error {
			_, err := tx.CreateAPIKey(ctx(), n)
			return err
		})
	}
	_, hash := casedesk.NewAPIKeySecret(tid)
	wantCode(t, createErr(casedesk.NewAPIKey{TenantID: tid, UserID: ann.ID, Hash: hash[:31]}), casedesk.EINVALID)
	wantCode(t, createErr(casedesk.NewAPIKey{TenantID: tid, UserID: bob.ID + 1000, Hash: hash}), casedesk.ENOTFOUND)
	wantCode(t, createErr(casedesk.NewAPIKey{TenantID: tid, UserID: ann.ID, Hash: hash, ExpiresAt: now}), casedesk.EINVALID)
	wantCode(t, createErr(casedesk.NewAPIKey{TenantID: tid, UserID: ann.ID, Hash: key.Hash}), casedesk.ECONFLICT)
	off := false
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.UpdateUser(ctx(), tid, bob.ID, casedesk.UserUpdate{Active: &off})
		return err
	})
	wantCode(t, createErr(casedesk.NewAPIKey{TenantID: tid, UserID: bob.ID, Hash: hash}), casedesk.EINVALID)

	view(t, f.db, func(tx casedesk.Tx) error {
		keys, err := tx.ListAPIKeys(ctx(), tid, bob.ID)
		if err != nil || len(keys) != 0 {
			t.Errorf("bob's keys = %v, %v; want none", keys, err)
		}
		_, err = tx.ListAPIKeys(ctx(), tid, bob.ID+1000)
		wantCode(t, err, casedesk.ENOTFOUND)
		return nil
	})
}

func TestAuthenticateRefuses(t *testing.T) {
	now := time.Date(2033, 6, 1, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	tid := f.tenant.ID
	ann := f.user(t, "ann@acme.example", casedesk.RoleAdmin)
	bob := f.user(t, "bob@acme.example", casedesk.RoleAdmin)
	good, _ := f.apiKey(t, ann.ID, time.Time{})
	expiry := now.Add(time.Hour)
	expiring, _ := f.apiKey(t, ann.ID, expiry)
	revoked, rk := f.apiKey(t, ann.ID, time.Time{})
	ofInactive, _ := f.apiKey(t, bob.ID, time.Time{})
	unknown, _ := casedesk.NewAPIKeySecret(tid)

	revokedAt := now
	update(t, f.db, func(tx casedesk.Tx) error { return tx.RevokeAPIKey(ctx(), tid, rk.ID) })
	now = now.Add(time.Minute)
	// Revoking again is fine and keeps the first time.
	update(t, f.db, func(tx casedesk.Tx) error { return tx.RevokeAPIKey(ctx(), tid, rk.ID) })
	wantCode(t, failUpdate(t, f.db, func(tx casedesk.Tx) error { return tx.RevokeAPIKey(ctx(), tid, rk.ID+1000) }), casedesk.ENOTFOUND)
	off := false
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.UpdateUser(ctx(), tid, bob.ID, casedesk.UserUpdate{Active: &off})
		return err
	})

	view(t, f.db, func(tx casedesk.Tx) error {
		keys, err := tx.ListAPIKeys(ctx(), tid, ann.ID)
		if err != nil {
			return err
		}
		if len(keys) != 3 || keys[0].ID > keys[1].ID || keys[1].ID > keys[2].ID {
			t.Fatalf("ann's keys = %+v, want 3 by ID", keys)
		}
		if !keys[1].ExpiresAt.Equal(expiry) || !keys[2].RevokedAt.Equal(revokedAt) || !keys[0].RevokedAt.IsZero() {
			t.Errorf("keys = %+v %+v %+v", keys[0], keys[1], keys[2])
		}
		return nil
	})

	// Just before its expiry a key works; at it, it does not.
	now = expiry.Add(-time.Microsecond)
	if _, err := authenticate(f.db, expiring); err != nil {
		t.Fatalf("key just before expiry: %v", err)
	}
	now = expiry
	tests := []struct {
		name   string
		secret string
		hash   []byte // instead of the secret's
	}{
		{"unknown", unknown, nil},
		{"expired", expiring, nil},
		{"revoked", revoked, nil},
		{"inactive user", ofInactive, nil},
		{"short hash", good, casedesk.HashAPIKey(good)[:31]},
		{"no hash", good, []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash := tt.hash
			if hash == nil {
				hash = casedesk.HashAPIKey(tt.secret)
			}
			err := failUpdate(t, f.db, func(tx casedesk.Tx) error {
				_, err := tx.Authenticate(ctx(), tid, hash)
				return err
			})
			// One answer for every reason, so a caller learns nothing.
			wantCode(t, err, casedesk.EUNAUTHORIZED)
			if msg := casedesk.ErrorMessage(err); msg != "invalid API key" {
				t.Errorf("message %q says more than %q", msg, "invalid API key")
			}
		})
	}
	if _, err := authenticate(f.db, good); err != nil {
		t.Fatalf("the good key after all that: %v", err)
	}
}

// TestAuthenticateRecordsUseOncePerMinute: a busy key writes its use at
// most once a minute, for the key and for its user separately.
func TestAuthenticateRecordsUseOncePerMinute(t *testing.T) {
	t0 := time.Date(2034, 2, 3, 4, 5, 6, 0, time.UTC)
	now := t0
	f := newFixture(t, casestoreClock(&now))
	tid := f.tenant.ID
	ann := f.user(t, "ann@acme.example", casedesk.RoleSupport)
	first, k1 := f.apiKey(t, ann.ID, time.Time{})
	second, k2 := f.apiKey(t, ann.ID, time.Time{})

	// xmin changes with every write of a row, even one of the same values.
	type state struct {
		keyUsed, userActive time.Time
		keyXmin, userXmin   string
	}
	read := func(keyID int64) state {
		t.Helper()
		var s state
		err := queryRow(t, `SELECT k.last_used_at, k.xmin::text, u.last_active_at, u.xmin::text
			FROM api_keys k JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.user_id
			WHERE k.tenant_id = $1 AND k.id = $2`, []any{tid, keyID}, &s.keyUsed, &s.keyXmin, &s.userActive, &s.userXmin)
		if err != nil {
			t.Fatal(err)
		}
		s.keyUsed, s.userActive = s.keyUsed.UTC(), s.userActive.UTC()
		return s
	}
	mustAuth := func(secret string) *casedesk.Principal {
		t.Helper()
		p, err := authenticate(f.db, secret)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	mustAuth(first)
	s1 := read(k1.ID)
	if !s1.keyUsed.Equal(t0) || !s1.userActive.Equal(t0) {
		t.Fatalf("after the first use: %+v, want both at %v", s1, t0)
	}

	now = t0.Add(59 * time.Second)
	if p := mustAuth(first); !p.Key.LastUsedAt.Equal(t0) || !p.User.LastActiveAt.Equal(t0) {
		t.Errorf("principal within the minute: key used %v, user active %v; want %v", p.Key.LastUsedAt, p.User.LastActiveAt, t0)
	}
	if s := read(k1.ID); s != s1 {
		t.Errorf("a use within the minute wrote: %+v, was %+v", s, s1)
	}
	// Within the minute a View can authenticate: there is nothing to write.
	h1 := casedesk.HashAPIKey(first)
	view(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.Authenticate(ctx(), tid, h1)
		return err
	})

	// Another key of the same user: its first use is written, the user's
	// activity, a few seconds old, is not.
	p := mustAuth(second)
	s2 := read(k2.ID)
	if !s2.keyUsed.Equal(now) || !s2.userActive.Equal(t0) || s2.userXmin != s1.userXmin || !p.Key.LastUsedAt.Equal(now) {
		t.Errorf("second key's first use: %+v, want key at %v, user untouched at %v", s2, now, t0)
	}

	now = t0.Add(2 * time.Minute)
	if p := mustAuth(first); !p.Key.LastUsedAt.Equal(now) || !p.User.LastActiveAt.Equal(now) {
		t.Errorf("principal after 2 minutes: %+v %+v", p.Key, p.User)
	}
	if s := read(k1.ID); !s.keyUsed.Equal(now) || !s.userActive.Equal(now) {
		t.Errorf("after 2 minutes: %+v, want both at %v", s, now)
	}

	// A use is due, so a View refuses rather than lose it.
	now = t0.Add(5 * time.Minute)
	if err := f.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.Authenticate(ctx(), tid, h1)
		return err
	}); err == nil {
		t.Error("View recorded nothing and did not say so")
	}
}

func TestAccessTenantIsolation(t *testing.T) {
	fa, fb := newFixture(t), newFixture(t)
	a, b := fa.tenant.ID, fb.tenant.ID
	ann := fa.user(t, "ann@acme.example", casedesk.RoleSupport)
	fb.user(t, "ann@acme.example", casedesk.RoleSupport) // B's own Ann
	secret, key := fa.apiKey(t, ann.ID, time.Time{})
	update(t, fa.db, func(tx casedesk.Tx) error {
		_, err := tx.CreateRole(ctx(), a, "triage", []casedesk.Permission{casedesk.PermCasesRead})
		return err
	})
	name, role := "Mallory", "triage"
	_, hash := casedesk.NewAPIKeySecret(b)

	// Each call must succeed with tenant A's ID and be not found (or
	// refused, for a role name) with tenant B's, so a call that always
	// fails cannot pass.
	tests := []struct {
		name     string
		call     func(tx casedesk.Tx, tenantID int64) error
		codeForB string
	}{
		{"FindUser", func(tx casedesk.Tx, id int64) error { _, err := tx.FindUser(ctx(), id, ann.ID); return err }, casedesk.ENOTFOUND},
		{"UpdateUser", func(tx casedesk.Tx, id int64) error {
			_, err := tx.UpdateUser(ctx(), id, ann.ID, casedesk.UserUpdate{Name: &name})
			return err
		}, casedesk.ENOTFOUND},
		{"UpdateUser to a role of A", func(tx casedesk.Tx, id int64) error {
			self, err := tx.FindUserByEmail(ctx(), id, "ann@acme.example")
			if err != nil {
				return err
			}
			_, err = tx.UpdateUser(ctx(), id, self.ID, casedesk.UserUpdate{RoleName: &role})
			return err
		}, casedesk.EINVALID},
		{"FindRole", func(tx casedesk.Tx, id int64) error { _, err := tx.FindRole(ctx(), id, "triage"); return err }, casedesk.ENOTFOUND},
		{"UpdateRole", func(tx casedesk.Tx, id int64) error {
			_, err := tx.UpdateRole(ctx(), id, "triage", []casedesk.Permission{casedesk.PermCasesWrite})
			return err
		}, casedesk.ENOTFOUND},
		{"CreateAPIKey", func(tx casedesk.Tx, id int64) error {
			_, err := tx.CreateAPIKey(ctx(), casedesk.NewAPIKey{TenantID: id, UserID: ann.ID, Hash: hash})
			return err
		}, casedesk.ENOTFOUND},
		{"ListAPIKeys", func(tx casedesk.Tx, id int64) error {
			keys, err := tx.ListAPIKeys(ctx(), id, ann.ID)
			if err == nil && len(keys) == 0 {
				return errors.New("A's keys not listed")
			}
			return err
		}, casedesk.ENOTFOUND},
		{"Authenticate", func(tx casedesk.Tx, id int64) error {
			_, err := tx.Authenticate(ctx(), id, key.Hash)
			return err
		}, casedesk.EUNAUTHORIZED},
		{"RevokeAPIKey", func(tx casedesk.Tx, id int64) error { return tx.RevokeAPIKey(ctx(), id, key.ID) }, casedesk.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, failUpdate(t, fb.db, func(tx casedesk.Tx) error { return tt.call(tx, b) }), tt.codeForB)
			// Rolled back: A's objects are as before for the next call.
			if err := fa.db.Update(ctx(), func(tx casedesk.Tx) error {
				if err := tt.call(tx, a); err != nil {
					return err
				}
				return errRollback
			}); !errors.Is(err, errRollback) {
				t.Fatalf("with A's own ID: %v", err)
			}
		})
	}
	view(t, fb.db, func(tx casedesk.Tx) error {
		us, err := tx.ListUsers(ctx(), b, casedesk.UserFilter{})
		if countIf(us, func(u *casedesk.User) bool { return u.TenantID != b || u.ID == ann.ID }) != 0 || len(us) != 1 {
			t.Errorf("B lists %+v", us)
		}
		return err
	})
	if _, err := authenticate(fa.db, secret); err != nil {
		t.Fatalf("A's key after B's attempts: %v", err)
	}
}

// errRollback ends a transaction whose writes must not stay.
var errRollback = casedesk.Errorf(casedesk.EINVALID, "roll back")

// TestDeactivateInactiveUsers runs in the 1980s. The job works across every
// tenant of the shared package database, and the other tests create their
// users from 1999 on (most at the wall clock), so a cut-off in 1986 can only
// ever reach the users made here; the test also checks that it returned
// no one else.
func TestDeactivateInactiveUsers(t *testing.T) {
	now := time.Date(1985, 1, 1, 9, 0, 0, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	other := newFixture(t, casestoreClock(&now))
	idle := f.user(t, "idle@acme.example", casedesk.RoleSupport)
	busy := f.user(t, "busy@acme.example", casedesk.RoleSupport)
	off := f.user(t, "off@acme.example", casedesk.RoleSupport)
	otherIdle := other.user(t, "idle@acme.example", casedesk.RoleGeneral)
	secret, _ := f.apiKey(t, busy.ID, time.Time{})
	no := false
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		off, err = tx.UpdateUser(ctx(), f.tenant.ID, off.ID, casedesk.UserUpdate{Active: &no})
		return err
	})
	now = time.Date(1986, 3, 1, 9, 0, 0, 0, time.UTC)
	if _, err := authenticate(f.db, secret); err != nil {
		t.Fatal(err)
	}
	now = time.Date(1986, 6, 1, 9, 0, 0, 0, time.UTC)
	fresh := f.user(t, "fresh@acme.example", casedesk.RoleSupport)
	since := time.Date(1986, 1, 1, 0, 0, 0, 0, time.UTC)

	now = time.Date(1986, 7, 1, 9, 0, 0, 0, time.UTC)
	deactivate := func() []*casedesk.User {
		t.Helper()
		var got []*casedesk.User
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			got, err = tx.DeactivateInactiveUsers(ctx(), since)
			return err
		})
		for _, u := range got {
			if u.TenantID != f.tenant.ID && u.TenantID != other.tenant.ID {
				t.Fatalf("deactivated another test's user %+v: the cut-off is not old enough", u)
			}
		}
		return got
	}
	got := deactivate()
	if len(got) != 2 || got[0].ID != idle.ID || got[1].ID != otherIdle.ID {
		t.Fatalf("deactivated %+v, want idle of both tenants", got)
	}
	for _, u := range got {
		if u.Active || !u.UpdatedAt.Equal(now) || u.Role == nil || !u.LastActiveAt.IsZero() {
			t.Errorf("deactivated user %+v", u)
		}
	}
	if again := deactivate(); len(again) != 0 {
		t.Fatalf("second run deactivated %+v", again)
	}

	view(t, f.db, func(tx casedesk.Tx) error {
		us, err := tx.ListUsers(ctx(), f.tenant.ID, casedesk.UserFilter{})
		active := map[int64]bool{}
		updated := map[int64]time.Time{}
		for _, u := range us {
			active[u.ID], updated[u.ID] = u.Active, u.UpdatedAt
		}
		if active[idle.ID] || !active[busy.ID] || !active[fresh.ID] || active[off.ID] {
			t.Errorf("active: %v; want only busy and fresh", active)
		}
		if !updated[off.ID].Equal(off.UpdatedAt) {
			t.Errorf("the user off already was touched: updated %v, was %v", updated[off.ID], off.UpdatedAt)
		}
		return err
	})

	// An admin turning idle back on gives them a fresh start: the job does
	// not turn them off again at once.
	yes := true
	now = now.Add(time.Hour)
	update(t, f.db, func(tx casedesk.Tx) error {
		u, err := tx.UpdateUser(ctx(), f.tenant.ID, idle.ID, casedesk.UserUpdate{Active: &yes})
		if err == nil && (!u.Active || !u.LastActiveAt.Equal(now)) {
			t.Errorf("reactivated %+v", u)
		}
		return err
	})
	if again := deactivate(); len(again) != 0 {
		t.Fatalf("run after reactivation deactivated %+v", again)
	}
}

func TestUpdateTenantSettings(t *testing.T) {
	now := time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)
	fa := newFixture(t, casestoreClock(&now))
	fb := newFixture(t, casestoreClock(&now))
	now = now.Add(time.Hour)
	s := casedesk.TenantSettings{SupportAccess: true, Language: "de", SolveAfter: 48 * time.Hour, AckLimitPerHour: 2}
	var got *casedesk.Tenant
	update(t, fa.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.UpdateTenantSettings(ctx(), fa.tenant.ID, s)
		return err
	})
	if got.Settings != s || !got.UpdatedAt.Equal(now) || got.ID != fa.tenant.ID || got.Slug != fa.tenant.Slug {
		t.Fatalf("updated %+v", got)
	}
	view(t, fa.db, func(tx casedesk.Tx) error {
		a, err := tx.FindTenant(ctx(), fa.tenant.ID)
		if err == nil && !reflect.DeepEqual(a, got) {
			t.Errorf("stored %+v, returned %+v", a, got)
		}
		b, err := tx.FindTenant(ctx(), fb.tenant.ID)
		if err == nil && !reflect.DeepEqual(b, fb.tenant) {
			t.Errorf("tenant B changed: %+v, was %+v", b, fb.tenant)
		}
		return err
	})
	// The settings are replaced, not merged: a knob turned back to its zero
	// value (left out of the JSON) is off again.
	now = now.Add(time.Hour)
	update(t, fa.db, func(tx casedesk.Tx) (err error) {
		got, err = tx.UpdateTenantSettings(ctx(), fa.tenant.ID, casedesk.TenantSettings{Language: "fr"})
		return err
	})
	view(t, fa.db, func(tx casedesk.Tx) error {
		a, err := tx.FindTenant(ctx(), fa.tenant.ID)
		if err == nil && (a.Settings != casedesk.TenantSettings{Language: "fr"} || !a.UpdatedAt.Equal(now)) {
			t.Errorf("after the second update: %+v", a)
		}
		return err
	})
	wantCode(t, failUpdate(t, fa.db, func(tx casedesk.Tx) error {
		_, err := tx.UpdateTenantSettings(ctx(), fb.tenant.ID+1000000, s)
		return err
	}), casedesk.ENOTFOUND)
}
