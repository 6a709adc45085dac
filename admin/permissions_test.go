package admin

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

// rolePerms is DESIGN.md's role table, written out here rather than read
// from casedesk.BuiltInRoles, so a change to either shows.
var rolePerms = map[string][]string{
	casedesk.RoleAdmin:         {"*"},
	casedesk.RoleTechnical:     {"cases:read", "cases:write", "sandboxes:manage", "settings:read"},
	casedesk.RoleSupport:       {"cases:read", "cases:write", "cases:reply", "contacts:read"},
	casedesk.RoleFinance:       {"invoices:read", "invoices:send", "accounts:read"},
	casedesk.RoleGeneral:       {"cases:create", "cases:read_own"},
	casedesk.RoleSupportAccess: {"cases:read", "contacts:read", "accounts:read", "settings:read"},
}

// endpoint is one request of the matrix: what it needs and how to make
// it for tenant f (fresh objects where it changes something).
type endpoint struct {
	method, path string
	need         string // the permission; "" for any user
	ok           int
	req          func(e *apiEnv, f *tenantFix) (path string, body any)
}

func endpoints() []endpoint {
	cara := func(f *tenantFix) int64 { return f.cases[0].Number }
	return []endpoint{
		{"GET", "/v1/cases", "cases:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/cases", nil }},
		{"POST", "/v1/cases", "cases:create", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/cases", map[string]any{"subject": "Paper jam", "text": "Tray 2 jams.",
				"requester": map[string]any{"email": "cara@customer.example"}}
		}},
		{"GET", "/v1/cases/{number}", "cases:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/cases/%d", cara(f)), nil
		}},
		{"PATCH", "/v1/cases/{number}", "cases:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/cases/%d", cara(f)), map[string]any{"priority": "high"}
		}},
		{"GET", "/v1/cases/{number}/messages", "cases:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/cases/%d/messages", cara(f)), nil
		}},
		{"GET", "/v1/cases/{number}/attachments/{sha256}", "cases:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/cases/%d/attachments/%s", cara(f), f.attach), nil
		}},
		{"POST", "/v1/cases/{number}/replies", "cases:reply", 202, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/cases/%d/replies", cara(f)), map[string]any{"text": "Try turning it off.", "status": "open"}
		}},
		{"POST", "/v1/cases/{number}/notes", "cases:write", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/cases/%d/notes", cara(f)), map[string]any{"text": "She sounds upset."}
		}},
		{"POST", "/v1/cases/{number}/merge", "cases:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			from, into := e.newCase(f), e.newCase(f)
			return fmt.Sprintf("/v1/cases/%d/merge", from.Number), map[string]any{"into": into.Number}
		}},
		{"GET", "/v1/contacts", "contacts:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/contacts", nil }},
		{"POST", "/v1/contacts", "contacts:write", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/contacts", map[string]any{"email": fmt.Sprintf("new-%d@customer.example", e.seq()), "name": "New"}
		}},
		{"GET", "/v1/contacts/{id}", "contacts:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/contacts/%d", f.cases[0].RequesterID), nil
		}},
		{"PATCH", "/v1/contacts/{id}", "contacts:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/contacts/%d", f.cases[0].RequesterID), map[string]any{"phone": "+49 30 1234"}
		}},
		{"GET", "/v1/accounts", "accounts:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/accounts", nil }},
		{"POST", "/v1/accounts", "accounts:write", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/accounts", map[string]any{"name": fmt.Sprintf("New Co %d", e.seq())}
		}},
		{"GET", "/v1/accounts/{id}", "accounts:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/accounts/%d", f.account.ID), nil
		}},
		{"PATCH", "/v1/accounts/{id}", "accounts:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/accounts/%d", f.account.ID), map[string]any{"sla_tier": "gold"}
		}},
		{"GET", "/v1/invoices", "invoices:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/invoices", nil }},
		{"POST", "/v1/invoices", "invoices:write", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/invoices", invoiceBody(f.account.ID, fmt.Sprintf("NEW-%d", e.seq()), "EUR", 1000)
		}},
		{"GET", "/v1/invoices/{number}", "invoices:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/invoices/" + e.newInvoice(f).Number, nil
		}},
		{"PATCH", "/v1/invoices/{number}", "invoices:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/invoices/" + e.newInvoice(f).Number, map[string]any{"status": "paid"}
		}},
		{"GET", "/v1/invoices/{number}/pdf", "invoices:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/invoices/" + e.newInvoice(f).Number + "/pdf", nil
		}},
		{"POST", "/v1/invoices/{number}/send", "invoices:send", 202, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/invoices/" + e.newInvoice(f).Number + "/send", nil
		}},
		{"GET", "/v1/users", "users:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/users", nil }},
		{"POST", "/v1/users", "users:write", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/users", map[string]any{"email": fmt.Sprintf("agent-%d@acme.example", e.seq()), "name": "Ann", "role": "support"}
		}},
		{"GET", "/v1/users/{id}", "users:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/users/%d", f.users[casedesk.RoleSupport].ID), nil
		}},
		{"PATCH", "/v1/users/{id}", "users:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/users/%d", f.users[casedesk.RoleSupport].ID), map[string]any{"name": "Sue Support"}
		}},
		{"GET", "/v1/users/{id}/keys", "users:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/users/%d/keys", f.users[casedesk.RoleSupport].ID), nil
		}},
		{"POST", "/v1/users/{id}/keys", "users:write", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/users/%d/keys", f.users[casedesk.RoleSupport].ID), map[string]any{"name": "ci"}
		}},
		{"DELETE", "/v1/keys/{id}", "users:write", 204, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/keys/%d", e.newKey(f)), nil
		}},
		{"GET", "/v1/roles", "settings:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/roles", nil }},
		{"POST", "/v1/roles", "settings:write", 201, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/roles", map[string]any{"name": fmt.Sprintf("readers-%d", e.seq()), "permissions": []string{"cases:read"}}
		}},
		{"PATCH", "/v1/roles/{name}", "settings:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/roles/support-access", map[string]any{"permissions": []string{"cases:read", "contacts:read", "accounts:read", "settings:read"}}
		}},
		{"GET", "/v1/settings", "settings:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/settings", nil }},
		{"PATCH", "/v1/settings", "settings:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return "/v1/settings", map[string]any{"language": "en"}
		}},
		{"GET", "/v1/me", "", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/me", nil }},
		{"GET", "/v1/quarantine", "quarantine:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/quarantine", nil }},
		{"GET", "/v1/quarantine/{id}/raw", "quarantine:read", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/quarantine/%d/raw", e.quarantine(f)), nil
		}},
		{"POST", "/v1/quarantine/{id}/retry", "quarantine:write", 200, func(e *apiEnv, f *tenantFix) (string, any) {
			return fmt.Sprintf("/v1/quarantine/%d/retry", e.quarantine(f)), nil
		}},
		{"GET", "/v1/audit", "audit:read", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/audit", nil }},
		{"GET", "/v1/sandbox", "sandboxes:manage", 200, func(e *apiEnv, f *tenantFix) (string, any) { return "/v1/sandbox", nil }},
		{"POST", "/v1/sandbox", "sandboxes:manage", 202, func(e *apiEnv, f *tenantFix) (string, any) {
			e.dropSandbox(f) // one build at a time
			return "/v1/sandbox", map[string]any{"mode": "empty"}
		}},
		{"DELETE", "/v1/sandbox", "sandboxes:manage", 204, func(e *apiEnv, f *tenantFix) (string, any) {
			e.ensureSandbox(f)
			return "/v1/sandbox", nil
		}},
	}
}

func grants(role, perm string) bool {
	ps := rolePerms[role]
	return perm == "" || slices.Contains(ps, "*") || slices.Contains(ps, perm) ||
		perm == "cases:read" && slices.Contains(ps, "cases:read_own")
}

// TestPermissionMatrix: every built-in role against every endpoint. A role
// without the permission gets 403; one with it gets the endpoint's success
// status. Support access is switched on for the tenant, so its role is
// judged by its permissions (plus: reads only).
func TestPermissionMatrix(t *testing.T) {
	e := newAPIEnv(t)
	e.enableSupportAccess(e.a)
	for _, ep := range endpoints() {
		for _, role := range roles {
			t.Run(ep.method+" "+ep.path+" as "+role, func(t *testing.T) {
				e.t = t
				path, body := ep.req(e, e.a)
				res := e.do(e.a.keys[role], ep.method, path, body)
				want := ep.ok
				if !grants(role, ep.need) || role == casedesk.RoleSupportAccess && ep.method != http.MethodGet {
					want = http.StatusForbidden
				}
				if res.status != want {
					t.Errorf("status %d, want %d: %s", res.status, want, res.body)
				}
			})
		}
	}
}

// TestTenantIsolation: tenant B's admin key, on every endpoint that names
// an object of tenant A, gets 404; listings show none of A's objects.
func TestTenantIsolation(t *testing.T) {
	e := newAPIEnv(t)
	for _, ep := range endpoints() {
		path, body := ep.req(e, e.a)
		// Roles are named per tenant: B's "support-access" is B's own.
		if path == ep.path || !containsParam(ep.path) || ep.path == "/v1/roles/{name}" {
			continue
		}
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			e.t = t
			res := e.do(e.b.keys[casedesk.RoleAdmin], ep.method, path, body)
			if res.status != http.StatusNotFound && !(ep.path == "/v1/cases/{number}/merge" && res.status == http.StatusBadRequest) {
				t.Errorf("tenant B got %d on tenant A's %s: %s", res.status, path, res.body)
			}
		})
	}
	if _, err := e.db.IndexSearch(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Listings: nothing of tenant A (every name of A's objects holds
	// "alpha") shows up for B.
	e.newInvoice(e.a)
	for _, path := range []string{"/v1/cases", "/v1/contacts", "/v1/accounts", "/v1/invoices", "/v1/users", "/v1/audit",
		"/v1/quarantine", "/v1/cases?q=toner", "/v1/contacts?q=cara"} {
		e.t = t
		res := e.do(e.b.keys[casedesk.RoleAdmin], "GET", path, nil)
		if res.status != 200 || bytes.Contains(res.body, []byte("alpha")) {
			t.Errorf("GET %s as tenant B: %d, shows tenant A's data:\n%s", path, res.status, res.body)
		}
	}
}

func containsParam(p string) bool { return strings.Contains(p, "{") }
