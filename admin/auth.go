package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/casedesk/casedesk"
)

// authenticate resolves the request's API key into its user, tenant and
// role. Every failure is the same 401, so nothing tells a wrong key from
// a revoked one or an unknown tenant.
func (s *Server) authenticate(r *http.Request) (*casedesk.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		return nil, casedesk.Errorf(casedesk.EUNAUTHORIZED, "missing API key: send Authorization: Bearer KEY")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, casedesk.Errorf(casedesk.EUNAUTHORIZED, "invalid API key")
	}
	tenantID, hash, err := casedesk.ParseAPIKey(strings.TrimSpace(secret))
	if err != nil {
		return nil, casedesk.Errorf(casedesk.EUNAUTHORIZED, "invalid API key")
	}
	var p *casedesk.Principal
	err = s.store.Update(r.Context(), func(tx casedesk.Tx) (err error) {
		p, err = tx.Authenticate(r.Context(), tenantID, hash)
		return err
	})
	if err != nil {
		if casedesk.ErrorCode(err) == casedesk.EUNAUTHORIZED {
			return nil, casedesk.Errorf(casedesk.EUNAUTHORIZED, "invalid API key")
		}
		return nil, err
	}
	return p, nil
}

// authorize checks the route's permission. The support-access role works
// only while the tenant allows it, only reads, and every read it makes is
// written to the audit log before it is answered.
func (s *Server) authorize(r *http.Request, rt route, p *casedesk.Principal) error {
	role := p.User.Role
	if role.Name == casedesk.RoleSupportAccess {
		if !p.Tenant.Settings.SupportAccess {
			return casedesk.Errorf(casedesk.EFORBIDDEN, "support access is turned off for this tenant")
		}
		if rt.method != http.MethodGet {
			return casedesk.Errorf(casedesk.EFORBIDDEN, "support access is read-only")
		}
	}
	if rt.perm != "" && !allows(role, rt.perm) {
		return casedesk.Errorf(casedesk.EFORBIDDEN, "your role %q lacks the permission %s", role.Name, rt.perm)
	}
	if role.Name == casedesk.RoleSupportAccess {
		return s.store.Update(r.Context(), func(tx casedesk.Tx) error {
			return s.audit(r.Context(), tx, p, "support_access.read", "request", r.Method+" "+r.URL.Path,
				map[string]any{"query": r.URL.RawQuery})
		})
	}
	return nil
}

// allows reports whether role grants perm; cases:read_own grants reading
// cases, narrowed to the user's own by the handlers (ownOnly).
func allows(role *casedesk.Role, perm casedesk.Permission) bool {
	return role.Has(perm) || perm == casedesk.PermCasesRead && role.Has(casedesk.PermCasesReadOwn)
}

// ownOnly reports whether the principal may read only its own cases.
func ownOnly(p *casedesk.Principal) bool {
	return !p.User.Role.Has(casedesk.PermCasesRead)
}

// audit writes one entry of the audit log in tx.
func (s *Server) audit(ctx context.Context, tx casedesk.Tx, p *casedesk.Principal, action, kind, id string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = tx.AppendAudit(ctx, casedesk.AuditEntry{TenantID: p.Tenant.ID, UserID: p.User.ID, Action: action,
		TargetKind: kind, TargetID: id, Data: raw})
	return err
}

// write runs fn in a transaction with an audit entry for the change.
func (s *Server) write(r *http.Request, p *casedesk.Principal, action, kind string, id func() string, data any,
	fn func(tx casedesk.Tx) error) error {
	ctx := r.Context()
	return s.store.Update(ctx, func(tx casedesk.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.audit(ctx, tx, p, action, kind, id(), data)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
