package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

// errRow is one request that must fail: with status, error code and, when
// want is set, a message that contains want (the field or value at fault).
type errRow struct {
	name         string
	method, path string
	body         any
	status       int
	code         string
	want         string
}

// errGroup is the rows of one operation, named as routeTable names it.
type errGroup struct {
	op   string // "METHOD /pattern"
	rows []errRow
}

// errFix is what the error paths need beyond the tenant fixtures.
type errFix struct {
	admin          string // tenant A's admin key
	adminID        int64
	merged, target *casedesk.Case // merged is closed, merged into target
	ghost          *casedesk.Case // its requester is at a .invalid address
	inactive       int64          // an inactive support user
	contactsCursor string         // a next_cursor of GET /v1/contacts
	casesCursor    string         // a next_cursor of GET /v1/cases
	// cases are the cases whose detail, messages and outbox the
	// snapshot covers.
	cases []*casedesk.Case
}

func newErrFix(t *testing.T, e *apiEnv) *errFix {
	t.Helper()
	ctx := context.Background()
	f := &errFix{admin: e.a.keys[casedesk.RoleAdmin], adminID: e.a.users[casedesk.RoleAdmin].ID}
	f.merged, f.target = e.newCase(e.a), e.newCase(e.a)
	if res := e.do(f.admin, "POST", fmt.Sprintf("/v1/cases/%d/merge", f.merged.Number),
		map[string]any{"into": f.target.Number}); res.status != 200 {
		t.Fatalf("merge: %d %s", res.status, res.body)
	}
	e.update(func(tx casedesk.Tx) error {
		ghost, err := tx.UpsertContact(ctx, e.a.tenant.ID, casedesk.Address{Email: "ghost@host.invalid"})
		if err != nil {
			return err
		}
		if f.ghost, err = tx.CreateCase(ctx, casedesk.NewCase{TenantID: e.a.tenant.ID, Subject: "Nobody to answer",
			RequesterID: ghost.ID}); err != nil {
			return err
		}
		u, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: e.a.tenant.ID, Email: "gone@acme.example",
			Name: "Gone Agent", RoleName: casedesk.RoleSupport})
		if err != nil {
			return err
		}
		f.inactive = u.ID
		_, err = tx.UpdateUser(ctx, e.a.tenant.ID, u.ID, casedesk.UserUpdate{Active: new(bool)})
		return err
	})
	if res := e.do(f.admin, "POST", "/v1/roles", map[string]any{"name": "triage", "permissions": []string{"cases:read"}}); res.status != 201 {
		t.Fatalf("create role: %d %s", res.status, res.body)
	}
	e.quarantine(e.a)
	var page struct {
		NextCursor *string `json:"next_cursor"`
	}
	for _, c := range []struct {
		path string
		dst  *string
	}{{"/v1/contacts?limit=1", &f.contactsCursor}, {"/v1/cases?limit=1", &f.casesCursor}} {
		page.NextCursor = nil
		e.do(f.admin, "GET", c.path, nil).decode(t, &page)
		if page.NextCursor == nil {
			t.Fatalf("GET %s: no next_cursor", c.path)
		}
		*c.dst = *page.NextCursor
	}
	f.cases = append(append([]*casedesk.Case{}, e.a.cases...), f.merged, f.target, f.ghost)
	e.queuedFor(0) // nothing queued before the refusals
	return f
}

// errSnapshot reads everything of tenant A that a refused write could
// change, as the admin sees it. The times of a key's last use and of its
// user's last activity are left out: every request may set them.
func (e *apiEnv) errSnapshot(f *errFix) string {
	e.t.Helper()
	paths := []string{"/v1/contacts?limit=500", "/v1/accounts?limit=500", "/v1/users?limit=500", "/v1/roles",
		"/v1/settings", "/v1/cases?limit=500&sort=number", "/v1/quarantine?limit=500", "/v1/audit?limit=1"}
	var users struct {
		Users []userJSON `json:"users"`
	}
	e.do(f.admin, "GET", "/v1/users?limit=500", nil).decode(e.t, &users)
	for _, u := range users.Users {
		paths = append(paths, fmt.Sprintf("/v1/users/%d/keys", u.ID))
	}
	for _, c := range f.cases {
		paths = append(paths, fmt.Sprintf("/v1/cases/%d", c.Number), fmt.Sprintf("/v1/cases/%d/messages", c.Number))
	}
	var b strings.Builder
	for _, path := range paths {
		res := e.do(f.admin, "GET", path, nil)
		if res.status != 200 {
			e.t.Fatalf("snapshot: GET %s: %d %s", path, res.status, res.body)
		}
		var v any
		res.decode(e.t, &v)
		dropKeys(v, "last_active_at", "last_used_at")
		out, _ := json.Marshal(v)
		fmt.Fprintf(&b, "%s\n%s\n", path, out)
	}
	return b.String()
}

// dropKeys removes the keys from every object in v.
func dropKeys(v any, keys ...string) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range keys {
			delete(v, k)
		}
		for _, x := range v {
			dropKeys(x, keys...)
		}
	case []any:
		for _, x := range v {
			dropKeys(x, keys...)
		}
	}
}

// firstDiff returns the first differing line of two snapshots.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			path := ""
			if i > 0 {
				path = al[i-1]
			}
			at := 0
			for at < min(len(al[i]), len(bl[i])) && al[i][at] == bl[i][at] {
				at++
			}
			from := max(0, at-200)
			return fmt.Sprintf("%s\nbefore: ...%.400s\nafter:  ...%.400s", path, al[i][from:], bl[i][from:])
		}
	}
	return fmt.Sprintf("%d lines before, %d after", len(al), len(bl))
}

// explicitlyDocumented reports whether the OpenAPI document lists status
// among op's responses itself, not only under "default".
func explicitlyDocumented(t *testing.T, op string, status int) bool {
	t.Helper()
	doc, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	method, pattern, _ := strings.Cut(op, " ")
	item := doc.Paths.Find(pattern)
	if item == nil || item.GetOperation(method) == nil {
		t.Fatalf("%s is not in the OpenAPI document", op)
	}
	return item.GetOperation(method).Responses.Status(status) != nil
}

func errGroups(e *apiEnv, f *errFix) []errGroup {
	a, b := e.a, e.b
	cara, otto := a.cases[0], a.cases[1]
	long := func(n int) string { return strings.Repeat("x", n) }
	huge := `{"text": "` + strings.Repeat("x", 2<<20) + `"}`
	agentB := b.users[casedesk.RoleSupport].ID
	const unknown = 999999
	return []errGroup{
		{"GET /v1/cases", []errRow{
			{"assignee not a number", "GET", "/v1/cases?assignee=me", nil, 400, "invalid", `"assignee"`},
			{"assignee negative", "GET", "/v1/cases?assignee=-1", nil, 400, "invalid", `"assignee"`},
			{"account_id not a number", "GET", "/v1/cases?account_id=x", nil, 400, "invalid", `"account_id"`},
			{"limit negative", "GET", "/v1/cases?limit=-1", nil, 400, "invalid", `"limit"`},
			{"created_to not a time", "GET", "/v1/cases?created_to=2026-13-01", nil, 400, "invalid", `"created_to"`},
			{"one unknown status of several", "GET", "/v1/cases?status=new,bogus", nil, 400, "invalid", `"bogus"`},
			{"q too long", "GET", "/v1/cases?q=" + long(501), nil, 400, "invalid", `"q"`},
			{"requester_email too long", "GET", "/v1/cases?requester_email=" + long(501), nil, 400, "invalid", `"requester_email"`},
			{"cursor of the contacts listing", "GET", "/v1/cases?cursor=" + f.contactsCursor, nil, 400, "invalid", "cursor"},
		}},
		{"GET /v1/cases/{number}", []errRow{
			{"number not a number", "GET", "/v1/cases/abc", nil, 404, "not_found", ""},
			{"number zero", "GET", "/v1/cases/0", nil, 404, "not_found", ""},
			{"number negative", "GET", "/v1/cases/-4", nil, 404, "not_found", ""},
			{"number overflows", "GET", "/v1/cases/99999999999999999999", nil, 404, "not_found", ""},
		}},
		{"PATCH /v1/cases/{number}", []errRow{
			{"unknown case", "PATCH", fmt.Sprintf("/v1/cases/%d", unknown), map[string]any{"priority": "high"}, 404, "not_found", ""},
			{"number not a number", "PATCH", "/v1/cases/abc", map[string]any{"priority": "high"}, 404, "not_found", ""},
			{"unknown status", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"status": "bogus"}, 400, "invalid", `"status"`},
			{"status not a string", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"status": 5}, 400, "invalid", `"status"`},
			{"unknown priority", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"priority": "asap"}, 400, "invalid", `"priority"`},
			{"new to closed", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"status": "closed"}, 400, "invalid", "cannot become"},
			{"reopening a closed case", "PATCH", fmt.Sprintf("/v1/cases/%d", f.merged.Number), map[string]any{"status": "open"}, 400, "invalid", "cannot become"},
			{"assignee a string", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"assignee": "me"}, 400, "invalid", `"assignee"`},
			{"assignee a fraction", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"assignee": 1.5}, 400, "invalid", `"assignee"`},
			{"assignee negative", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"assignee": -1}, 400, "invalid", "agent"},
			{"assignee unknown", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"assignee": unknown}, 400, "invalid", "agent"},
			{"assignee inactive", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"assignee": f.inactive}, 400, "invalid", "not active"},
			{"assignee an agent of tenant B", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"assignee": agentB}, 400, "invalid", "agent"},
			{"valid and invalid change together", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number),
				map[string]any{"priority": "urgent", "assignee": unknown}, 400, "invalid", "agent"},
			{"unknown field", "PATCH", fmt.Sprintf("/v1/cases/%d", cara.Number), map[string]any{"colour": "red"}, 400, "invalid", `"colour"`},
		}},
		{"GET /v1/cases/{number}/messages", []errRow{
			{"unknown case", "GET", fmt.Sprintf("/v1/cases/%d/messages", unknown), nil, 404, "not_found", ""},
			{"number not a number", "GET", "/v1/cases/abc/messages", nil, 404, "not_found", ""},
		}},
		{"GET /v1/cases/{number}/attachments/{sha256}", []errRow{
			{"unknown case", "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", unknown, a.attach), nil, 404, "not_found", ""},
			{"number not a number", "GET", fmt.Sprintf("/v1/cases/abc/attachments/%s", a.attach), nil, 404, "not_found", ""},
			{"sha256 not hex", "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", cara.Number, strings.Repeat("zz", 32)), nil, 404, "not_found", ""},
			{"sha256 too short", "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", cara.Number, a.attach[:62]), nil, 404, "not_found", ""},
			{"unknown sha256", "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", cara.Number, strings.Repeat("0", 64)), nil, 404, "not_found", ""},
			{"tenant B's attachment", "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", cara.Number, b.attach), nil, 404, "not_found", ""},
		}},
		{"POST /v1/cases/{number}/replies", []errRow{
			{"unknown case", "POST", fmt.Sprintf("/v1/cases/%d/replies", unknown), map[string]any{"text": "Hi"}, 404, "not_found", ""},
			{"number not a number", "POST", "/v1/cases/abc/replies", map[string]any{"text": "Hi"}, 404, "not_found", ""},
			{"unknown status", "POST", fmt.Sprintf("/v1/cases/%d/replies", cara.Number), map[string]any{"text": "Hi", "status": "bogus"}, 400, "invalid", `"status"`},
			{"new to closed", "POST", fmt.Sprintf("/v1/cases/%d/replies", otto.Number), map[string]any{"text": "Hi", "status": "closed"}, 400, "invalid", "cannot become"},
			{"merged case", "POST", fmt.Sprintf("/v1/cases/%d/replies", f.merged.Number), map[string]any{"text": "Hi"}, 400, "invalid", "reply there"},
			{"merged case, status closed", "POST", fmt.Sprintf("/v1/cases/%d/replies", f.merged.Number), map[string]any{"text": "Hi", "status": "closed"}, 400, "invalid", "reply there"},
			{"requester at .invalid", "POST", fmt.Sprintf("/v1/cases/%d/replies", f.ghost.Number), map[string]any{"text": "Hi"}, 400, "invalid", "requester"},
			{"text too long", "POST", fmt.Sprintf("/v1/cases/%d/replies", cara.Number), map[string]any{"text": long(100_001)}, 400, "invalid", `"text"`},
		}},
		{"POST /v1/cases/{number}/notes", []errRow{
			{"unknown case", "POST", fmt.Sprintf("/v1/cases/%d/notes", unknown), map[string]any{"text": "n"}, 404, "not_found", ""},
			{"number not a number", "POST", "/v1/cases/abc/notes", map[string]any{"text": "n"}, 404, "not_found", ""},
			{"no text", "POST", fmt.Sprintf("/v1/cases/%d/notes", cara.Number), map[string]any{}, 400, "invalid", `"text"`},
			{"blank text", "POST", fmt.Sprintf("/v1/cases/%d/notes", cara.Number), map[string]any{"text": " \n\t"}, 400, "invalid", `"text"`},
			{"text too long", "POST", fmt.Sprintf("/v1/cases/%d/notes", cara.Number), map[string]any{"text": long(100_001)}, 400, "invalid", `"text"`},
			{"body too large", "POST", fmt.Sprintf("/v1/cases/%d/notes", cara.Number), huge, 413, "invalid", "larger than"},
		}},
		{"POST /v1/cases/{number}/merge", []errRow{
			{"unknown case", "POST", fmt.Sprintf("/v1/cases/%d/merge", unknown), map[string]any{"into": cara.Number}, 404, "not_found", ""},
			{"number not a number", "POST", "/v1/cases/abc/merge", map[string]any{"into": cara.Number}, 404, "not_found", ""},
			{"into negative", "POST", fmt.Sprintf("/v1/cases/%d/merge", otto.Number), map[string]any{"into": -1}, 400, "invalid", `"into"`},
			{"into not a number", "POST", fmt.Sprintf("/v1/cases/%d/merge", otto.Number), map[string]any{"into": "4"}, 400, "invalid", `"into"`},
			{"case merged already", "POST", fmt.Sprintf("/v1/cases/%d/merge", f.merged.Number), map[string]any{"into": cara.Number}, 400, "invalid", "merged already"},
			{"into a merged case", "POST", fmt.Sprintf("/v1/cases/%d/merge", otto.Number), map[string]any{"into": f.merged.Number}, 400, "invalid", "merged into another"},
		}},

		{"GET /v1/contacts", []errRow{
			{"limit not a number", "GET", "/v1/contacts?limit=ten", nil, 400, "invalid", `"limit"`},
			{"limit negative", "GET", "/v1/contacts?limit=-1", nil, 400, "invalid", `"limit"`},
			{"limit over the maximum", "GET", "/v1/contacts?limit=501", nil, 400, "invalid", `"limit"`},
			{"account_id not a number", "GET", "/v1/contacts?account_id=x", nil, 400, "invalid", `"account_id"`},
			{"account_id negative", "GET", "/v1/contacts?account_id=-1", nil, 400, "invalid", `"account_id"`},
			{"q too long", "GET", "/v1/contacts?q=" + long(201), nil, 400, "invalid", `"q"`},
			{"q not UTF-8", "GET", "/v1/contacts?q=%ff", nil, 400, "invalid", `"q"`},
			{"cursor garbage", "GET", "/v1/contacts?cursor=zzz", nil, 400, "invalid", "cursor"},
			{"cursor of the case listing", "GET", "/v1/contacts?cursor=" + f.casesCursor, nil, 400, "invalid", "cursor"},
		}},
		{"POST /v1/contacts", []errRow{
			{"email taken", "POST", "/v1/contacts", map[string]any{"email": "cara@customer.example"}, 409, "conflict", "cara@customer.example"},
			{"email taken, other letter case", "POST", "/v1/contacts", map[string]any{"email": "CARA@Customer.Example", "name": "Cara"}, 409, "conflict", "exists"},
			{"no email", "POST", "/v1/contacts", map[string]any{"name": "Nobody"}, 400, "invalid", `"email"`},
			{"empty email", "POST", "/v1/contacts", map[string]any{"email": ""}, 400, "invalid", `"email"`},
			{"email without domain", "POST", "/v1/contacts", map[string]any{"email": "nobody@"}, 400, "invalid", `"email"`},
			{"email too long", "POST", "/v1/contacts", map[string]any{"email": long(311) + "@x.example"}, 400, "invalid", `"email"`},
			{"phone too long", "POST", "/v1/contacts", map[string]any{"email": "p@customer.example", "phone": long(51)}, 400, "invalid", `"phone"`},
			{"account_id negative", "POST", "/v1/contacts", map[string]any{"email": "p@customer.example", "account_id": -1}, 400, "invalid", `"account_id"`},
			{"account_id unknown", "POST", "/v1/contacts", map[string]any{"email": "p@customer.example", "account_id": unknown}, 400, "invalid", "account"},
			{"account of tenant B", "POST", "/v1/contacts", map[string]any{"email": "p@customer.example", "account_id": b.account.ID}, 400, "invalid", "account"},
			{"name not a string", "POST", "/v1/contacts", map[string]any{"email": "p@customer.example", "name": 7}, 400, "invalid", `"name"`},
		}},
		{"GET /v1/contacts/{id}", []errRow{
			{"unknown id", "GET", fmt.Sprintf("/v1/contacts/%d", unknown), nil, 404, "not_found", ""},
			{"id not a number", "GET", "/v1/contacts/abc", nil, 404, "not_found", ""},
			{"id zero", "GET", "/v1/contacts/0", nil, 404, "not_found", ""},
		}},
		{"PATCH /v1/contacts/{id}", []errRow{
			{"unknown id", "PATCH", fmt.Sprintf("/v1/contacts/%d", unknown), map[string]any{"name": "X"}, 404, "not_found", ""},
			{"unknown id, no change", "PATCH", fmt.Sprintf("/v1/contacts/%d", unknown), map[string]any{}, 404, "not_found", ""},
			{"id not a number", "PATCH", "/v1/contacts/abc", map[string]any{"name": "X"}, 404, "not_found", ""},
			{"email given", "PATCH", fmt.Sprintf("/v1/contacts/%d", cara.RequesterID), map[string]any{"email": "new@customer.example"}, 400, "invalid", `"email"`},
			{"name too long", "PATCH", fmt.Sprintf("/v1/contacts/%d", cara.RequesterID), map[string]any{"name": long(201)}, 400, "invalid", `"name"`},
			{"phone too long", "PATCH", fmt.Sprintf("/v1/contacts/%d", cara.RequesterID), map[string]any{"phone": long(51)}, 400, "invalid", `"phone"`},
			{"account_id negative", "PATCH", fmt.Sprintf("/v1/contacts/%d", cara.RequesterID), map[string]any{"account_id": -1}, 400, "invalid", `"account_id"`},
			{"account_id unknown", "PATCH", fmt.Sprintf("/v1/contacts/%d", cara.RequesterID), map[string]any{"account_id": unknown}, 400, "invalid", "account"},
			{"account of tenant B", "PATCH", fmt.Sprintf("/v1/contacts/%d", cara.RequesterID), map[string]any{"account_id": b.account.ID}, 400, "invalid", "account"},
		}},
		{"GET /v1/accounts", []errRow{
			{"limit not a number", "GET", "/v1/accounts?limit=ten", nil, 400, "invalid", `"limit"`},
			{"limit over the maximum", "GET", "/v1/accounts?limit=501", nil, 400, "invalid", `"limit"`},
			{"q too long", "GET", "/v1/accounts?q=" + long(201), nil, 400, "invalid", `"q"`},
			{"q not UTF-8", "GET", "/v1/accounts?q=%ff", nil, 400, "invalid", `"q"`},
			{"cursor garbage", "GET", "/v1/accounts?cursor=zzz", nil, 400, "invalid", "cursor"},
			{"cursor of the contacts listing", "GET", "/v1/accounts?cursor=" + f.contactsCursor, nil, 400, "invalid", "cursor"},
		}},
		{"POST /v1/accounts", []errRow{
			{"no name", "POST", "/v1/accounts", map[string]any{"domains": []string{"new.example"}}, 400, "invalid", `"name"`},
			{"blank name", "POST", "/v1/accounts", map[string]any{"name": "  "}, 400, "invalid", `"name"`},
			{"name too long", "POST", "/v1/accounts", map[string]any{"name": long(201)}, 400, "invalid", `"name"`},
			{"sla_tier too long", "POST", "/v1/accounts", map[string]any{"name": "New Co", "sla_tier": long(51)}, 400, "invalid", `"sla_tier"`},
			{"too many domains", "POST", "/v1/accounts", map[string]any{"name": "New Co", "domains": manyDomains(101)}, 400, "invalid", `"domains"`},
			{"domain too long", "POST", "/v1/accounts", map[string]any{"name": "New Co", "domains": []string{long(250) + ".example"}}, 400, "invalid", `"domains"`},
			{"domain without a dot", "POST", "/v1/accounts", map[string]any{"name": "New Co", "domains": []string{"localhost"}}, 400, "invalid", "localhost"},
			{"domain is an address", "POST", "/v1/accounts", map[string]any{"name": "New Co", "domains": []string{"a@new.example"}}, 400, "invalid", "a@new.example"},
			{"domains not a list", "POST", "/v1/accounts", map[string]any{"name": "New Co", "domains": "new.example"}, 400, "invalid", `"domains"`},
			{"billing_contact_id negative", "POST", "/v1/accounts", map[string]any{"name": "New Co", "billing_contact_id": -1}, 400, "invalid", `"billing_contact_id"`},
			{"billing contact unknown", "POST", "/v1/accounts", map[string]any{"name": "New Co", "billing_contact_id": unknown}, 400, "invalid", "no such contact"},
			{"billing contact of tenant B", "POST", "/v1/accounts", map[string]any{"name": "New Co", "billing_contact_id": b.cases[0].RequesterID}, 400, "invalid", "no such contact"},
		}},
		{"GET /v1/accounts/{id}", []errRow{
			{"unknown id", "GET", fmt.Sprintf("/v1/accounts/%d", unknown), nil, 404, "not_found", ""},
			{"id not a number", "GET", "/v1/accounts/abc", nil, 404, "not_found", ""},
			{"id negative", "GET", "/v1/accounts/-1", nil, 404, "not_found", ""},
		}},
		{"PATCH /v1/accounts/{id}", []errRow{
			{"unknown id", "PATCH", fmt.Sprintf("/v1/accounts/%d", unknown), map[string]any{"sla_tier": "gold"}, 404, "not_found", ""},
			{"unknown id, no change", "PATCH", fmt.Sprintf("/v1/accounts/%d", unknown), map[string]any{}, 404, "not_found", ""},
			{"id not a number", "PATCH", "/v1/accounts/abc", map[string]any{"sla_tier": "gold"}, 404, "not_found", ""},
			{"empty name", "PATCH", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"name": ""}, 400, "invalid", `"name"`},
			{"sla_tier too long", "PATCH", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"sla_tier": long(51)}, 400, "invalid", `"sla_tier"`},
			{"bad domain", "PATCH", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"domains": []string{"customer.example", "not a domain"}}, 400, "invalid", "not a domain"},
			{"too many domains", "PATCH", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"domains": manyDomains(101)}, 400, "invalid", `"domains"`},
			{"billing_contact_id negative", "PATCH", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"billing_contact_id": -1}, 400, "invalid", `"billing_contact_id"`},
			{"billing contact unknown", "PATCH", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"billing_contact_id": unknown}, 400, "invalid", "contact"},
			{"billing contact of tenant B", "PATCH", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"billing_contact_id": b.cases[0].RequesterID}, 400, "invalid", "contact"},
		}},

		{"GET /v1/users", []errRow{
			{"limit not a number", "GET", "/v1/users?limit=ten", nil, 400, "invalid", `"limit"`},
			{"limit over the maximum", "GET", "/v1/users?limit=501", nil, 400, "invalid", `"limit"`},
			{"cursor garbage", "GET", "/v1/users?cursor=abc", nil, 400, "invalid", "cursor"},
			{"cursor negative", "GET", "/v1/users?cursor=-1", nil, 400, "invalid", "cursor"},
		}},
		{"POST /v1/users", []errRow{
			{"email taken, other letter case", "POST", "/v1/users", map[string]any{"email": "Support@ACME.example", "role": "support"}, 409, "conflict", "email"},
			{"email of an inactive user", "POST", "/v1/users", map[string]any{"email": "gone@acme.example", "role": "support"}, 409, "conflict", "email"},
			{"no email", "POST", "/v1/users", map[string]any{"name": "Ann", "role": "support"}, 400, "invalid", `"email"`},
			{"bad email", "POST", "/v1/users", map[string]any{"email": "ann at acme", "role": "support"}, 400, "invalid", `"email"`},
			{"email too long", "POST", "/v1/users", map[string]any{"email": long(311) + "@x.example", "role": "support"}, 400, "invalid", `"email"`},
			{"name too long", "POST", "/v1/users", map[string]any{"email": "ann@acme.example", "name": long(201), "role": "support"}, 400, "invalid", `"name"`},
			{"no role", "POST", "/v1/users", map[string]any{"email": "ann@acme.example"}, 400, "invalid", `"role"`},
			{"blank role", "POST", "/v1/users", map[string]any{"email": "ann@acme.example", "role": "  "}, 400, "invalid", `"role"`},
			{"role too long", "POST", "/v1/users", map[string]any{"email": "ann@acme.example", "role": long(65)}, 400, "invalid", `"role"`},
			{"role in other letter case", "POST", "/v1/users", map[string]any{"email": "ann@acme.example", "role": "Support"}, 400, "invalid", `"Support"`},
		}},
		{"GET /v1/users/{id}", []errRow{
			{"unknown id", "GET", fmt.Sprintf("/v1/users/%d", unknown), nil, 404, "not_found", ""},
			{"id not a number", "GET", "/v1/users/abc", nil, 404, "not_found", ""},
			{"id zero", "GET", "/v1/users/0", nil, 404, "not_found", ""},
		}},
		{"PATCH /v1/users/{id}", []errRow{
			{"unknown id", "PATCH", fmt.Sprintf("/v1/users/%d", unknown), map[string]any{"name": "X"}, 404, "not_found", ""},
			{"id not a number", "PATCH", "/v1/users/abc", map[string]any{"name": "X"}, 404, "not_found", ""},
			{"unknown role", "PATCH", fmt.Sprintf("/v1/users/%d", a.users[casedesk.RoleSupport].ID), map[string]any{"role": "wizard"}, 400, "invalid", "wizard"},
			{"empty role", "PATCH", fmt.Sprintf("/v1/users/%d", a.users[casedesk.RoleSupport].ID), map[string]any{"role": ""}, 400, "invalid", `"role"`},
			{"role too long", "PATCH", fmt.Sprintf("/v1/users/%d", a.users[casedesk.RoleSupport].ID), map[string]any{"role": long(65)}, 400, "invalid", `"role"`},
			{"name too long", "PATCH", fmt.Sprintf("/v1/users/%d", a.users[casedesk.RoleSupport].ID), map[string]any{"name": long(201)}, 400, "invalid", `"name"`},
			{"active not a boolean", "PATCH", fmt.Sprintf("/v1/users/%d", a.users[casedesk.RoleSupport].ID), map[string]any{"active": "no"}, 400, "invalid", `"active"`},
			{"email given", "PATCH", fmt.Sprintf("/v1/users/%d", a.users[casedesk.RoleSupport].ID), map[string]any{"email": "x@acme.example"}, 400, "invalid", `"email"`},
			{"changing one's own role", "PATCH", fmt.Sprintf("/v1/users/%d", f.adminID), map[string]any{"role": "support"}, 400, "invalid", "own role"},
		}},
		{"GET /v1/users/{id}/keys", []errRow{
			{"unknown user", "GET", fmt.Sprintf("/v1/users/%d/keys", unknown), nil, 404, "not_found", ""},
			{"id not a number", "GET", "/v1/users/abc/keys", nil, 404, "not_found", ""},
		}},
		{"POST /v1/users/{id}/keys", []errRow{
			{"unknown user", "POST", fmt.Sprintf("/v1/users/%d/keys", unknown), map[string]any{"name": "ci"}, 404, "not_found", ""},
			{"id not a number", "POST", "/v1/users/abc/keys", map[string]any{"name": "ci"}, 404, "not_found", ""},
			{"inactive user", "POST", fmt.Sprintf("/v1/users/%d/keys", f.inactive), map[string]any{"name": "ci"}, 400, "invalid", "inactive"},
			{"name too long", "POST", fmt.Sprintf("/v1/users/%d/keys", a.users[casedesk.RoleSupport].ID), map[string]any{"name": long(201)}, 400, "invalid", `"name"`},
			{"expires_at not a time", "POST", fmt.Sprintf("/v1/users/%d/keys", a.users[casedesk.RoleSupport].ID), map[string]any{"expires_at": "tomorrow"}, 400, "invalid", `"expires_at"`},
			{"expires_at a date only", "POST", fmt.Sprintf("/v1/users/%d/keys", a.users[casedesk.RoleSupport].ID), map[string]any{"expires_at": "2099-01-01"}, 400, "invalid", ""},
		}},
		{"DELETE /v1/keys/{id}", []errRow{
			{"unknown key", "DELETE", fmt.Sprintf("/v1/keys/%d", unknown), nil, 404, "not_found", ""},
			{"id not a number", "DELETE", "/v1/keys/abc", nil, 404, "not_found", ""},
			{"id zero", "DELETE", "/v1/keys/0", nil, 404, "not_found", ""},
		}},
		{"POST /v1/roles", []errRow{
			{"name taken", "POST", "/v1/roles", map[string]any{"name": "triage", "permissions": []string{"cases:write"}}, 409, "conflict", "exists"},
			{"no name", "POST", "/v1/roles", map[string]any{"permissions": []string{"cases:read"}}, 400, "invalid", `"name"`},
			{"blank name", "POST", "/v1/roles", map[string]any{"name": " ", "permissions": []string{"cases:read"}}, 400, "invalid", `"name"`},
			{"name too long", "POST", "/v1/roles", map[string]any{"name": long(65), "permissions": []string{"cases:read"}}, 400, "invalid", `"name"`},
			{"built-in name", "POST", "/v1/roles", map[string]any{"name": "support", "permissions": []string{"cases:read"}}, 400, "invalid", "built-in"},
			{"built-in name in other letter case", "POST", "/v1/roles", map[string]any{"name": "Admin", "permissions": []string{"cases:read"}}, 400, "invalid", "built-in"},
			{"unknown permission", "POST", "/v1/roles", map[string]any{"name": "flyers", "permissions": []string{"cases:read", "cases:fly"}}, 400, "invalid", "cases:fly"},
			{"permissions not a list", "POST", "/v1/roles", map[string]any{"name": "flyers", "permissions": "cases:read"}, 400, "invalid", `"permissions"`},
		}},
		{"PATCH /v1/roles/{name}", []errRow{
			{"unknown role", "PATCH", "/v1/roles/wizard", map[string]any{"permissions": []string{"cases:read"}}, 404, "not_found", "wizard"},
			{"no permissions", "PATCH", "/v1/roles/triage", map[string]any{}, 400, "invalid", `"permissions"`},
			{"null permissions", "PATCH", "/v1/roles/triage", map[string]any{"permissions": nil}, 400, "invalid", `"permissions"`},
			{"unknown permission", "PATCH", "/v1/roles/triage", map[string]any{"permissions": []string{"cases:fly"}}, 400, "invalid", "cases:fly"},
			{"built-in role", "PATCH", "/v1/roles/support", map[string]any{"permissions": []string{"cases:read"}}, 400, "invalid", "built-in"},
			{"support-access with a write permission", "PATCH", "/v1/roles/support-access", map[string]any{"permissions": []string{"users:write"}}, 400, "invalid", "users:write"},
		}},
		{"PATCH /v1/settings", []errRow{
			{"ack limit negative", "PATCH", "/v1/settings", map[string]any{"ack_limit_per_hour": -1}, 400, "invalid", `"ack_limit_per_hour"`},
			{"ack limit too high", "PATCH", "/v1/settings", map[string]any{"ack_limit_per_hour": 1001}, 400, "invalid", `"ack_limit_per_hour"`},
			{"ack limit not a number", "PATCH", "/v1/settings", map[string]any{"ack_limit_per_hour": "10"}, 400, "invalid", `"ack_limit_per_hour"`},
			{"support_access not a boolean", "PATCH", "/v1/settings", map[string]any{"support_access": "yes"}, 400, "invalid", `"support_access"`},
			{"language too long", "PATCH", "/v1/settings", map[string]any{"language": long(36)}, 400, "invalid", `"language"`},
			{"subject tag with brackets", "PATCH", "/v1/settings", map[string]any{"subject_tag_prefix": "[Acme]"}, 400, "invalid", `"subject_tag_prefix"`},
			{"subject tag with #", "PATCH", "/v1/settings", map[string]any{"subject_tag_prefix": "Case#"}, 400, "invalid", `"subject_tag_prefix"`},
			{"subject tag with a line break", "PATCH", "/v1/settings", map[string]any{"subject_tag_prefix": "Acme\r\nBcc: x"}, 400, "invalid", `"subject_tag_prefix"`},
			{"subject tag too long", "PATCH", "/v1/settings", map[string]any{"subject_tag_prefix": long(21)}, 400, "invalid", `"subject_tag_prefix"`},
			{"reminder not a duration", "PATCH", "/v1/settings", map[string]any{"reminder_after": "soon"}, 400, "invalid", `"reminder_after"`},
			{"reminder under an hour", "PATCH", "/v1/settings", map[string]any{"reminder_after": "30m"}, 400, "invalid", `"reminder_after"`},
			{"solve over a year", "PATCH", "/v1/settings", map[string]any{"solve_after": "8761h"}, 400, "invalid", `"solve_after"`},
			{"close negative", "PATCH", "/v1/settings", map[string]any{"close_after": "-48h"}, 400, "invalid", `"close_after"`},
			{"reminder after solving", "PATCH", "/v1/settings", map[string]any{"reminder_after": "200h", "solve_after": "100h"}, 400, "invalid", "shorter"},
			{"reminder equal to solving", "PATCH", "/v1/settings", map[string]any{"reminder_after": "100h", "solve_after": "100h"}, 400, "invalid", "shorter"},
			{"valid change with an invalid one", "PATCH", "/v1/settings", map[string]any{"language": "de", "support_access": true, "close_after": "1m"}, 400, "invalid", `"close_after"`},
			{"unknown field", "PATCH", "/v1/settings", map[string]any{"slug": "taken"}, 400, "invalid", `"slug"`},
		}},

		{"GET /v1/quarantine", []errRow{
			{"limit not a number", "GET", "/v1/quarantine?limit=ten", nil, 400, "invalid", `"limit"`},
			{"limit over the maximum", "GET", "/v1/quarantine?limit=501", nil, 400, "invalid", `"limit"`},
			{"cursor garbage", "GET", "/v1/quarantine?cursor=abc", nil, 400, "invalid", "cursor"},
			{"cursor zero", "GET", "/v1/quarantine?cursor=0", nil, 400, "invalid", "cursor"},
			{"cursor negative", "GET", "/v1/quarantine?cursor=-7", nil, 400, "invalid", "cursor"},
		}},
		{"GET /v1/quarantine/{id}/raw", []errRow{
			{"unknown id", "GET", fmt.Sprintf("/v1/quarantine/%d/raw", unknown), nil, 404, "not_found", ""},
			{"id not a number", "GET", "/v1/quarantine/abc/raw", nil, 404, "not_found", ""},
		}},
		{"POST /v1/quarantine/{id}/retry", []errRow{
			{"unknown id", "POST", fmt.Sprintf("/v1/quarantine/%d/retry", unknown), nil, 404, "not_found", ""},
			{"id not a number", "POST", "/v1/quarantine/abc/retry", nil, 404, "not_found", ""},
		}},
		{"GET /v1/audit", []errRow{
			{"user_id not a number", "GET", "/v1/audit?user_id=x", nil, 400, "invalid", `"user_id"`},
			{"user_id negative", "GET", "/v1/audit?user_id=-1", nil, 400, "invalid", `"user_id"`},
			{"limit negative", "GET", "/v1/audit?limit=-5", nil, 400, "invalid", `"limit"`},
			{"limit over the maximum", "GET", "/v1/audit?limit=501", nil, 400, "invalid", `"limit"`},
			{"cursor garbage", "GET", "/v1/audit?cursor=x", nil, 400, "invalid", "cursor"},
			{"cursor zero", "GET", "/v1/audit?cursor=0", nil, 400, "invalid", "cursor"},
			{"from not a time", "GET", "/v1/audit?from=yesterday", nil, 400, "invalid", `"from"`},
			{"from a date only", "GET", "/v1/audit?from=2026-01-01", nil, 400, "invalid", `"from"`},
			{"to not a time", "GET", "/v1/audit?to=2026-01-01T25:00:00Z", nil, 400, "invalid", `"to"`},
		}},
	}
}

func manyDomains(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("d%d.example", i)
	}
	return out
}

// TestErrorPaths: every error path of every endpoint answers with its
// status, the error code of that status and a message naming what is
// wrong; the status is one the OpenAPI document lists for the operation;
// and a refused write changes nothing: no object, no audit entry, no mail
// queued.
func TestErrorPaths(t *testing.T) {
	e := newAPIEnv(t)
	f := newErrFix(t, e)
	for _, g := range errGroups(e, f) {
		t.Run(g.op, func(t *testing.T) {
			e.t = t
			method, _, _ := strings.Cut(g.op, " ")
			var before string
			if method != "GET" {
				before = e.errSnapshot(f)
			}
			for _, r := range g.rows {
				if r.method != method {
					t.Fatalf("row %q: method %s in group %s", r.name, r.method, g.op)
				}
				t.Run(r.name, func(t *testing.T) {
					e.t = t
					res := e.do(f.admin, r.method, r.path, r.body)
					if res.status != r.status || res.errorCode() != r.code || !strings.Contains(res.errorMessage(), r.want) {
						t.Errorf("%s %.80s: %d %.300s; want %d %q mentioning %s", r.method, r.path, res.status, res.body,
							r.status, r.code, r.want)
					}
					if res.status != 413 && !explicitlyDocumented(t, g.op, res.status) {
						t.Errorf("%s answered %d, which the OpenAPI document lists only under default", g.op, res.status)
					}
				})
			}
			e.t = t
			if method != "GET" {
				if after := e.errSnapshot(f); after != before {
					t.Errorf("refused requests changed something:\n%s", firstDiff(before, after))
				}
			}
		})
	}
	e.t = t
	for _, c := range f.cases {
		if items := e.queuedFor(c.ID); len(items) > 0 {
			t.Errorf("refused requests queued mail for case %d: %+v", c.Number, items)
		}
	}
	if len(e.reprocessed) != 0 {
		t.Errorf("refused retries reprocessed %d messages", len(e.reprocessed))
	}
}

// bodyEndpoints are the operations that read a JSON body, each with a
// request that would succeed but for what a test does to its body.
func bodyEndpoints(e *apiEnv) []struct {
	op, path string
	body     map[string]any
} {
	a := e.a
	return []struct {
		op, path string
		body     map[string]any
	}{
		{"POST /v1/cases", "/v1/cases", map[string]any{"subject": "s", "text": "t", "requester": map[string]any{"email": "new@customer.example"}}},
		{"PATCH /v1/cases/{number}", fmt.Sprintf("/v1/cases/%d", a.cases[0].Number), map[string]any{"priority": "high"}},
		{"POST /v1/cases/{number}/replies", fmt.Sprintf("/v1/cases/%d/replies", a.cases[0].Number), map[string]any{"text": "t"}},
		{"POST /v1/cases/{number}/notes", fmt.Sprintf("/v1/cases/%d/notes", a.cases[0].Number), map[string]any{"text": "t"}},
		{"POST /v1/cases/{number}/merge", fmt.Sprintf("/v1/cases/%d/merge", a.cases[1].Number), map[string]any{"into": a.cases[2].Number}},
		{"POST /v1/contacts", "/v1/contacts", map[string]any{"email": "new@customer.example"}},
		{"PATCH /v1/contacts/{id}", fmt.Sprintf("/v1/contacts/%d", a.cases[0].RequesterID), map[string]any{"phone": "1"}},
		{"POST /v1/accounts", "/v1/accounts", map[string]any{"name": "New Co"}},
		{"PATCH /v1/accounts/{id}", fmt.Sprintf("/v1/accounts/%d", a.account.ID), map[string]any{"sla_tier": "gold"}},
		{"POST /v1/users", "/v1/users", map[string]any{"email": "new@acme.example", "role": "support"}},
		{"PATCH /v1/users/{id}", fmt.Sprintf("/v1/users/%d", a.users[casedesk.RoleSupport].ID), map[string]any{"name": "Sue"}},
		{"POST /v1/users/{id}/keys", fmt.Sprintf("/v1/users/%d/keys", a.users[casedesk.RoleSupport].ID), map[string]any{"name": "ci"}},
		{"POST /v1/roles", "/v1/roles", map[string]any{"name": "readers", "permissions": []string{"cases:read"}}},
		{"PATCH /v1/roles/{name}", "/v1/roles/support-access", map[string]any{"permissions": []string{"cases:read"}}},
		{"PATCH /v1/settings", "/v1/settings", map[string]any{"language": "de"}},
	}
}

// TestErrorPathsBodies: every endpoint that reads a body refuses, with 400
// (413 when too large), one that is not a JSON object of its fields: an
// unknown field, an empty body, an array, trailing data, another
// Content-Type; and none of them changes anything.
func TestErrorPathsBodies(t *testing.T) {
	e := newAPIEnv(t)
	f := &errFix{admin: e.a.keys[casedesk.RoleAdmin], cases: e.a.cases}
	e.queuedFor(0)
	before := e.errSnapshot(f)
	for _, ep := range bodyEndpoints(e) {
		t.Run(ep.op, func(t *testing.T) {
			e.t = t
			withUnknown := map[string]any{"bogus_field": 1}
			for k, v := range ep.body {
				withUnknown[k] = v
			}
			valid, _ := json.Marshal(ep.body)
			method, _, _ := strings.Cut(ep.op, " ")
			for _, r := range []struct {
				name   string
				body   any
				status int
				want   string
			}{
				{"unknown field", withUnknown, 400, `"bogus_field"`},
				{"empty body", "", 400, "empty"},
				{"array", "[]", 400, "JSON object"},
				{"trailing data", string(valid) + ` {}`, 400, "after the object"},
				{"truncated", string(valid[:len(valid)-1]), 400, "invalid JSON"},
				{"too large", `{"x": "` + strings.Repeat("x", 2<<20) + `"}`, 413, "larger than"},
			} {
				res := e.do(f.admin, method, ep.path, r.body)
				if res.status != r.status || res.errorCode() != "invalid" || !strings.Contains(res.errorMessage(), r.want) {
					t.Errorf("%s: %d %.300s; want %d mentioning %s", r.name, res.status, res.body, r.status, r.want)
				}
				if res.status != 413 && !explicitlyDocumented(t, ep.op, res.status) {
					t.Errorf("%s answered %d, which the OpenAPI document lists only under default", ep.op, res.status)
				}
			}
			// Another Content-Type.
			req, err := http.NewRequest(method, e.http.URL+ep.path, strings.NewReader(string(valid)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+f.admin)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res := e.send(req)
			if res.status != 400 || res.errorCode() != "invalid" || !strings.Contains(res.errorMessage(), "Content-Type") {
				t.Errorf("form Content-Type: %d %s; want 400 naming the Content-Type", res.status, res.body)
			}
		})
	}
	e.t = t
	if after := e.errSnapshot(f); after != before {
		t.Errorf("refused bodies changed something:\n%s", firstDiff(before, after))
	}
	for _, c := range f.cases {
		if items := e.queuedFor(c.ID); len(items) > 0 {
			t.Errorf("refused bodies queued mail for case %d: %+v", c.Number, items)
		}
	}
}

// TestErrorPathsRetry: a retry whose processing fails again is 409 and
// keeps the entry; one the processor cannot run now is 503; a server
// without a processor answers 503. None resolves the entry or audits.
func TestErrorPathsRetry(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	id := e.quarantine(e.a)
	path := fmt.Sprintf("/v1/quarantine/%d/retry", id)
	var newest struct {
		Entries []auditJSON `json:"entries"`
	}
	e.do(admin, "GET", "/v1/audit?limit=1", nil).decode(t, &newest)

	for _, tc := range []struct {
		name      string
		reprocess error
		status    int
		code      string
		want      string
	}{
		{"internal failure", errors.New("mime: boundary missing\r\nsecond line"), 409, "conflict", "processing failed again"},
		{"invalid mail", casedesk.Errorf(casedesk.EINVALID, "no From"), 409, "conflict", "no From"},
		{"store unavailable", casedesk.Errorf(casedesk.EUNAVAILABLE, "database is down"), 503, "unavailable", "database is down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.mu.Lock()
			e.reprocess = tc.reprocess
			e.mu.Unlock()
			res := e.do(admin, "POST", path, nil)
			if res.status != tc.status || res.errorCode() != tc.code || !strings.Contains(res.errorMessage(), tc.want) ||
				strings.ContainsAny(res.errorMessage(), "\r\n") {
				t.Errorf("%d %s; want %d %q mentioning %q on one line", res.status, res.body, tc.status, tc.code, tc.want)
			}
			if !explicitlyDocumented(t, "POST /v1/quarantine/{id}/retry", res.status) {
				t.Errorf("retry answered %d, which the OpenAPI document lists only under default", res.status)
			}
		})
	}
	e.t = t
	e.mu.Lock()
	e.reprocess = nil
	e.mu.Unlock()

	// A server that processes no mail.
	srv := New(e.db, Options{Logger: testLogger(), NoRecover: true})
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	bare := &apiEnv{t: t, db: e.db, srv: srv, http: hs, a: e.a, b: e.b}
	for _, p := range []string{path, fmt.Sprintf("/v1/quarantine/%d/retry", 999999)} {
		if res := bare.do(admin, "POST", p, nil); res.status != 503 || res.errorCode() != "unavailable" ||
			!strings.Contains(res.errorMessage(), "does not process mail") {
			t.Errorf("POST %s without a processor: %d %s; want 503", p, res.status, res.body)
		}
	}

	var list struct {
		Messages []quarantineJSON `json:"messages"`
	}
	e.do(admin, "GET", "/v1/quarantine", nil).decode(t, &list)
	if len(list.Messages) != 1 || list.Messages[0].ID != id {
		t.Errorf("after failed retries the quarantine is %+v, want entry %d still there", list.Messages, id)
	}
	var after struct {
		Entries []auditJSON `json:"entries"`
	}
	e.do(admin, "GET", "/v1/audit?limit=1", nil).decode(t, &after)
	if len(after.Entries) != len(newest.Entries) || len(after.Entries) > 0 && after.Entries[0].ID != newest.Entries[0].ID {
		t.Errorf("failed retries were audited: %+v", after.Entries)
	}
}
