package casestore_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// prodData is a production tenant full of personal data, and the values
// that identify people in it.
type prodData struct {
	*fixture
	needles []string // what must not appear in an anonymised sandbox
	cases   int
	// msgIDs are the Message-IDs of the first case's thread, oldest first.
	first *casedesk.Case
}

func newProdData(t *testing.T, opts ...casestore.Option) *prodData {
	t.Helper()
	f := newFixture(t, opts...)
	p := &prodData{fixture: f}
	p.needles = []string{
		"Cara Customer", "cara@customer.example", "customer.example",
		"Hank Scorpio", "hank@globex.example", "globex.example", "+1 555 0100", "555 0100",
		"Marge Bouvier", "marge@springfield.example", "springfield.example", "+44 20 7946 0958",
		"Sam Support", "sam.agent@acme.example", "Globex Corporation", "Springfield Nuclear",
		"Invoice for Globex broken", "the reactor is leaking", "hank-passport.pdf", "Smithers",
		"CAF+hank@mail.globex.example",
	}
	ctx := ctx()
	update(t, f.db, func(tx casedesk.Tx) error {
		tid := f.tenant.ID
		globex, err := tx.CreateAccount(ctx, casedesk.NewAccount{TenantID: tid, Name: "Globex Corporation",
			Domains: []string{"globex.example"}, SLATier: "gold"})
		if err != nil {
			return err
		}
		if _, err := tx.CreateAccount(ctx, casedesk.NewAccount{TenantID: tid, Name: "Springfield Nuclear",
			Domains: []string{"springfield.example"}}); err != nil {
			return err
		}
		hank, err := tx.UpsertContact(ctx, tid, casedesk.Address{Name: "Hank Scorpio", Email: "hank@globex.example"})
		if err != nil {
			return err
		}
		phone := "+1 555 0100"
		if _, err := tx.UpdateContact(ctx, tid, hank.ID, casedesk.ContactUpdate{Phone: &phone}); err != nil {
			return err
		}
		bill := hank.ID
		if _, err := tx.UpdateAccount(ctx, tid, globex.ID, casedesk.AccountUpdate{BillingContactID: &bill}); err != nil {
			return err
		}
		marge, err := tx.UpsertContact(ctx, tid, casedesk.Address{Name: "Marge Bouvier", Email: "marge@springfield.example"})
		if err != nil {
			return err
		}
		phone2 := "+44 20 7946 0958"
		if _, err := tx.UpdateContact(ctx, tid, marge.ID, casedesk.ContactUpdate{Phone: &phone2}); err != nil {
			return err
		}
		if _, err := tx.CreateRole(ctx, tid, "triage", []casedesk.Permission{casedesk.PermCasesRead}); err != nil {
			return err
		}
		sam, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: tid, Email: "sam.agent@acme.example",
			Name: "Sam Support", RoleName: casedesk.RoleSupport})
		if err != nil {
			return err
		}
		if _, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: tid, Email: "tim@acme.example",
			Name: "Smithers", RoleName: "triage"}); err != nil {
			return err
		}
		if _, err := tx.SaveTemplateOverride(ctx, casedesk.TemplateOverride{TenantID: tid, Name: "ack", Lang: "en",
			Subject: "We got it", Text: "Thanks, we are on it.", HTML: "<p>Thanks, we are on it.</p>"}); err != nil {
			return err
		}
		if _, err := tx.UpdateTenantSettings(ctx, tid, casedesk.TenantSettings{SubjectTagPrefix: "Ticket"}); err != nil {
			return err
		}
		fields, _ := json.Marshal(map[string]any{"error_report": map[string]any{"user_words": "Hank Scorpio says the reactor is leaking"}, "count": 3})
		c, err := tx.CreateCase(ctx, casedesk.NewCase{TenantID: tid, Subject: "Invoice for Globex broken",
			RequesterID: hank.ID, AccountID: globex.ID, AssigneeID: sam.ID, Fields: fields})
		if err != nil {
			return err
		}
		p.first = c
		if err := tx.AddParticipants(ctx, tid, c.ID, marge.ID); err != nil {
			return err
		}
		hankAddr := casedesk.Address{Name: "Hank Scorpio", Email: "hank@globex.example"}
		_, err = tx.AppendMessages(ctx, []casedesk.NewMessage{{
			TenantID: tid, CaseID: c.ID, MessageID: "<CAF+hank@mail.globex.example>", Direction: casedesk.Inbound,
			AuthorKind: casedesk.AuthorCustomer, ContactID: hank.ID, From: hankAddr,
			To:      []casedesk.Address{{Name: "Acme Support", Email: "support@acme.example"}},
			Cc:      []casedesk.Address{{Name: "Marge Bouvier", Email: "marge@springfield.example"}},
			Subject: "Invoice for Globex broken",
			Text:    "Hi, Hank Scorpio here (+1 555 0100, hank@globex.example): the reactor is leaking.",
			HTML:    "<p>Hank Scorpio: the reactor is leaking</p>",
			Raw:     []byte("From: Hank Scorpio <hank@globex.example>\r\nSubject: Invoice for Globex broken\r\n\r\nthe reactor is leaking\r\n"),
			Attachments: []casedesk.NewAttachment{{Name: "hank-passport.pdf", ContentType: "application/pdf",
				Content: []byte("%PDF-1.4 Hank Scorpio passport")}},
		}, {
			TenantID: tid, CaseID: c.ID, MessageID: "<c1.m2.k1@acme.example>", InReplyTo: "<CAF+hank@mail.globex.example>",
			References: []string{"<CAF+hank@mail.globex.example>"}, Direction: casedesk.Outbound, AuthorKind: casedesk.AuthorAgent,
			UserID: sam.ID, From: casedesk.Address{Name: "Sam Support", Email: "sam.agent@acme.example"},
			To: []casedesk.Address{hankAddr}, Subject: "Re: [Case #1] Invoice for Globex broken",
			Text: "Dear Hank Scorpio, we are on it. Sam Support",
		}, {
			TenantID: tid, CaseID: c.ID, MessageID: "<CAF+hank2@mail.globex.example>", InReplyTo: "<c1.m2.k1@acme.example>",
			References: []string{"<CAF+hank@mail.globex.example>", "<c1.m2.k1@acme.example>"}, Direction: casedesk.Inbound,
			AuthorKind: casedesk.AuthorCustomer, ContactID: hank.ID, From: hankAddr,
			To:      []casedesk.Address{{Email: "support+c1-k1@acme.example"}},
			Subject: "RE: Invoice for Globex broken", Text: "Thanks. Hank Scorpio",
			Raw: []byte("From: hank@globex.example\r\n\r\nThanks\r\n"),
		}})
		if err != nil {
			return err
		}
		by := casedesk.Actor{Kind: casedesk.AuthorAgent, UserID: sam.ID}
		if _, err := tx.ChangeStatus(ctx, tid, c.ID, casedesk.StatusOpen, by); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]any{"recipient": "marge@springfield.example", "status": "5.1.1",
			"diagnostic": "550 no such user Marge Bouvier"})
		if _, err := tx.AddEvent(ctx, casedesk.Event{TenantID: tid, CaseID: c.ID, Kind: casedesk.EventBounce,
			Actor: casedesk.SystemActor, Data: data}); err != nil {
			return err
		}
		if _, err := tx.CreateInvoices(ctx, tid, []casedesk.NewInvoice{{TenantID: tid, AccountID: globex.ID, Number: "INV-1",
			PeriodStart: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC),
			IssueDate: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), DueDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
			Currency: "EUR", Lines: []casedesk.InvoiceLine{{Description: "Support for Globex Corporation, Hank Scorpio's team",
				Quantity: 2, UnitPriceMinor: 12345}}}}); err != nil {
			return err
		}
		// A merged pair and a follow-up, for the links between cases.
		older, err := tx.CreateCase(ctx, casedesk.NewCase{TenantID: tid, Subject: "Hank Scorpio again", RequesterID: hank.ID})
		if err != nil {
			return err
		}
		newer, err := tx.CreateCase(ctx, casedesk.NewCase{TenantID: tid, Subject: "Marge Bouvier asks", RequesterID: marge.ID,
			FollowUpOf: c.ID})
		if err != nil {
			return err
		}
		_, err = tx.MergeCase(ctx, tid, older.ID, newer.ID, by)
		return err
	})
	p.cases = 3
	return p
}

// build runs a sandbox job to its end, as the builder does, through db.
func build(t testing.TB, db casedesk.Store, job *casedesk.SandboxJob) *casedesk.SandboxJob {
	t.Helper()
	for range 100000 {
		var next *casedesk.SandboxJob
		update(t, db, func(tx casedesk.Tx) (err error) {
			next, err = tx.BuildSandbox(ctx(), job.TenantID, job.ID)
			return err
		})
		if !next.Open() {
			return next
		}
		for more := next.Chunks > 0; more; {
			update(t, db, func(tx casedesk.Tx) (err error) {
				more, err = tx.BuildSandboxChunk(ctx(), job.TenantID, job.ID)
				return err
			})
		}
		if next.Step == job.Step && next.Progress == job.Progress && next.Chunks == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		job = next
	}
	t.Fatal("the build does not end")
	return nil
}

func (p *prodData) createSandbox(t *testing.T, mode casedesk.SandboxMode) *casedesk.Sandbox {
	t.Helper()
	var sb *casedesk.Sandbox
	update(t, p.db, func(tx casedesk.Tx) (err error) {
		sb, err = tx.CreateSandbox(ctx(), casedesk.NewSandbox{TenantID: p.tenant.ID, Mode: mode})
		return err
	})
	return sb
}

// rowCount counts a tenant's rows of a table.
func rowCount(t *testing.T, table string, tenantID int64) int {
	t.Helper()
	var n int
	if err := queryRow(t, `SELECT count(*) FROM `+table+` WHERE tenant_id = $1`, []any{tenantID}, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// copiedTables are the tables a cloned sandbox has as many rows of as
// production.
var copiedTables = []string{"accounts", "contacts", "cases", "case_participants", "messages", "attachments", "events",
	"template_overrides", "invoices"}

func TestSandboxAnonymized(t *testing.T) {
	p := newProdData(t)
	sb := p.createSandbox(t, casedesk.SandboxAnonymized)
	if sb.Status() != casedesk.SandboxCreating || sb.Tenant.Ready || sb.Tenant.Kind != casedesk.TenantSandbox ||
		sb.Tenant.ParentID != p.tenant.ID {
		t.Fatalf("new sandbox: %s, %+v", sb.Status(), sb.Tenant)
	}
	job := build(t, p.db, sb.Job)
	if job.State != casedesk.JobDone || job.Progress != job.Total || job.Total == 0 {
		t.Fatalf("job = %+v", job)
	}
	sid := sb.Tenant.ID
	for _, table := range copiedTables {
		if got, want := rowCount(t, table, sid), rowCount(t, table, p.tenant.ID); got != want {
			t.Errorf("%s: %d rows in the sandbox, %d in production", table, got, want)
		}
	}
	// Users: production's and none else (the API adds the sandbox admin).
	if got, want := rowCount(t, "users", sid), rowCount(t, "users", p.tenant.ID); got != want {
		t.Errorf("users: %d, want %d", got, want)
	}
	for _, table := range []string{"message_raw", "blobs", "api_keys", "outbox", "audit_log", "quarantine", "message_search", "search_queue"} {
		if n := rowCount(t, table, sid); n != 0 {
			t.Errorf("%s: %d rows copied, want none", table, n)
		}
	}
	scanForNeedles(t, sid, p.needles)

	var ready bool
	if err := queryRow(t, `SELECT ready FROM tenants WHERE id = $1`, []any{sid}, &ready); err != nil || !ready {
		t.Errorf("sandbox ready = %v, %v", ready, err)
	}

	// The same person has the same pseudonym everywhere, and the thread
	// still threads.
	var sbx *casedesk.Sandbox
	var msgs []*casedesk.Message
	var hank *casedesk.Contact
	var c *casedesk.Case
	update(t, p.db, func(tx casedesk.Tx) (err error) {
		if sbx, err = tx.FindSandbox(ctx(), p.tenant.ID); err != nil {
			return err
		}
		if c, err = tx.FindCase(ctx(), sid, p.first.ID); err != nil {
			return err
		}
		if hank, err = tx.FindContact(ctx(), sid, c.RequesterID); err != nil {
			return err
		}
		msgs, err = tx.ListMessages(ctx(), sid, p.first.ID)
		return err
	})
	if sbx.Status() != casedesk.SandboxReady || sbx.Tenant.ID != sid {
		t.Errorf("FindSandbox: %s, tenant %d", sbx.Status(), sbx.Tenant.ID)
	}
	if !strings.HasPrefix(hank.Name, "Person ") || !strings.HasSuffix(hank.Email, ".example") || hank.Phone != "" {
		t.Errorf("contact = %q <%s> %q", hank.Name, hank.Email, hank.Phone)
	}
	if c.Number != p.first.Number || c.AccountID == 0 || c.AssigneeID == 0 || !strings.HasPrefix(c.Subject, "Subject ") {
		t.Errorf("case = #%d %q account %d assignee %d", c.Number, c.Subject, c.AccountID, c.AssigneeID)
	}
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	if msgs[0].From.Email != hank.Email || msgs[0].From.Name != hank.Name || msgs[2].From.Email != hank.Email {
		t.Errorf("From %v and %v, contact <%s>", msgs[0].From, msgs[2].From, hank.Email)
	}
	if msgs[1].To[0].Email != hank.Email {
		t.Errorf("agent reply to %v, want the requester's pseudonym %s", msgs[1].To, hank.Email)
	}
	if msgs[0].To[0].Email != "support@acme.example" || msgs[2].To[0].Email != "support+c1-k1@acme.example" {
		t.Errorf("support addresses changed: %v, %v", msgs[0].To, msgs[2].To)
	}
	if msgs[1].InReplyTo != msgs[0].MessageID || msgs[2].InReplyTo != msgs[1].MessageID ||
		len(msgs[2].References) != 2 || msgs[2].References[0] != msgs[0].MessageID {
		t.Errorf("thread broken: ids %q %q %q, in-reply-to %q %q, refs %q", msgs[0].MessageID, msgs[1].MessageID,
			msgs[2].MessageID, msgs[1].InReplyTo, msgs[2].InReplyTo, msgs[2].References)
	}
	if msgs[0].Subject != c.Subject || msgs[2].Subject != "Re: "+c.Subject || msgs[1].Subject != "Re: "+c.Subject {
		t.Errorf("subjects %q, %q, %q; case %q", msgs[0].Subject, msgs[1].Subject, msgs[2].Subject, c.Subject)
	}
	if !strings.HasPrefix(msgs[0].Text, "[text removed") || msgs[0].HTML != "" {
		t.Errorf("text = %q, html = %q", msgs[0].Text, msgs[0].HTML)
	}
	if a := msgs[0].Attachments; len(a) != 1 || a[0].SHA256 != nil || a[0].Name != "attachment-0.pdf" || a[0].Size == 0 {
		t.Errorf("attachments = %+v", a)
	}
	// Invoices keep their amounts, not their descriptions.
	var amount int64
	var currency, lines string
	if err := queryRow(t, `SELECT amount_minor, currency, lines::text FROM invoices WHERE tenant_id = $1 AND number = 'INV-1'`,
		[]any{sid}, &amount, &currency, &lines); err != nil || amount != 24690 || currency != "EUR" ||
		!strings.Contains(lines, `"Line 1"`) || !strings.Contains(lines, `"unit_price_minor": 12345`) {
		t.Errorf("invoice: %d %s %s (%v)", amount, currency, lines, err)
	}
	// Links between cases and the counter came along.
	var merged, followUp, last int64
	if err := queryRow(t, `SELECT (SELECT count(*) FROM cases WHERE tenant_id = $1 AND merged_into IS NOT NULL),
		(SELECT count(*) FROM cases WHERE tenant_id = $1 AND follow_up_of IS NOT NULL),
		(SELECT last_number FROM case_counters WHERE tenant_id = $1)`, []any{sid}, &merged, &followUp, &last); err != nil {
		t.Fatal(err)
	}
	if merged != 1 || followUp != 1 || last != int64(p.cases) {
		t.Errorf("merged %d, follow-ups %d, last number %d", merged, followUp, last)
	}
	// A new case in the sandbox takes the next number and a fresh ID.
	update(t, p.db, func(tx casedesk.Tx) error {
		nc, err := tx.CreateCase(ctx(), casedesk.NewCase{TenantID: sid, Subject: "new", RequesterID: hank.ID})
		if err == nil && nc.Number != int64(p.cases)+1 {
			err = fmt.Errorf("new case #%d", nc.Number)
		}
		return err
	})
}

// scanForNeedles fails the test for any needle found in any text, JSON or
// array column of any row of the tenant.
func scanForNeedles(t *testing.T, tenantID int64, needles []string) {
	t.Helper()
	conn, err := pgx.Connect(ctx(), casestoretest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx())
	rows, err := conn.Query(ctx(), `
		SELECT c.table_name, c.column_name FROM information_schema.columns c
		JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND tb.table_type = 'BASE TABLE'
			AND c.data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY', 'bytea')
			AND EXISTS (SELECT 1 FROM information_schema.columns k WHERE k.table_schema = c.table_schema
				AND k.table_name = c.table_name AND k.column_name = 'tenant_id')
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Table, Column string }])
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) < 40 {
		t.Fatalf("only %d columns to scan", len(cols))
	}
	var scanned int
	for _, c := range cols {
		// bytea: raw mail and blobs are compressed; they must be absent.
		expr := fmt.Sprintf("%q::text", c.Column)
		if c.Column == "data" || c.Column == "raw" || c.Column == "token_secret" || c.Column == "hash" ||
			c.Column == "sha256" || c.Column == "raw_sha256" {
			var n int
			if err := conn.QueryRow(ctx(), fmt.Sprintf(`SELECT count(*) FROM %q WHERE tenant_id = $1 AND %q IS NOT NULL`,
				c.Table, c.Column), tenantID).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 && (c.Table == "message_raw" || c.Table == "blobs" || c.Table == "quarantine") {
				t.Errorf("%s.%s: %d rows of raw content", c.Table, c.Column, n)
			}
			continue
		}
		for _, needle := range needles {
			var n int
			err := conn.QueryRow(ctx(), fmt.Sprintf(`SELECT count(*) FROM %q WHERE tenant_id = $1 AND strpos(lower(%s), lower($2)) > 0`,
				c.Table, expr), tenantID, needle).Scan(&n)
			if err != nil {
				t.Fatalf("%s.%s: %v", c.Table, c.Column, err)
			}
			if n > 0 {
				t.Errorf("%s.%s: %d rows contain %q", c.Table, c.Column, n, needle)
			}
		}
		scanned++
	}
	// The tenant's own row: name and addresses.
	var row string
	if err := conn.QueryRow(ctx(), `SELECT (t.*)::text FROM tenants t WHERE id = $1`, tenantID).Scan(&row); err != nil {
		t.Fatal(err)
	}
	for _, needle := range needles {
		if strings.Contains(strings.ToLower(row), strings.ToLower(needle)) {
			t.Errorf("tenant row contains %q", needle)
		}
	}
	t.Logf("scanned %d columns for %d needles", scanned, len(needles))
}

// TestSandboxNeedlesFoundInProduction: the scan does find what is there,
// so its silence about a sandbox means something.
func TestSandboxNeedlesFoundInProduction(t *testing.T) {
	p := newProdData(t)
	for _, needle := range p.needles {
		var n int
		err := queryRow(t, `SELECT
			(SELECT count(*) FROM contacts c WHERE tenant_id = $1 AND strpos(lower((c.*)::text), lower($2)) > 0) +
			(SELECT count(*) FROM users c WHERE tenant_id = $1 AND strpos(lower((c.*)::text), lower($2)) > 0) +
			(SELECT count(*) FROM accounts c WHERE tenant_id = $1 AND strpos(lower((c.*)::text), lower($2)) > 0) +
			(SELECT count(*) FROM cases c WHERE tenant_id = $1 AND strpos(lower((c.*)::text), lower($2)) > 0) +
			(SELECT count(*) FROM messages c WHERE tenant_id = $1 AND strpos(lower((c.*)::text), lower($2)) > 0) +
			(SELECT count(*) FROM attachments c WHERE tenant_id = $1 AND strpos(lower((c.*)::text), lower($2)) > 0) +
			(SELECT count(*) FROM events c WHERE tenant_id = $1 AND strpos(lower((c.*)::text), lower($2)) > 0)`,
			[]any{p.tenant.ID, needle}, &n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("production has no %q: the sandbox scan for it proves nothing", needle)
		}
	}
}

func TestSandboxFull(t *testing.T) {
	p := newProdData(t)
	// Index production's mail, so that the index is copied.
	if _, err := p.db.IndexSearch(ctx()); err != nil {
		t.Fatal(err)
	}
	sb := p.createSandbox(t, casedesk.SandboxFull)
	job := build(t, p.db, sb.Job)
	if job.State != casedesk.JobDone {
		t.Fatalf("job = %+v", job)
	}
	sid := sb.Tenant.ID
	for _, table := range append(copiedTables, "users", "message_search") {
		if got, want := rowCount(t, table, sid), rowCount(t, table, p.tenant.ID); got != want {
			t.Errorf("%s: %d rows in the sandbox, %d in production", table, got, want)
		}
	}
	for _, table := range []string{"message_raw", "blobs", "api_keys"} {
		if n := rowCount(t, table, sid); n != 0 {
			t.Errorf("%s: %d rows copied, want none", table, n)
		}
	}
	// Everything else is as it is in production.
	var differ int
	if err := queryRow(t, `SELECT count(*) FROM messages s JOIN messages p ON p.tenant_id = $1 AND p.id = s.id
		WHERE s.tenant_id = $2 AND (s.text_body, s.html_body, s.subject, s.from_addr, s.to_addrs, s.message_id, s.refs)
			IS DISTINCT FROM (p.text_body, p.html_body, p.subject, p.from_addr, p.to_addrs, p.message_id, p.refs)`,
		[]any{p.tenant.ID, sid}, &differ); err != nil || differ != 0 {
		t.Errorf("%d messages differ (%v)", differ, err)
	}
	if err := queryRow(t, `SELECT count(*) FROM contacts s JOIN contacts p ON p.tenant_id = $1 AND p.id = s.id
		WHERE s.tenant_id = $2 AND (s.email, s.name, s.phone, s.account_id) IS DISTINCT FROM (p.email, p.name, p.phone, p.account_id)`,
		[]any{p.tenant.ID, sid}, &differ); err != nil || differ != 0 {
		t.Errorf("%d contacts differ (%v)", differ, err)
	}
	// Case search works on the copied index.
	var page *casedesk.CasePage
	update(t, p.db, func(tx casedesk.Tx) (err error) {
		page, err = tx.ListCases(ctx(), sid, casedesk.CaseFilter{Q: "reactor"})
		return err
	})
	if len(page.Cases) != 1 || page.Cases[0].ID != p.first.ID {
		t.Errorf("search in the sandbox found %d cases", len(page.Cases))
	}
}

func TestSandboxEmpty(t *testing.T) {
	p := newProdData(t)
	sb := p.createSandbox(t, casedesk.SandboxEmpty)
	if job := build(t, p.db, sb.Job); job.State != casedesk.JobDone {
		t.Fatalf("job = %+v", job)
	}
	sid := sb.Tenant.ID
	for _, table := range []string{"accounts", "contacts", "users", "cases", "messages", "events"} {
		if n := rowCount(t, table, sid); n != 0 {
			t.Errorf("%s: %d rows, want none", table, n)
		}
	}
	// The configuration came along: settings, templates, custom roles.
	var ten *casedesk.Tenant
	var roles []*casedesk.Role
	var overrides []casedesk.TemplateOverride
	update(t, p.db, func(tx casedesk.Tx) (err error) {
		if ten, err = tx.FindTenant(ctx(), sid); err != nil {
			return err
		}
		if overrides, err = tx.TemplateOverrides(ctx(), sid); err != nil {
			return err
		}
		roles, err = tx.ListRoles(ctx(), sid)
		return err
	})
	if ten.Settings.TagPrefix() != "Ticket" || !ten.Ready {
		t.Errorf("sandbox tenant = %+v", ten)
	}
	if len(overrides) != 1 || overrides[0].Subject != "We got it" {
		t.Errorf("template overrides = %+v", overrides)
	}
	var triage bool
	for _, r := range roles {
		triage = triage || r.Name == "triage"
	}
	if !triage {
		t.Errorf("custom role not copied: %d roles", len(roles))
	}
}

// TestSandboxResumes: a build cut off after any step, by a stop or a
// crash, is taken up by another process from its last committed step,
// and the result is the same as one uninterrupted build.
func TestSandboxResumes(t *testing.T) {
	p := newProdData(t, casestore.WithSandboxChunk(1))
	sb := p.createSandbox(t, casedesk.SandboxAnonymized)
	job := sb.Job
	var steps []string
	var chunks int
	for i := 0; job.Open(); i++ {
		// Every step on a fresh store, as after a restart; every third
		// step fails half way (its transaction rolls back).
		db := casestoretest.Open(t, casestore.WithSandboxChunk(1))
		// Chunks left to copy are copied one per call, as a builder
		// would; otherwise the job moves on.
		var next *casedesk.SandboxJob
		err := db.Update(ctx(), func(tx casedesk.Tx) (err error) {
			if job.Chunks > 0 {
				var more bool
				if more, err = tx.BuildSandboxChunk(ctx(), job.TenantID, job.ID); err == nil {
					chunks++
					var j casedesk.SandboxJob = *job
					if !more {
						j.Chunks = 0
					}
					next = &j
				}
			} else {
				next, err = tx.BuildSandbox(ctx(), job.TenantID, job.ID)
			}
			if err == nil && i%3 == 2 {
				err = fmt.Errorf("crash")
			}
			return err
		})
		db.Close()
		if i%3 == 2 {
			if err == nil {
				t.Fatal("crash did not fail")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if next.Open() {
			var ready bool
			if err := queryRow(t, `SELECT ready FROM tenants WHERE id = $1`, []any{sb.Tenant.ID}, &ready); err != nil || ready {
				t.Fatalf("half-built sandbox ready = %v (%v) at step %q", ready, err, next.Step)
			}
		}
		if len(steps) == 0 || steps[len(steps)-1] != next.Step {
			steps = append(steps, next.Step)
		}
		job = next
		if i > 10000 {
			t.Fatal("the build does not end")
		}
	}
	if job.State != casedesk.JobDone || job.Progress != job.Total {
		t.Fatalf("job = %+v", job)
	}
	for _, table := range copiedTables {
		if got, want := rowCount(t, table, sb.Tenant.ID), rowCount(t, table, p.tenant.ID); got != want {
			t.Errorf("%s: %d rows in the sandbox, %d in production", table, got, want)
		}
	}
	scanForNeedles(t, sb.Tenant.ID, p.needles)
	t.Logf("steps: %q; %d chunks", steps, chunks)
	if chunks < 20 {
		t.Errorf("%d chunks copied; with chunks of one row there are more", chunks)
	}
}

// TestSandboxConflictReplaceDelete: one build at a time; a new sandbox
// replaces the old, which is purged; deleting cancels a build.
func TestSandboxConflictReplaceDelete(t *testing.T) {
	p := newProdData(t)
	first := p.createSandbox(t, casedesk.SandboxAnonymized)
	err := p.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.CreateSandbox(ctx(), casedesk.NewSandbox{TenantID: p.tenant.ID, Mode: casedesk.SandboxEmpty})
		return err
	})
	wantCode(t, err, casedesk.ECONFLICT)
	build(t, p.db, first.Job)

	second := p.createSandbox(t, casedesk.SandboxFull)
	if second.Replaced != first.Tenant.ID {
		t.Errorf("second sandbox replaced %d, want %d", second.Replaced, first.Tenant.ID)
	}
	if second.Tenant.ID == first.Tenant.ID || second.Tenant.Slug != first.Tenant.Slug {
		t.Errorf("second sandbox %d %q, first %d %q", second.Tenant.ID, second.Tenant.Slug, first.Tenant.ID, first.Tenant.Slug)
	}
	var old *casedesk.Tenant
	update(t, p.db, func(tx casedesk.Tx) (err error) {
		old, err = tx.FindTenant(ctx(), first.Tenant.ID)
		return err
	})
	if old.RetiredAt.IsZero() || old.Ready {
		t.Errorf("replaced sandbox = %+v", old)
	}
	// Purge the retired one: nothing of it is left in any table.
	for more := true; more; {
		update(t, p.db, func(tx casedesk.Tx) (err error) {
			more, err = tx.PurgeRetiredTenant(ctx())
			return err
		})
	}
	for _, table := range append(copiedTables, "users", "roles", "case_counters", "api_keys") {
		if n := rowCount(t, table, first.Tenant.ID); n != 0 {
			t.Errorf("%s: %d rows of the purged sandbox", table, n)
		}
	}
	err = p.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.FindTenant(ctx(), first.Tenant.ID)
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)

	// Delete while the second is building: the build is cancelled.
	update(t, p.db, func(tx casedesk.Tx) error {
		_, err := tx.DeleteSandbox(ctx(), p.tenant.ID)
		return err
	})
	var job *casedesk.SandboxJob
	update(t, p.db, func(tx casedesk.Tx) (err error) {
		job, err = tx.BuildSandbox(ctx(), second.Job.TenantID, second.Job.ID)
		return err
	})
	if job.State != casedesk.JobFailed || !strings.Contains(job.Error, "cancelled") {
		t.Errorf("job after delete = %+v", job)
	}
	err = p.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.FindSandbox(ctx(), p.tenant.ID)
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)
	err = p.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.DeleteSandbox(ctx(), p.tenant.ID)
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)

	// A sandbox has no sandbox; a retired one is gone.
	third := p.createSandbox(t, casedesk.SandboxEmpty)
	if third.Replaced != 0 {
		t.Errorf("third sandbox replaced %d; the second was deleted", third.Replaced)
	}
	for _, tt := range []struct {
		tenant int64
		want   string
	}{{third.Tenant.ID, casedesk.EINVALID}, {second.Tenant.ID, casedesk.ENOTFOUND}} {
		err = p.db.Update(ctx(), func(tx casedesk.Tx) error {
			_, err := tx.CreateSandbox(ctx(), casedesk.NewSandbox{TenantID: tt.tenant})
			return err
		})
		wantCode(t, err, tt.want)
	}
}
