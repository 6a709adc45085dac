package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/jobs"
)

// dropSandbox deletes tenant f's sandbox, if it has one (a build under
// way is cancelled).
func (e *apiEnv) dropSandbox(f *tenantFix) {
	e.t.Helper()
	err := e.db.Update(context.Background(), func(tx casedesk.Tx) error {
		_, err := tx.DeleteSandbox(context.Background(), f.tenant.ID)
		return err
	})
	if err != nil && casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
		e.t.Fatal(err)
	}
}

// ensureSandbox gives tenant f a sandbox if it has none.
func (e *apiEnv) ensureSandbox(f *tenantFix) {
	e.t.Helper()
	e.update(func(tx casedesk.Tx) error {
		if _, err := tx.FindSandbox(context.Background(), f.tenant.ID); err == nil {
			return nil
		}
		_, err := tx.CreateSandbox(context.Background(), casedesk.NewSandbox{TenantID: f.tenant.ID, Mode: casedesk.SandboxEmpty})
		return err
	})
}

// buildSandboxes runs the builder until every queued build is done.
func (e *apiEnv) buildSandboxes() {
	e.t.Helper()
	b := jobs.NewSandboxBuilder(e.db, e.db, jobs.SandboxBuilderOptions{Logger: testLogger()})
	if err := b.Drain(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// TestSandboxAPI: the life of a sandbox through the API, and the wall
// between it and its production tenant.
func TestSandboxAPI(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	var sb sandboxOut
	res := e.do(admin, "GET", "/v1/sandbox", nil)
	if res.decode(t, &sb); res.status != 200 || sb.Status != casedesk.SandboxNone {
		t.Fatalf("no sandbox yet: %d %s", res.status, res.body)
	}
	for _, tt := range []struct {
		name string
		body any
		want string
	}{
		{"full without confirmation", map[string]any{"mode": "full"}, "confirm_full_data"},
		{"unknown mode", map[string]any{"mode": "partial"}, `"partial"`},
		{"unknown field", map[string]any{"mode": "empty", "copy_keys": true}, "copy_keys"},
		{"not JSON", "{mode", "invalid JSON"},
	} {
		res := e.do(admin, "POST", "/v1/sandbox", tt.body)
		if res.status != 400 || !strings.Contains(res.errorMessage(), tt.want) {
			t.Errorf("%s: %d %s", tt.name, res.status, res.body)
		}
	}
	if res := e.do(e.a.keys[casedesk.RoleSupport], "POST", "/v1/sandbox", nil); res.status != 403 {
		t.Errorf("support creates a sandbox: %d", res.status)
	}

	// No body: the default, anonymised.
	res = e.do(admin, "POST", "/v1/sandbox", nil)
	res.decode(t, &sb)
	if res.status != 202 || sb.Status != casedesk.SandboxCreating || sb.Mode != casedesk.SandboxAnonymized ||
		sb.Tenant == nil || !strings.HasPrefix(sb.APIKey, fmt.Sprintf("cdk_%d_", sb.Tenant.ID)) || sb.Progress.Step != "queued" {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	key := sb.APIKey
	if res := e.do(admin, "POST", "/v1/sandbox", map[string]any{"mode": "empty"}); res.status != 409 {
		t.Errorf("create while one is being built: %d %s", res.status, res.body)
	}
	if res := e.do(key, "GET", "/v1/cases", nil); res.status != 503 || res.header.Get("Retry-After") == "" {
		t.Errorf("sandbox key before the sandbox is ready: %d %s", res.status, res.body)
	}
	var again sandboxOut
	e.do(admin, "GET", "/v1/sandbox", nil).decode(t, &again)
	if again.APIKey != "" || again.Status != casedesk.SandboxCreating {
		t.Errorf("GET shows %+v; the key is shown once only", again)
	}

	e.buildSandboxes()
	res = e.do(admin, "GET", "/v1/sandbox", nil)
	res.decode(t, &sb)
	if sb.Status != casedesk.SandboxReady || sb.Progress.Percent != 100 || sb.Progress.Done == 0 || sb.FinishedAt == nil {
		t.Fatalf("after the build: %s", res.body)
	}

	// The sandbox key reads the sandbox: copies, with no one's name or
	// address from production in them.
	for _, path := range []string{"/v1/cases", "/v1/contacts", "/v1/accounts", "/v1/users",
		fmt.Sprintf("/v1/cases/%d", e.a.cases[0].Number), fmt.Sprintf("/v1/cases/%d/messages", e.a.cases[0].Number)} {
		res := e.do(key, "GET", path, nil)
		if res.status != 200 {
			t.Errorf("sandbox GET %s: %d %s", path, res.status, res.body)
		}
		for _, leak := range []string{"alpha", "customer.example", "Cara", "toner"} {
			if bytes.Contains(res.body, []byte(leak)) {
				t.Errorf("sandbox GET %s shows %q:\n%s", path, leak, res.body)
			}
		}
	}
	// Attachments are listed, without content.
	var msgs struct{ Messages []json.RawMessage }
	e.do(key, "GET", fmt.Sprintf("/v1/cases/%d/messages", e.a.cases[0].Number), nil).decode(t, &msgs)
	if len(msgs.Messages) != 1 || !bytes.Contains(msgs.Messages[0], []byte(`"content_copied":false`)) ||
		!bytes.Contains(msgs.Messages[0], []byte(`"sha256":null`)) {
		t.Errorf("sandbox message: %s", msgs.Messages)
	}
	if res := e.do(key, "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", e.a.cases[0].Number, e.a.attach), nil); res.status != 404 {
		t.Errorf("attachment content in the sandbox: %d", res.status)
	}

	// What is made in either is invisible to the other.
	res = e.do(key, "POST", "/v1/cases", map[string]any{"subject": "Sandbox only", "text": "Trying things.",
		"requester": map[string]any{"email": "tester@sandbox.example"}})
	var made caseJSON
	if res.decode(t, &made); res.status != 201 {
		t.Fatalf("case in the sandbox: %d %s", res.status, res.body)
	}
	var contacts struct {
		Contacts []struct{ ID int64 }
	}
	e.do(key, "GET", "/v1/contacts?q=tester@sandbox.example", nil).decode(t, &contacts)
	if len(contacts.Contacts) != 1 {
		t.Fatalf("the sandbox's new contact: %+v", contacts)
	}
	if res := e.do(admin, "GET", fmt.Sprintf("/v1/cases/%d", made.Number), nil); res.status != 404 {
		t.Errorf("production key reads the sandbox's case: %d", res.status)
	}
	if res := e.do(admin, "GET", fmt.Sprintf("/v1/contacts/%d", contacts.Contacts[0].ID), nil); res.status != 404 {
		t.Errorf("production key reads the sandbox's contact: %d", res.status)
	}
	// Production's next case takes the number the sandbox's new case
	// took: the sandbox key sees its own case under it.
	prodCase := e.newCase(e.a)
	res = e.do(key, "GET", fmt.Sprintf("/v1/cases/%d", prodCase.Number), nil)
	if prodCase.Number != made.Number || res.status != 200 || bytes.Contains(res.body, []byte(prodCase.Subject)) ||
		!bytes.Contains(res.body, []byte("Sandbox only")) {
		t.Errorf("sandbox key, case #%d: %d %s", prodCase.Number, res.status, res.body)
	}
	only := e.newCase(e.a)
	if res := e.do(key, "GET", fmt.Sprintf("/v1/cases/%d", only.Number), nil); res.status != 404 {
		t.Errorf("sandbox key, a number only production has: %d", res.status)
	}
	if res := e.do(admin, "GET", fmt.Sprintf("/v1/cases/%d", only.Number), nil); res.status != 200 {
		t.Errorf("production key, its own case: %d", res.status)
	}
	if res := e.do(key, "GET", fmt.Sprintf("/v1/contacts/%d", e.a.cases[1].RequesterID), nil); res.status != 200 {
		t.Errorf("sandbox key, copied contact: %d", res.status)
	}
	if res := e.do(key, "GET", "/v1/cases?q=toner", nil); res.status != 200 || bytes.Contains(res.body, []byte("Printer")) {
		t.Errorf("sandbox search finds production text: %s", res.body)
	}
	// A sandbox has no sandbox.
	if res := e.do(key, "POST", "/v1/sandbox", nil); res.status != 400 {
		t.Errorf("sandbox of a sandbox: %d %s", res.status, res.body)
	}

	// Full data needs confirming, and is audited as such.
	res = e.do(admin, "POST", "/v1/sandbox", map[string]any{"mode": "full", "confirm_full_data": true})
	var full sandboxOut
	if res.decode(t, &full); res.status != 202 || full.Mode != casedesk.SandboxFull || full.Tenant.ID == sb.Tenant.ID {
		t.Fatalf("full: %d %s", res.status, res.body)
	}
	if res := e.do(key, "GET", "/v1/cases", nil); res.status != 401 {
		t.Errorf("key of the replaced sandbox: %d", res.status)
	}
	e.buildSandboxes()
	res = e.do(full.APIKey, "GET", fmt.Sprintf("/v1/cases/%d/messages", e.a.cases[0].Number), nil)
	if res.status != 200 || !bytes.Contains(res.body, []byte("toner")) {
		t.Errorf("full sandbox: %d %s", res.status, res.body)
	}
	var audit []struct {
		Action string          `json:"action"`
		Data   json.RawMessage `json:"data"`
	}
	e.do(admin, "GET", "/v1/audit?action=sandbox.create", nil).decode(t, &struct {
		Entries any `json:"entries"`
	}{&audit})
	if len(audit) != 2 || !bytes.Contains(audit[0].Data, []byte(`"confirm_full_data":true`)) ||
		!bytes.Contains(audit[0].Data, []byte(`"mode":"full"`)) || !bytes.Contains(audit[0].Data, []byte(fmt.Sprintf(`"replaced_tenant_id":%d`, sb.Tenant.ID))) {
		t.Errorf("audit: %+v", audit)
	}

	// Delete: the key stops working at once; the data is purged.
	if res := e.do(admin, "DELETE", "/v1/sandbox", nil); res.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	if res := e.do(full.APIKey, "GET", "/v1/cases", nil); res.status != 401 {
		t.Errorf("key of a deleted sandbox: %d", res.status)
	}
	e.do(admin, "GET", "/v1/sandbox", nil).decode(t, &sb)
	if sb.Status != casedesk.SandboxNone {
		t.Errorf("after delete: %+v", sb)
	}
	if res := e.do(admin, "DELETE", "/v1/sandbox", nil); res.status != 404 {
		t.Errorf("delete again: %d", res.status)
	}
	e.buildSandboxes() // purges
	err := e.db.View(context.Background(), func(tx casedesk.Tx) error {
		_, err := tx.FindTenant(context.Background(), full.Tenant.ID)
		return err
	})
	if casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
		t.Errorf("deleted sandbox tenant after the purge: %v", err)
	}
	// Tenant B never saw any of it.
	e.do(e.b.keys[casedesk.RoleAdmin], "GET", "/v1/sandbox", nil).decode(t, &sb)
	if sb.Status != casedesk.SandboxNone {
		t.Errorf("tenant B: %+v", sb)
	}
}
