package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/casedesk/casedesk"
)

type userJSON struct {
	ID           int64      `json:"id"`
	Email        string     `json:"email"`
	Name         string     `json:"name"`
	Role         string     `json:"role"`
	Active       bool       `json:"active"`
	Agent        bool       `json:"agent"`
	LastActiveAt *time.Time `json:"last_active_at"`
	CreatedAt    time.Time  `json:"created_at"`
}

func userOut(u *casedesk.User) userJSON {
	out := userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Active: u.Active, Agent: u.IsAgent(), CreatedAt: u.CreatedAt}
	if u.Role != nil {
		out.Role = u.Role.Name
	}
	if !u.LastActiveAt.IsZero() {
		out.LastActiveAt = &u.LastActiveAt
	}
	return out
}

// listUsers: GET /v1/users?limit=&cursor=
func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	f := casedesk.UserFilter{}
	var err error
	if f.Limit, err = limitOf(r); err != nil {
		return err
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		if f.AfterID, err = strconv.ParseInt(c, 10, 64); err != nil || f.AfterID < 0 {
			return casedesk.Errorf(casedesk.EINVALID, "cursor is not one this server issued")
		}
	}
	var users []*casedesk.User
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		users, err = tx.ListUsers(r.Context(), p.Tenant.ID, f)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Users      []userJSON `json:"users"`
		NextCursor *string    `json:"next_cursor"`
	}{Users: []userJSON{}}
	for _, u := range users {
		out.Users = append(out.Users, userOut(u))
	}
	if len(users) == f.Limit {
		next := itoa(users[len(users)-1].ID)
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getUser: GET /v1/users/{id}
func (s *Server) getUser(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var u *casedesk.User
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		u, err = tx.FindUser(r.Context(), p.Tenant.ID, id)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, userOut(u))
	return nil
}

// checkGrant refuses to let a principal hand out permissions it does not
// hold itself: a role with users:write could otherwise create an admin and
// a key for it, and one with settings:write could widen its own role.
func checkGrant(p *casedesk.Principal, perms []casedesk.Permission, what string) error {
	for _, perm := range perms {
		// An unknown permission is the store's to refuse, as invalid.
		if slices.Contains(casedesk.AllPermissions, perm) && !p.User.Role.Has(perm) {
			return casedesk.Errorf(casedesk.EFORBIDDEN, "%s holds %q, which your role does not; only a user who holds every permission of a role may grant it", what, perm)
		}
	}
	return nil
}

// checkRoleGrant is checkGrant for a role of the tenant, by name; an
// unknown role is left to the store to report.
func checkRoleGrant(r *http.Request, tx casedesk.Tx, p *casedesk.Principal, name string) error {
	role, err := tx.FindRole(r.Context(), p.Tenant.ID, name)
	if err != nil {
		return nil
	}
	return checkGrant(p, role.Permissions, fmt.Sprintf("role %q", role.Name))
}

// checkUserGrant is checkGrant for acting on a user (changing them, or
// issuing them a key): their role must be within the principal's.
func checkUserGrant(r *http.Request, tx casedesk.Tx, p *casedesk.Principal, id int64) error {
	u, err := tx.FindUser(r.Context(), p.Tenant.ID, id)
	if err != nil || u.Role == nil {
		return err
	}
	return checkGrant(p, u.Role.Permissions, fmt.Sprintf("user %d's role %q", id, u.Role.Name))
}

// createUser: POST /v1/users {"email", "name", "role"}
func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req struct {
		Email string `json:"email"`
		Name  string `json:"name"`
		Role  string `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	err := firstErr(checkLen("email", req.Email, 320), checkLen("name", req.Name, maxNameLen),
		required("role", req.Role), checkLen("role", req.Role, 64))
	if err != nil {
		return err
	}
	if !casedesk.ValidEmail(req.Email) {
		return casedesk.Errorf(casedesk.EINVALID, "field \"email\" must be an email address")
	}
	var u *casedesk.User
	err = s.write(r, p, "user.create", "user", func() string { return itoa(u.ID) }, req,
		func(tx casedesk.Tx) (err error) {
			role, err := tx.FindRole(r.Context(), p.Tenant.ID, req.Role)
			if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
				return casedesk.Errorf(casedesk.EINVALID, "field \"role\": no role %q", req.Role)
			} else if err != nil {
				return err
			}
			if err := checkGrant(p, role.Permissions, fmt.Sprintf("role %q", role.Name)); err != nil {
				return err
			}
			if u, err = tx.CreateUser(r.Context(), casedesk.NewUser{TenantID: p.Tenant.ID, Email: req.Email,
				Name: req.Name, RoleName: req.Role}); err != nil {
				return err
			}
			u, err = tx.FindUser(r.Context(), p.Tenant.ID, u.ID)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, userOut(u))
	return nil
}

// patchUser: PATCH /v1/users/{id} {"name"?, "role"?, "active"?}
func (s *Server) patchUser(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var req struct {
		Name   *string `json:"name"`
		Role   *string `json:"role"`
		Active *bool   `json:"active"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name != nil {
		if err := checkLen("name", *req.Name, maxNameLen); err != nil {
			return err
		}
	}
	if req.Role != nil {
		if err := firstErr(required("role", *req.Role), checkLen("role", *req.Role, 64)); err != nil {
			return err
		}
	}
	if id == p.User.ID && (req.Active != nil && !*req.Active || req.Role != nil && *req.Role != p.User.Role.Name) {
		return casedesk.Errorf(casedesk.EINVALID, "you cannot deactivate yourself or change your own role")
	}
	var u *casedesk.User
	err = s.write(r, p, "user.update", "user", func() string { return itoa(id) }, req,
		func(tx casedesk.Tx) (err error) {
			if err := checkUserGrant(r, tx, p, id); err != nil {
				return err
			}
			if req.Role != nil {
				if err := checkRoleGrant(r, tx, p, *req.Role); err != nil {
					return err
				}
			}
			u, err = tx.UpdateUser(r.Context(), p.Tenant.ID, id, casedesk.UserUpdate{Name: req.Name, RoleName: req.Role,
				Active: req.Active})
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, userOut(u))
	return nil
}

type keyJSON struct {
	ID         int64      `json:"id"`
	UserID     int64      `json:"user_id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	// Key is the secret, present only in the answer that creates it.
	Key string `json:"key,omitempty"`
}

func keyOut(k *casedesk.APIKey) keyJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return keyJSON{ID: k.ID, UserID: k.UserID, Name: k.Name, CreatedAt: k.CreatedAt, ExpiresAt: opt(k.ExpiresAt),
		RevokedAt: opt(k.RevokedAt), LastUsedAt: opt(k.LastUsedAt)}
}

// listKeys: GET /v1/users/{id}/keys, without secrets.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var keys []*casedesk.APIKey
	err = s.store.View(r.Context(), func(tx casedesk.Tx) error {
		if _, err := tx.FindUser(r.Context(), p.Tenant.ID, id); err != nil {
			return err
		}
		var err error
		keys, err = tx.ListAPIKeys(r.Context(), p.Tenant.ID, id)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Keys []keyJSON `json:"keys"`
	}{Keys: []keyJSON{}}
	for _, k := range keys {
		out.Keys = append(out.Keys, keyOut(k))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createKey: POST /v1/users/{id}/keys {"name"?, "expires_at"?} answers
// with the key itself, the only time it is shown.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var req struct {
		Name      string  `json:"name"`
		ExpiresAt *string `json:"expires_at"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkLen("name", req.Name, maxNameLen); err != nil {
		return err
	}
	secret, hash := casedesk.NewAPIKeySecret(p.Tenant.ID)
	n := casedesk.NewAPIKey{TenantID: p.Tenant.ID, UserID: id, Name: req.Name, Hash: hash}
	var expires *time.Time // for the audit log: null when the key never expires
	if req.ExpiresAt != nil {
		if n.ExpiresAt, err = time.Parse(time.RFC3339, *req.ExpiresAt); err != nil {
			return casedesk.Errorf(casedesk.EINVALID, "field \"expires_at\" must be an RFC 3339 time such as 2027-01-31T00:00:00Z")
		}
		if !n.ExpiresAt.After(time.Now()) {
			return casedesk.Errorf(casedesk.EINVALID, "field \"expires_at\" must be in the future")
		}
		expires = &n.ExpiresAt
	}
	var k *casedesk.APIKey
	err = s.write(r, p, "api_key.create", "api_key", func() string { return itoa(k.ID) },
		map[string]any{"user_id": id, "name": req.Name, "expires_at": expires},
		func(tx casedesk.Tx) (err error) {
			if err := checkUserGrant(r, tx, p, id); err != nil {
				return err
			}
			k, err = tx.CreateAPIKey(r.Context(), n)
			return err
		})
	if err != nil {
		return err
	}
	out := keyOut(k)
	out.Key = secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// revokeKey: DELETE /v1/keys/{id}
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	err = s.write(r, p, "api_key.revoke", "api_key", func() string { return itoa(id) }, map[string]any{},
		func(tx casedesk.Tx) error { return tx.RevokeAPIKey(r.Context(), p.Tenant.ID, id) })
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type roleJSON struct {
	Name        string                `json:"name"`
	Permissions []casedesk.Permission `json:"permissions"`
	BuiltIn     bool                  `json:"built_in"`
}

func roleOut(r *casedesk.Role) roleJSON {
	perms := r.Permissions
	if perms == nil {
		perms = []casedesk.Permission{}
	}
	return roleJSON{Name: r.Name, Permissions: perms, BuiltIn: r.BuiltIn}
}

// listRoles: GET /v1/roles
func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var roles []*casedesk.Role
	err := s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		roles, err = tx.ListRoles(r.Context(), p.Tenant.ID)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Roles []roleJSON `json:"roles"`
	}{Roles: []roleJSON{}}
	for _, role := range roles {
		out.Roles = append(out.Roles, roleOut(role))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createRole: POST /v1/roles {"name", "permissions"}
func (s *Server) createRole(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req struct {
		Name        string                `json:"name"`
		Permissions []casedesk.Permission `json:"permissions"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := firstErr(required("name", req.Name), checkLen("name", req.Name, 64)); err != nil {
		return err
	}
	var role *casedesk.Role
	err := s.write(r, p, "role.create", "role", func() string { return req.Name }, req,
		func(tx casedesk.Tx) (err error) {
			if err := checkGrant(p, req.Permissions, "the role"); err != nil {
				return err
			}
			role, err = tx.CreateRole(r.Context(), p.Tenant.ID, req.Name, req.Permissions)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, roleOut(role))
	return nil
}

// patchRole: PATCH /v1/roles/{name} {"permissions"}
func (s *Server) patchRole(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	name := r.PathValue("name")
	var req struct {
		Permissions *[]casedesk.Permission `json:"permissions"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Permissions == nil {
		return casedesk.Errorf(casedesk.EINVALID, "field \"permissions\" is required")
	}
	var role *casedesk.Role
	err := s.write(r, p, "role.update", "role", func() string { return name }, req,
		func(tx casedesk.Tx) (err error) {
			if err := checkGrant(p, *req.Permissions, "the role"); err != nil {
				return err
			}
			role, err = tx.UpdateRole(r.Context(), p.Tenant.ID, name, *req.Permissions)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, roleOut(role))
	return nil
}

type settingsJSON struct {
	Name            string `json:"name"`
	Slug            string `json:"slug"`
	Kind            string `json:"kind"`
	SupportAddress  string `json:"support_address"`
	SupportAccess   bool   `json:"support_access"`
	Language        string `json:"language"`
	AckLimitPerHour int    `json:"ack_limit_per_hour"`
	SubjectTag      string `json:"subject_tag_prefix"`
	ReminderAfter   string `json:"reminder_after"`
	SolveAfter      string `json:"solve_after"`
	CloseAfter      string `json:"close_after"`
}

func settingsOut(t *casedesk.Tenant) settingsJSON {
	st := t.Settings
	return settingsJSON{Name: t.Name, Slug: t.Slug, Kind: string(t.Kind), SupportAddress: t.SupportAddress,
		SupportAccess: st.SupportAccess, Language: orDefault(st.Language, casedesk.DefaultLanguage),
		AckLimitPerHour: st.AckLimit(), SubjectTag: st.TagPrefix(), ReminderAfter: st.Reminder().String(),
		SolveAfter: st.Solve().String(), CloseAfter: st.Close().String()}
}

// getSettings: GET /v1/settings, the tenant's administration details.
func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	writeJSON(w, http.StatusOK, settingsOut(p.Tenant))
	return nil
}

// patchSettings: PATCH /v1/settings changes the tenant's settings, among
// them the support-access toggle. Durations are Go durations ("72h").
func (s *Server) patchSettings(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req struct {
		SupportAccess   *bool   `json:"support_access"`
		Language        *string `json:"language"`
		AckLimitPerHour *int    `json:"ack_limit_per_hour"`
		SubjectTag      *string `json:"subject_tag_prefix"`
		ReminderAfter   *string `json:"reminder_after"`
		SolveAfter      *string `json:"solve_after"`
		CloseAfter      *string `json:"close_after"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	st := p.Tenant.Settings
	if req.SupportAccess != nil {
		st.SupportAccess = *req.SupportAccess
	}
	if req.Language != nil {
		if err := checkLen("language", *req.Language, 35); err != nil {
			return err
		}
		st.Language = strings.TrimSpace(*req.Language)
	}
	if req.AckLimitPerHour != nil {
		if *req.AckLimitPerHour < 0 || *req.AckLimitPerHour > 1000 {
			return casedesk.Errorf(casedesk.EINVALID, "field \"ack_limit_per_hour\" must be between 0 (default) and 1000")
		}
		st.AckLimitPerHour = *req.AckLimitPerHour
	}
	if req.SubjectTag != nil {
		if err := checkLen("subject_tag_prefix", *req.SubjectTag, 20); err != nil {
			return err
		}
		if strings.ContainsAny(*req.SubjectTag, "[]#\r\n") {
			return casedesk.Errorf(casedesk.EINVALID, "field \"subject_tag_prefix\" cannot hold [, ], # or line breaks")
		}
		st.SubjectTagPrefix = strings.TrimSpace(*req.SubjectTag)
	}
	for _, d := range []struct {
		name string
		v    *string
		dst  *time.Duration
	}{{"reminder_after", req.ReminderAfter, &st.ReminderAfter}, {"solve_after", req.SolveAfter, &st.SolveAfter},
		{"close_after", req.CloseAfter, &st.CloseAfter}} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil || v < time.Hour || v > 365*24*time.Hour {
			return casedesk.Errorf(casedesk.EINVALID, "field %q must be a duration between 1h and 8760h", d.name)
		}
		*d.dst = v
	}
	if st.Reminder() >= st.Solve() {
		return casedesk.Errorf(casedesk.EINVALID, "field \"reminder_after\" must be shorter than \"solve_after\"")
	}
	var t *casedesk.Tenant
	err := s.write(r, p, "settings.update", "tenant", func() string { return itoa(p.Tenant.ID) }, req,
		func(tx casedesk.Tx) (err error) {
			t, err = tx.UpdateTenantSettings(r.Context(), p.Tenant.ID, st)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, settingsOut(t))
	return nil
}

// me: GET /v1/me, who the key belongs to and what it may do.
func (s *Server) me(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"user": userOut(p.User), "tenant": map[string]any{"slug": p.Tenant.Slug,
		"name": p.Tenant.Name}, "permissions": roleOut(p.User.Role).Permissions})
	return nil
}

// DeactivateInactiveUsers is the job that turns off, in every tenant, the
// users with no activity (a request with one of their keys, or their mail
// on a case) for casedesk.InactiveAfter before now. Running it again at the
// same now changes nothing. Each deactivation is in its tenant's audit
// log, by the system (no user), in the same transaction.
func DeactivateInactiveUsers(ctx context.Context, store casedesk.Store, now time.Time) ([]*casedesk.User, error) {
	var users []*casedesk.User
	err := store.Update(ctx, func(tx casedesk.Tx) (err error) {
		if users, err = tx.DeactivateInactiveUsers(ctx, now.Add(-casedesk.InactiveAfter)); err != nil {
			return err
		}
		for _, u := range users {
			data, _ := json.Marshal(map[string]any{"active": false, "reason": "inactive",
				"last_active_at": u.LastActiveAt, "inactive_after_days": int(casedesk.InactiveAfter.Hours() / 24)})
			if _, err := tx.AppendAudit(ctx, casedesk.AuditEntry{TenantID: u.TenantID, Action: "user.deactivate",
				TargetKind: "user", TargetID: itoa(u.ID), Data: data}); err != nil {
				return err
			}
		}
		return nil
	})
	return users, err
}
