package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jhillyerd/enmime/v2"

	"github.com/casedesk/casedesk"
)

var seqN atomic.Int64

func (e *apiEnv) seq() int64 { return seqN.Add(1) }

// newCase creates a case of Cara's in f.
func (e *apiEnv) newCase(f *tenantFix) *casedesk.Case {
	e.t.Helper()
	var c *casedesk.Case
	e.update(func(tx casedesk.Tx) (err error) {
		c, err = tx.CreateCase(context.Background(), casedesk.NewCase{TenantID: f.tenant.ID,
			Subject: fmt.Sprintf("Case %d", e.seq()), RequesterID: f.cases[0].RequesterID})
		return err
	})
	return c
}

// newKey creates an API key of f's support user and returns its ID.
func (e *apiEnv) newKey(f *tenantFix) int64 {
	e.t.Helper()
	var k *casedesk.APIKey
	e.update(func(tx casedesk.Tx) (err error) {
		_, hash := casedesk.NewAPIKeySecret(f.tenant.ID)
		k, err = tx.CreateAPIKey(context.Background(), casedesk.NewAPIKey{TenantID: f.tenant.ID,
			UserID: f.users[casedesk.RoleSupport].ID, Hash: hash})
		return err
	})
	return k.ID
}

// quarantine stores a broken mail in f and returns its entry's ID.
func (e *apiEnv) quarantine(f *tenantFix) int64 {
	e.t.Helper()
	var q *casedesk.QuarantinedMessage
	e.update(func(tx casedesk.Tx) (err error) {
		q, err = tx.QuarantineMessage(context.Background(), casedesk.QuarantinedMessage{TenantID: f.tenant.ID,
			Mailbox: "INBOX", UID: uint32(e.seq()), Error: "bad MIME",
			Raw: []byte(fmt.Sprintf("Subject: broken %d\r\n\r\nbody", e.seq()))})
		return err
	})
	return q.ID
}

func (e *apiEnv) enableSupportAccess(f *tenantFix) {
	e.t.Helper()
	res := e.do(f.keys[casedesk.RoleAdmin], "PATCH", "/v1/settings", map[string]any{"support_access": true})
	if res.status != 200 {
		e.t.Fatalf("enable support access: %d %s", res.status, res.body)
	}
}

func TestAuthentication(t *testing.T) {
	e := newAPIEnv(t)
	revoked := e.newKey(e.a)
	_ = revoked
	admin := e.a.keys[casedesk.RoleAdmin]
	tests := []struct {
		name   string
		header string
	}{
		{"no key", ""},
		{"not bearer", "Basic " + admin},
		{"malformed", "Bearer not-a-key"},
		{"unknown secret", "Bearer " + admin[:len(admin)-4] + "AAAA"},
		{"other tenant's id in the key", "Bearer " + strings.Replace(admin, fmt.Sprintf("cdk_%d_", e.a.tenant.ID),
			fmt.Sprintf("cdk_%d_", e.b.tenant.ID), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.http.URL+"/v1/cases", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			res, err := e.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("status %d, WWW-Authenticate %q; want 401", res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
		})
	}

	// A key stops working when revoked, and when its user is deactivated.
	e.t = t
	created := e.do(admin, "POST", fmt.Sprintf("/v1/users/%d/keys", e.a.users[casedesk.RoleSupport].ID), map[string]any{"name": "laptop"})
	var k keyJSON
	created.decode(t, &k)
	if created.status != 201 || !strings.HasPrefix(k.Key, "cdk_") {
		t.Fatalf("create key: %d %s", created.status, created.body)
	}
	if res := e.do(k.Key, "GET", "/v1/cases", nil); res.status != 200 {
		t.Fatalf("new key: %d", res.status)
	}
	listed := e.do(admin, "GET", fmt.Sprintf("/v1/users/%d/keys", e.a.users[casedesk.RoleSupport].ID), nil)
	if strings.Contains(string(listed.body), k.Key) || strings.Contains(string(listed.body), `"key"`) {
		t.Errorf("key listing shows secrets: %s", listed.body)
	}
	if res := e.do(admin, "DELETE", fmt.Sprintf("/v1/keys/%d", k.ID), nil); res.status != 204 {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	if res := e.do(k.Key, "GET", "/v1/cases", nil); res.status != 401 {
		t.Errorf("revoked key: %d, want 401", res.status)
	}
	support := e.a.keys[casedesk.RoleSupport]
	if res := e.do(admin, "PATCH", fmt.Sprintf("/v1/users/%d", e.a.users[casedesk.RoleSupport].ID),
		map[string]any{"active": false}); res.status != 200 {
		t.Fatalf("deactivate: %d %s", res.status, res.body)
	}
	if res := e.do(support, "GET", "/v1/cases", nil); res.status != 401 {
		t.Errorf("key of a deactivated user: %d, want 401", res.status)
	}
	// Expired keys.
	past := time.Now().Add(-time.Hour)
	if res := e.do(admin, "POST", fmt.Sprintf("/v1/users/%d/keys", e.a.users[casedesk.RoleAdmin].ID),
		map[string]any{"expires_at": past}); res.status != 400 {
		t.Errorf("key expiring in the past: %d, want 400", res.status)
	}
}

// TestSupportAccess: the support-access role is refused while the tenant
// has it off; once on, it reads, cannot write, and each read is audited.
func TestSupportAccess(t *testing.T) {
	e := newAPIEnv(t)
	key := e.a.keys[casedesk.RoleSupportAccess]
	if res := e.do(key, "GET", "/v1/cases", nil); res.status != 403 {
		t.Fatalf("support access while off: %d, want 403", res.status)
	}
	e.enableSupportAccess(e.a)
	reads := []string{"/v1/cases", fmt.Sprintf("/v1/cases/%d", e.a.cases[0].Number), "/v1/contacts", "/v1/settings"}
	for _, path := range reads {
		if res := e.do(key, "GET", path, nil); res.status != 200 {
			t.Errorf("GET %s: %d %s", path, res.status, res.body)
		}
	}
	if res := e.do(key, "POST", fmt.Sprintf("/v1/cases/%d/notes", e.a.cases[0].Number), map[string]any{"text": "x"}); res.status != 403 {
		t.Errorf("write as support access: %d, want 403", res.status)
	}
	res := e.do(e.a.keys[casedesk.RoleAdmin], "GET", "/v1/audit?action=support_access.read", nil)
	var audit struct {
		Entries []auditJSON `json:"entries"`
	}
	res.decode(t, &audit)
	var got []string
	for _, a := range audit.Entries {
		if a.UserID == nil || *a.UserID != e.a.users[casedesk.RoleSupportAccess].ID {
			t.Errorf("entry %+v by the wrong user", a)
		}
		got = append(got, strings.TrimPrefix(a.TargetID, "GET "))
	}
	slices.Reverse(got) // newest first
	if !slices.Equal(got, reads) {
		t.Errorf("audited reads %q, want %q", got, reads)
	}
	// A write permission cannot be given to the role.
	if res := e.do(e.a.keys[casedesk.RoleAdmin], "PATCH", "/v1/roles/support-access",
		map[string]any{"permissions": []string{"cases:read", "cases:write"}}); res.status != 400 {
		t.Errorf("support access with a write permission: %d, want 400", res.status)
	}
}

func TestCaseEndpoints(t *testing.T) {
	e := newAPIEnv(t)
	support := e.a.keys[casedesk.RoleSupport]
	c := e.a.cases[0]

	var list struct {
		Cases      []caseJSON `json:"cases"`
		NextCursor *string    `json:"next_cursor"`
	}
	e.do(support, "GET", "/v1/cases?status=new&sort=number", nil).decode(t, &list)
	// Three filler cases (#1-#3), then Cara's, Otto's and Dan's.
	if len(list.Cases) != 6 || list.Cases[3].Number != c.Number || list.Cases[3].Requester.Email != "cara@customer.example" {
		t.Fatalf("list = %+v", list)
	}
	for _, bad := range []string{"status=nope", "priority=meh", "sort=nope", "limit=10000", "created_from=yesterday", "cursor=zzz"} {
		if res := e.do(support, "GET", "/v1/cases?"+bad, nil); res.status != 400 || res.errorCode() != "invalid" {
			t.Errorf("GET /v1/cases?%s: %d %s", bad, res.status, res.body)
		}
	}

	var detail caseDetailJSON
	e.do(support, "GET", fmt.Sprintf("/v1/cases/%d", c.Number), nil).decode(t, &detail)
	if detail.Number != c.Number || len(detail.Participants) != 1 || len(detail.Events) == 0 || detail.Events[0].Kind != "created" {
		t.Errorf("detail = %+v", detail)
	}
	if res := e.do(support, "GET", "/v1/cases/999999", nil); res.status != 404 {
		t.Errorf("unknown case: %d", res.status)
	}

	var msgs struct {
		Messages []messageJSON `json:"messages"`
	}
	e.do(support, "GET", fmt.Sprintf("/v1/cases/%d/messages", c.Number), nil).decode(t, &msgs)
	if len(msgs.Messages) != 1 || len(msgs.Messages[0].Attachments) != 1 ||
		msgs.Messages[0].Attachments[0].SHA256 == nil || *msgs.Messages[0].Attachments[0].SHA256 != e.a.attach ||
		!msgs.Messages[0].Attachments[0].ContentCopied {
		t.Fatalf("messages = %+v", msgs)
	}
	res := e.do(support, "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", c.Number, e.a.attach), nil)
	if res.status != 200 || string(res.body) != "error 42 alpha" || !strings.Contains(res.header.Get("Content-Disposition"), "attachment") {
		t.Errorf("attachment: %d %q %v", res.status, res.body, res.header)
	}
	// The attachment is only reachable through its own case.
	if res := e.do(support, "GET", fmt.Sprintf("/v1/cases/%d/attachments/%s", e.a.cases[1].Number, e.a.attach), nil); res.status != 404 {
		t.Errorf("attachment through another case: %d", res.status)
	}

	// A reply is queued for the requester and sets the case pending.
	res = e.do(support, "POST", fmt.Sprintf("/v1/cases/%d/replies", c.Number), map[string]any{"text": "Unplug it."})
	var queued struct {
		Case      caseJSON `json:"case"`
		MessageID string   `json:"message_id"`
	}
	res.decode(t, &queued)
	if res.status != 202 || queued.Case.Status != "pending" || queued.MessageID == "" {
		t.Fatalf("reply: %d %s", res.status, res.body)
	}
	var item *casedesk.OutboxItem
	e.update(func(tx casedesk.Tx) error {
		items, err := tx.ClaimOutbox(context.Background(), 1000)
		for _, it := range items {
			if it.MessageID == queued.MessageID {
				item = it
			}
		}
		var rs []casedesk.OutboxResult
		for _, it := range items {
			rs = append(rs, casedesk.OutboxResult{TenantID: it.TenantID, ID: it.ID, State: casedesk.OutboxFailed, Error: "test"})
		}
		if err == nil {
			err = tx.FinishOutboxItems(context.Background(), rs)
		}
		return err
	})
	var payload map[string]any
	if item == nil || item.Kind != casedesk.OutboxRelay || item.To != "cara@customer.example" ||
		json.Unmarshal(item.Payload, &payload) != nil || payload["text"] != "Unplug it." {
		t.Errorf("queued item = %+v", item)
	}

	// An HTML reply: kept as written (notify sanitises it when sending);
	// with no text, the text part is read from the HTML.
	res = e.do(support, "POST", fmt.Sprintf("/v1/cases/%d/replies", c.Number),
		map[string]any{"html": "<p>Unplug it, then <b>wait</b> 10 s.</p>", "status": "pending"})
	res.decode(t, &queued)
	if res.status != 202 {
		t.Fatalf("html reply: %d %s", res.status, res.body)
	}
	caseID := c.ID
	var htmlItem *casedesk.OutboxItem
	for _, it := range e.queuedFor(caseID) {
		if it.MessageID == queued.MessageID {
			htmlItem = it
		}
	}
	payload = nil
	if htmlItem == nil || json.Unmarshal(htmlItem.Payload, &payload) != nil ||
		payload["html"] != "<p>Unplug it, then <b>wait</b> 10 s.</p>" || !strings.Contains(payload["text"].(string), "Unplug it, then *wait* 10 s.") {
		t.Errorf("html reply queued as %+v", payload)
	}
	for _, body := range []map[string]any{{"html": "<p> </p>"}, {"text": " "}, {}, {"html": strings.Repeat("x", 500_001)}} {
		if res := e.do(support, "POST", fmt.Sprintf("/v1/cases/%d/replies", c.Number), body); res.status != 400 && res.status != 413 {
			t.Errorf("reply %.40v: %d %s", body, res.status, res.body)
		}
	}

	// Notes, status changes, refused transitions.
	if res := e.do(support, "POST", fmt.Sprintf("/v1/cases/%d/notes", c.Number), map[string]any{"text": "internal"}); res.status != 201 {
		t.Errorf("note: %d %s", res.status, res.body)
	}
	res = e.do(support, "PATCH", fmt.Sprintf("/v1/cases/%d", c.Number), map[string]any{"status": "solved", "priority": "urgent",
		"assignee": e.a.users[casedesk.RoleSupport].ID})
	if res.status != 200 {
		t.Fatalf("patch: %d %s", res.status, res.body)
	}
	res.decode(t, &detail)
	if detail.Status != "solved" || detail.Priority != "urgent" || detail.Assignee == nil || detail.Assignee.ID != e.a.users[casedesk.RoleSupport].ID {
		t.Errorf("patched = %+v", detail.caseJSON)
	}
	if res := e.do(support, "PATCH", fmt.Sprintf("/v1/cases/%d", c.Number), map[string]any{"status": "new"}); res.status != 400 {
		t.Errorf("solved -> new: %d, want 400", res.status)
	}
	if res := e.do(support, "PATCH", fmt.Sprintf("/v1/cases/%d", c.Number), map[string]any{"assignee": e.a.users[casedesk.RoleFinance].ID}); res.status != 400 {
		t.Errorf("assign to a non-agent: %d, want 400", res.status)
	}
	if res := e.do(support, "PATCH", fmt.Sprintf("/v1/cases/%d", c.Number), map[string]any{"assignee": nil}); res.status != 200 {
		t.Errorf("unassign: %d %s", res.status, res.body)
	}

	// Merge: the messages move, the merged case points at its target.
	from, into := e.a.cases[1], e.a.cases[2]
	res = e.do(support, "POST", fmt.Sprintf("/v1/cases/%d/merge", from.Number), map[string]any{"into": into.Number})
	if res.status != 200 {
		t.Fatalf("merge: %d %s", res.status, res.body)
	}
	e.do(support, "GET", fmt.Sprintf("/v1/cases/%d/messages", into.Number), nil).decode(t, &msgs)
	if len(msgs.Messages) != 2 {
		t.Errorf("target has %d messages after the merge, want 2", len(msgs.Messages))
	}
	e.do(support, "GET", fmt.Sprintf("/v1/cases/%d", from.Number), nil).decode(t, &detail)
	if detail.MergedInto == nil || *detail.MergedInto != into.Number || detail.Status != "closed" {
		t.Errorf("merged case = %+v", detail)
	}
	for _, body := range []map[string]any{{"into": from.Number}, {"into": 999999}, {"into": 0}} {
		if res := e.do(support, "POST", fmt.Sprintf("/v1/cases/%d/merge", from.Number), body); res.status != 400 {
			t.Errorf("merge %v: %d, want 400", body, res.status)
		}
	}
}

// caseID is the database ID of f's case number n.
func (e *apiEnv) caseID(f *tenantFix, n int64) int64 {
	e.t.Helper()
	var c *casedesk.Case
	e.update(func(tx casedesk.Tx) (err error) {
		c, err = tx.FindCaseByNumber(context.Background(), f.tenant.ID, n)
		return err
	})
	return c.ID
}

// queuedFor claims the outbox items of case caseID, marks every claimed
// item failed (so no other test sees them again) and returns the case's.
func (e *apiEnv) queuedFor(caseID int64) []*casedesk.OutboxItem {
	e.t.Helper()
	var out []*casedesk.OutboxItem
	e.update(func(tx casedesk.Tx) error {
		items, err := tx.ClaimOutbox(context.Background(), 1000)
		if err != nil {
			return err
		}
		var rs []casedesk.OutboxResult
		for _, it := range items {
			if it.CaseID == caseID {
				out = append(out, it)
			}
			rs = append(rs, casedesk.OutboxResult{TenantID: it.TenantID, ID: it.ID, State: casedesk.OutboxFailed, Error: "test"})
		}
		return tx.FinishOutboxItems(context.Background(), rs)
	})
	return out
}

// TestCreateCase: a portal user opens a case for themselves and is
// acknowledged; staff open one for a customer, who gets the agent's text.
func TestCreateCase(t *testing.T) {
	e := newAPIEnv(t)
	general, admin := e.a.keys[casedesk.RoleGeneral], e.a.keys[casedesk.RoleAdmin]

	res := e.do(general, "POST", "/v1/cases", map[string]any{"subject": "  VPN drops every hour ", "text": "Since Monday.", "priority": "high"})
	var c caseJSON
	res.decode(t, &c)
	if res.status != 201 || c.Subject != "VPN drops every hour" || c.Status != "new" || c.Priority != "high" ||
		c.Requester.Email != "cara@customer.example" || c.MessageCount != 1 {
		t.Fatalf("portal case: %d %s", res.status, res.body)
	}
	if loc := res.header.Get("Location"); loc != fmt.Sprintf("/v1/cases/%d", c.Number) {
		t.Errorf("Location %q", loc)
	}
	// The customer sees their case and their words on it.
	var msgs struct {
		Messages []messageJSON `json:"messages"`
	}
	e.do(general, "GET", fmt.Sprintf("/v1/cases/%d/messages", c.Number), nil).decode(t, &msgs)
	if len(msgs.Messages) != 1 || msgs.Messages[0].Direction != "inbound" || msgs.Messages[0].AuthorKind != "customer" ||
		msgs.Messages[0].Text != "Since Monday." || msgs.Messages[0].From.Email != "cara@customer.example" {
		t.Fatalf("portal case messages: %+v", msgs.Messages)
	}
	// It is kept as mail, like everything inbound: raw bytes that parse
	// back to the same words.
	e.update(func(tx casedesk.Tx) error {
		raw, err := tx.RawMessage(context.Background(), e.a.tenant.ID, msgs.Messages[0].ID)
		if err != nil {
			return err
		}
		env, err := enmime.ReadEnvelope(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		if env.GetHeader("Subject") != "VPN drops every hour" || strings.TrimSpace(env.Text) != "Since Monday." ||
			env.GetHeader("Message-ID") != "<"+msgs.Messages[0].MessageID+">" {
			t.Errorf("raw mail of a portal case:\n%s", raw)
		}
		return nil
	})
	caseID := e.caseID(e.a, c.Number)
	// One acknowledgement, answering the stored message.
	items := e.queuedFor(caseID)
	var ack map[string]any
	if len(items) != 1 || items[0].Kind != casedesk.OutboxAck || items[0].To != "cara@customer.example" ||
		json.Unmarshal(items[0].Payload, &ack) != nil || ack["in_reply_to"] != msgs.Messages[0].MessageID {
		t.Errorf("queued for the portal case: %+v", items)
	}

	// Staff open a case for a new customer: pending, the text relayed.
	res = e.do(admin, "POST", "/v1/cases", map[string]any{"subject": "Your callback", "text": "As discussed on the phone: ...",
		"requester": map[string]any{"email": "Nina@Newco.example", "name": "Nina New"}, "category": "phone"})
	res.decode(t, &c)
	if res.status != 201 || c.Status != "pending" || !strings.EqualFold(c.Requester.Email, "nina@newco.example") ||
		c.Category != "phone" || c.MessageCount != 0 {
		t.Fatalf("staff case: %d %s", res.status, res.body)
	}
	caseID = e.caseID(e.a, c.Number)
	items = e.queuedFor(caseID)
	var relay map[string]any
	if len(items) != 1 || items[0].Kind != casedesk.OutboxRelay || !strings.EqualFold(items[0].To, "nina@newco.example") ||
		json.Unmarshal(items[0].Payload, &relay) != nil || relay["text"] != "As discussed on the phone: ..." {
		t.Errorf("queued for the staff case: %+v", items)
	}

	// Refusals, and nothing written by them.
	var before struct {
		Cases []caseJSON `json:"cases"`
	}
	e.do(admin, "GET", "/v1/cases?limit=500", nil).decode(t, &before)
	for _, tc := range []struct {
		key    string
		body   any
		status int
		field  string
	}{
		{general, map[string]any{"subject": "x", "text": "y", "requester": map[string]any{"email": "otto@elsewhere.example"}}, 403, ""},
		{general, map[string]any{"text": "y"}, 400, "subject"},
		{general, map[string]any{"subject": "   ", "text": "y"}, 400, "subject"},
		{general, map[string]any{"subject": "x"}, 400, "text"},
		{general, map[string]any{"subject": strings.Repeat("s", 1001), "text": "y"}, 400, "subject"},
		{general, map[string]any{"subject": "x", "text": "y", "priority": "asap"}, 400, "priority"},
		{general, map[string]any{"subject": "x", "text": "y", "colour": "red"}, 400, "colour"},
		{general, map[string]any{"subject": 7, "text": "y"}, 400, "subject"},
		{admin, map[string]any{"subject": "x", "text": "y"}, 400, "requester"},
		{admin, map[string]any{"subject": "x", "text": "y", "requester": map[string]any{"email": "not an address"}}, 400, "requester.email"},
		{admin, map[string]any{"subject": "x", "text": "y", "requester": map[string]any{"email": "x@host.invalid"}}, 400, "requester.email"},
		{admin, map[string]any{"subject": "x", "text": "y", "requester": map[string]any{"email": e.a.tenant.SupportAddress}}, 400, "requester.email"},
		{e.a.keys[casedesk.RoleSupport], map[string]any{"subject": "x", "text": "y", "requester": map[string]any{"email": "a@b.example"}}, 403, ""},
		{e.b.keys[casedesk.RoleFinance], map[string]any{"subject": "x", "text": "y"}, 403, ""},
	} {
		res := e.do(tc.key, "POST", "/v1/cases", tc.body)
		if res.status != tc.status || tc.field != "" && !strings.Contains(res.errorMessage(), tc.field) {
			t.Errorf("POST /v1/cases %v: %d %s, want %d naming %q", tc.body, res.status, res.body, tc.status, tc.field)
		}
	}
	var after struct {
		Cases []caseJSON `json:"cases"`
	}
	e.do(admin, "GET", "/v1/cases?limit=500", nil).decode(t, &after)
	if len(after.Cases) != len(before.Cases) {
		t.Errorf("refused requests created %d cases", len(after.Cases)-len(before.Cases))
	}
	// Both creations are in the audit log.
	var audit struct {
		Entries []map[string]any `json:"entries"`
	}
	e.do(admin, "GET", "/v1/audit?action=case.create", nil).decode(t, &audit)
	if len(audit.Entries) != 2 {
		t.Errorf("audit has %d case.create entries, want 2: %+v", len(audit.Entries), audit.Entries)
	}
}

// TestGeneralUserSeesOwnCases: a portal user (cases:read_own) sees the
// cases of their own account only, and never internal notes.
func TestGeneralUserSeesOwnCases(t *testing.T) {
	e := newAPIEnv(t)
	key := e.a.keys[casedesk.RoleGeneral] // cara@customer.example, of Customer Inc
	e.do(e.a.keys[casedesk.RoleSupport], "POST", fmt.Sprintf("/v1/cases/%d/notes", e.a.cases[0].Number), map[string]any{"text": "internal: customer on the watchlist"})
	var list struct {
		Cases []caseJSON `json:"cases"`
	}
	// Search sees the note's words for staff only.
	if _, err := e.db.IndexSearch(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.do(e.a.keys[casedesk.RoleSupport], "GET", "/v1/cases?q=watchlist", nil).decode(t, &list)
	if len(list.Cases) != 1 || list.Cases[0].Number != e.a.cases[0].Number {
		t.Errorf("staff search for a note's word: %+v", list.Cases)
	}
	e.do(key, "GET", "/v1/cases?q=watchlist", nil).decode(t, &list)
	if len(list.Cases) != 0 {
		t.Errorf("general user finds a case by its note's words: %+v", list.Cases)
	}
	e.do(key, "GET", "/v1/cases?sort=number", nil).decode(t, &list)
	var got []int64
	for _, c := range list.Cases {
		got = append(got, c.Number)
	}
	// Cara's and Dan's cases (both customer.example), not Otto's.
	if want := []int64{e.a.cases[0].Number, e.a.cases[2].Number}; !slices.Equal(got, want) {
		t.Errorf("general user sees %v, want %v", got, want)
	}
	if res := e.do(key, "GET", fmt.Sprintf("/v1/cases/%d", e.a.cases[1].Number), nil); res.status != 404 {
		t.Errorf("another account's case: %d, want 404", res.status)
	}
	var msgs struct {
		Messages []messageJSON `json:"messages"`
	}
	e.do(key, "GET", fmt.Sprintf("/v1/cases/%d/messages", e.a.cases[0].Number), nil).decode(t, &msgs)
	for _, m := range msgs.Messages {
		if m.Direction == "note" {
			t.Errorf("general user sees a note: %+v", m)
		}
	}
}

// TestBadInput: malformed bodies are refused with 400 naming the field,
// and oversized ones with 413; nothing is written.
func TestBadInput(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	path := "/v1/contacts"
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"not JSON", `{"email": `, 400, "invalid JSON"},
		{"syntax", `{"email" "x"}`, 400, "invalid JSON"},
		{"array", `[1]`, 400, "JSON object"},
		{"empty", ``, 400, "empty"},
		{"unknown field", `{"email": "x@customer.example", "nmae": "typo"}`, 400, `"nmae"`},
		{"wrong type", `{"email": "x@customer.example", "account_id": "one"}`, 400, `"account_id" must be an integer`},
		{"too long", `{"email": "x@customer.example", "name": "` + strings.Repeat("n", 201) + `"}`, 400, `"name"`},
		{"bad email", `{"email": "not an address"}`, 400, `"email"`},
		{"trailing data", `{"email": "x@customer.example"} {}`, 400, "after the object"},
		{"too large", `{"email": "x@customer.example", "name": "` + strings.Repeat("n", 2<<20) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			res := e.do(admin, "POST", path, tt.body)
			var eb errorBody
			res.decode(t, &eb)
			if res.status != tt.status || eb.Error.Code != "invalid" || !strings.Contains(eb.Error.Message, tt.want) {
				t.Errorf("status %d %s; want %d mentioning %s", res.status, res.body, tt.status, tt.want)
			}
		})
	}
	e.t = t
	var list struct {
		Contacts []contactJSON `json:"contacts"`
	}
	e.do(admin, "GET", "/v1/contacts?q=x@customer", nil).decode(t, &list)
	if len(list.Contacts) != 0 {
		t.Errorf("a refused request stored %+v", list.Contacts)
	}
	if res := e.do(admin, "GET", "/v1/nothing-here", nil); res.status != 404 || res.errorCode() != "not_found" {
		t.Errorf("unknown path: %d %s", res.status, res.body)
	}
}

// TestPagination: 250 cases read 100 at a time, with new cases arriving
// between the pages: every case that existed at the start is seen exactly
// once, in order.
func TestPagination(t *testing.T) {
	e := newAPIEnv(t)
	f := e.a
	for len(f.cases) < 250 {
		f.cases = append(f.cases, e.newCase(f))
	}
	key := f.keys[casedesk.RoleSupport]
	for _, sort := range []string{"number", "-created_at", "subject"} {
		seen := map[int64]int{}
		cursor := ""
		for page := 0; ; page++ {
			path := "/v1/cases?limit=100&sort=" + sort
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			var list struct {
				Cases      []caseJSON `json:"cases"`
				NextCursor *string    `json:"next_cursor"`
			}
			e.do(key, "GET", path, nil).decode(t, &list)
			for _, c := range list.Cases {
				seen[c.Number]++
			}
			e.newCase(f) // inserted between pages
			if list.NextCursor == nil {
				break
			}
			cursor = *list.NextCursor
			if page > 10 {
				t.Fatal("too many pages")
			}
		}
		for _, c := range f.cases[:250] {
			if seen[c.Number] != 1 {
				t.Errorf("sort %s: case %d seen %d times", sort, c.Number, seen[c.Number])
			}
		}
		for n, k := range seen {
			if k != 1 {
				t.Errorf("sort %s: case %d seen %d times", sort, n, k)
			}
		}
	}
}

func TestUsersAndRoles(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	res := e.do(admin, "POST", "/v1/users", map[string]any{"email": "ann@acme.example", "name": "Ann", "role": "support"})
	var u userJSON
	res.decode(t, &u)
	if res.status != 201 || !u.Agent || u.Role != "support" {
		t.Fatalf("create user: %d %s", res.status, res.body)
	}
	if res := e.do(admin, "POST", "/v1/users", map[string]any{"email": "ANN@acme.example", "role": "support"}); res.status != 409 {
		t.Errorf("duplicate user: %d, want 409", res.status)
	}
	if res := e.do(admin, "POST", "/v1/users", map[string]any{"email": "bob@acme.example", "role": "wizard"}); res.status != 400 {
		t.Errorf("unknown role: %d, want 400", res.status)
	}
	res = e.do(admin, "PATCH", fmt.Sprintf("/v1/users/%d", u.ID), map[string]any{"role": "finance"})
	res.decode(t, &u)
	if res.status != 200 || u.Agent || u.Role != "finance" {
		t.Errorf("change role: %d %s", res.status, res.body)
	}
	if res := e.do(admin, "PATCH", fmt.Sprintf("/v1/users/%d", e.a.users[casedesk.RoleAdmin].ID), map[string]any{"active": false}); res.status != 400 {
		t.Errorf("deactivating oneself: %d, want 400", res.status)
	}
	// Custom roles.
	res = e.do(admin, "POST", "/v1/roles", map[string]any{"name": "triage", "permissions": []string{"cases:read", "cases:write"}})
	if res.status != 201 {
		t.Fatalf("create role: %d %s", res.status, res.body)
	}
	for _, body := range []map[string]any{{"name": "triage", "permissions": []string{}}, {"name": "x", "permissions": []string{"cases:fly"}}} {
		if res := e.do(admin, "POST", "/v1/roles", body); res.status != 409 && res.status != 400 {
			t.Errorf("bad role %v: %d", body, res.status)
		}
	}
	res = e.do(admin, "POST", "/v1/users", map[string]any{"email": "tri@acme.example", "role": "triage"})
	res.decode(t, &u)
	res = e.do(admin, "POST", fmt.Sprintf("/v1/users/%d/keys", u.ID), map[string]any{})
	var k keyJSON
	res.decode(t, &k)
	if res := e.do(k.Key, "GET", "/v1/cases", nil); res.status != 200 {
		t.Errorf("custom role reads cases: %d", res.status)
	}
	if res := e.do(k.Key, "GET", "/v1/contacts", nil); res.status != 403 {
		t.Errorf("custom role reads contacts: %d, want 403", res.status)
	}
	if res := e.do(admin, "PATCH", "/v1/roles/admin", map[string]any{"permissions": []string{"cases:read"}}); res.status != 400 {
		t.Errorf("changing the admin role: %d, want 400", res.status)
	}
}

// TestAuditLog: every write is in the log with its actor, action and
// target; the log has no path to change it.
func TestAuditLog(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	e.do(admin, "POST", fmt.Sprintf("/v1/cases/%d/notes", e.a.cases[0].Number), map[string]any{"text": "n"})
	e.do(admin, "PATCH", "/v1/settings", map[string]any{"language": "de"})
	var audit struct {
		Entries []auditJSON `json:"entries"`
	}
	e.do(admin, "GET", "/v1/audit", nil).decode(t, &audit)
	var actions []string
	for _, a := range audit.Entries {
		actions = append(actions, a.Action+" "+a.TargetKind+" "+a.TargetID)
		if a.UserID == nil || *a.UserID != e.a.users[casedesk.RoleAdmin].ID {
			t.Errorf("entry %+v has the wrong actor", a)
		}
	}
	want := []string{fmt.Sprintf("settings.update tenant %d", e.a.tenant.ID), fmt.Sprintf("case.note case %d", e.a.cases[0].Number)}
	if !slices.Equal(actions, want) {
		t.Errorf("audit = %q, want %q", actions, want)
	}
	e.do(admin, "GET", "/v1/audit?action=case.note", nil).decode(t, &audit)
	if len(audit.Entries) != 1 {
		t.Errorf("filtered audit = %+v", audit.Entries)
	}
	for _, m := range []string{"PUT", "PATCH", "DELETE", "POST"} {
		if res := e.do(admin, m, "/v1/audit", map[string]any{}); res.status != 405 && res.status != 404 {
			t.Errorf("%s /v1/audit: %d", m, res.status)
		}
	}
}

func TestQuarantineEndpoints(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	id := e.quarantine(e.a)
	var list struct {
		Messages []quarantineJSON `json:"messages"`
	}
	e.do(admin, "GET", "/v1/quarantine", nil).decode(t, &list)
	if len(list.Messages) != 1 || list.Messages[0].ID != id || list.Messages[0].Error != "bad MIME" {
		t.Fatalf("quarantine = %+v", list)
	}
	res := e.do(admin, "GET", fmt.Sprintf("/v1/quarantine/%d/raw", id), nil)
	if res.status != 200 || !strings.HasPrefix(string(res.body), "Subject: broken") {
		t.Errorf("raw: %d %q", res.status, res.body)
	}
	e.reprocess = casedesk.Errorf(casedesk.EINVALID, "still broken")
	if res := e.do(admin, "POST", fmt.Sprintf("/v1/quarantine/%d/retry", id), nil); res.status != 409 {
		t.Errorf("failing retry: %d, want 409", res.status)
	}
	e.reprocess = nil
	if res := e.do(admin, "POST", fmt.Sprintf("/v1/quarantine/%d/retry", id), nil); res.status != 200 {
		t.Errorf("retry: %d %s", res.status, res.body)
	}
	e.do(admin, "GET", "/v1/quarantine", nil).decode(t, &list)
	if len(list.Messages) != 0 || len(e.reprocessed) != 1 {
		t.Errorf("after the retry: %+v, %d reprocessed", list.Messages, len(e.reprocessed))
	}
	if res := e.do(admin, "POST", fmt.Sprintf("/v1/quarantine/%d/retry", id), nil); res.status != 409 {
		t.Errorf("second retry: %d, want 409", res.status)
	}
}

// TestOpenAPICoversRoutes: every route is documented, and every documented
// operation is served.
func TestOpenAPICoversRoutes(t *testing.T) {
	doc, err := openAPI()
	if err != nil {
		t.Fatal(err)
	}
	s := New(nil, Options{})
	served := map[string]bool{}
	for _, rt := range s.routes {
		served[rt.method+" "+rt.path] = true
		item := doc.Paths.Find(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("%s %s is not documented", rt.method, rt.path)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !served[method+" "+path] {
				t.Errorf("documented %s %s is not served", method, path)
			}
		}
	}
}

// TestDeactivateInactiveUsers: the job turns off users idle for six
// months, and their keys stop working; a second run changes nothing.
func TestDeactivateInactiveUsers(t *testing.T) {
	e := newAPIEnv(t)
	key := e.a.keys[casedesk.RoleSupport]
	if res := e.do(key, "GET", "/v1/me", nil); res.status != 200 {
		t.Fatalf("me: %d", res.status)
	}
	ctx := context.Background()
	soon := time.Now().Add(casedesk.InactiveAfter - time.Hour)
	if users, err := DeactivateInactiveUsers(ctx, e.db, soon); err != nil || len(users) != 0 {
		t.Fatalf("before six months: %d users, %v", len(users), err)
	}
	later := time.Now().Add(casedesk.InactiveAfter + time.Hour)
	users, err := DeactivateInactiveUsers(ctx, e.db, later)
	if err != nil {
		t.Fatal(err)
	}
	var mine int
	for _, u := range users {
		if u.TenantID == e.a.tenant.ID && !u.Active {
			mine++
		}
	}
	if mine != len(roles) {
		t.Errorf("deactivated %d of tenant A's %d users", mine, len(roles))
	}
	if res := e.do(key, "GET", "/v1/me", nil); res.status != 401 {
		t.Errorf("key of a deactivated user: %d, want 401", res.status)
	}
	// Each deactivation is audited by the system in its own tenant.
	var entries []*casedesk.AuditEntry
	e.update(func(tx casedesk.Tx) (err error) {
		entries, err = tx.ListAudit(ctx, e.a.tenant.ID, casedesk.AuditFilter{Action: "user.deactivate", Limit: 100})
		return err
	})
	if len(entries) != len(roles) {
		t.Errorf("audit of the job: %d entries, want %d", len(entries), len(roles))
	}
	for _, a := range entries {
		if a.UserID != 0 || a.TargetKind != "user" {
			t.Errorf("audit entry of the job: %+v", a)
		}
	}
	if again, err := DeactivateInactiveUsers(ctx, e.db, later); err != nil || len(again) != 0 {
		t.Errorf("second run: %d users, %v", len(again), err)
	}
}

// TestNoPrivilegeEscalation: a role that may manage users and roles can
// grant only what it holds itself: no admin users, no keys for users with
// more rights, no widening of roles (its own included).
func TestNoPrivilegeEscalation(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	perms := []string{"users:read", "users:write", "settings:read", "settings:write"}
	if res := e.do(admin, "POST", "/v1/roles", map[string]any{"name": "people", "permissions": perms}); res.status != 201 {
		t.Fatalf("create role: %d %s", res.status, res.body)
	}
	var u userJSON
	e.do(admin, "POST", "/v1/users", map[string]any{"email": "pat@acme.example", "name": "Pat", "role": "people"}).decode(t, &u)
	var k struct {
		Key string `json:"key"`
	}
	e.do(admin, "POST", fmt.Sprintf("/v1/users/%d/keys", u.ID), map[string]any{"name": "pat"}).decode(t, &k)
	if k.Key == "" {
		t.Fatal("no key for pat")
	}
	adminID := e.a.users[casedesk.RoleAdmin].ID
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/v1/users", map[string]any{"email": "mal@acme.example", "name": "Mal", "role": "admin"}, 403},
		{"POST", "/v1/users", map[string]any{"email": "mal@acme.example", "name": "Mal", "role": "support"}, 403},
		{"PATCH", fmt.Sprintf("/v1/users/%d", e.a.users[casedesk.RoleGeneral].ID), map[string]any{"role": "technical"}, 403},
		{"PATCH", fmt.Sprintf("/v1/users/%d", adminID), map[string]any{"active": false}, 403},
		{"POST", fmt.Sprintf("/v1/users/%d/keys", adminID), map[string]any{"name": "mine now"}, 403},
		{"PATCH", "/v1/roles/people", map[string]any{"permissions": append(perms, "cases:read")}, 403},
		{"POST", "/v1/roles", map[string]any{"name": "auditors", "permissions": []string{"audit:read"}}, 403},
		// Within its own rights it works.
		{"POST", "/v1/users", map[string]any{"email": "pam@acme.example", "name": "Pam", "role": "people"}, 201},
		{"POST", "/v1/roles", map[string]any{"name": "viewers", "permissions": []string{"users:read"}}, 201},
		{"PATCH", fmt.Sprintf("/v1/users/%d", u.ID), map[string]any{"name": "Pat P."}, 200},
	} {
		if res := e.do(k.Key, tc.method, tc.path, tc.body); res.status != tc.want {
			t.Errorf("%s %s %v: %d, want %d: %s", tc.method, tc.path, tc.body, res.status, tc.want, res.body)
		}
	}
	// The admin is untouched and their key still works.
	if res := e.do(admin, "GET", "/v1/me", nil); res.status != 200 {
		t.Errorf("admin key after the attempts: %d", res.status)
	}
	var users struct {
		Users []userJSON `json:"users"`
	}
	e.do(admin, "GET", "/v1/users?limit=100", nil).decode(t, &users)
	for _, x := range users.Users {
		if x.Email == "mal@acme.example" {
			t.Errorf("a refused user was created: %+v", x)
		}
	}
}

// TestNULInRequests: a NUL character in any string of a request is kept
// as U+FFFD, like everything the store keeps, instead of failing the
// request on the database (the audit log and outbox payloads are jsonb).
func TestNULInRequests(t *testing.T) {
	e := newAPIEnv(t)
	admin := e.a.keys[casedesk.RoleAdmin]
	var c contactJSON
	res := e.do(admin, "POST", "/v1/contacts", map[string]any{"email": "nul@customer.example", "name": "Nu\x00ll"})
	res.decode(t, &c)
	if res.status != 201 || c.Name != "Nu\uFFFDll" {
		t.Errorf("contact with NUL: %d %s", res.status, res.body)
	}
	res = e.do(e.a.keys[casedesk.RoleGeneral], "POST", "/v1/cases", map[string]any{"subject": "A\x00B", "text": "x\x00y"})
	var cs caseJSON
	res.decode(t, &cs)
	if res.status != 201 || cs.Subject != "A\uFFFDB" {
		t.Errorf("case with NUL: %d %s", res.status, res.body)
	}
	if res := e.do(e.a.keys[casedesk.RoleSupport], "POST", fmt.Sprintf("/v1/cases/%d/replies", e.a.cases[0].Number),
		map[string]any{"text": "one\x00two"}); res.status != 202 {
		t.Errorf("reply with NUL: %d %s", res.status, res.body)
	}
	if res := e.do(admin, "POST", "/v1/roles", map[string]any{"name": "ro\x00le", "permissions": []string{"cases:read"}}); res.status != 201 {
		t.Errorf("role with NUL: %d %s", res.status, res.body)
	}
}
