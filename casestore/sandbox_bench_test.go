package casestore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/jobs"
)

// BenchmarkSandboxClone builds an anonymised sandbox of a tenant with
// 100,000 cases and 1,000,000 messages (CASEDESK_BENCH_SANDBOX_CASES
// changes the number of cases; 10 messages each), plus 20,000 contacts in
// 1,000 accounts, 20 agents, a participant and two events per case. An op
// is one whole clone; rows/s counts the rows copied. The tenant is loaded
// once per process with set-based SQL; each round's sandbox replaces the
// last, which is purged outside the timing.
func BenchmarkSandboxClone(b *testing.B) {
	cases := 100_000
	if v := os.Getenv("CASEDESK_BENCH_SANDBOX_CASES"); v != "" {
		cases, _ = strconv.Atoi(v)
	}
	db := casestoretest.Open(b)
	ctx := context.Background()
	start := time.Now()
	tenantID := loadSandboxSource(b, cases)
	b.Logf("loaded %d cases, %d messages in %s", cases, cases*10, time.Since(start).Round(time.Second))
	var rows int64
	var took time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for more := true; more; {
			update(b, db, func(tx casedesk.Tx) (err error) {
				more, err = tx.PurgeRetiredTenant(ctx)
				return err
			})
		}
		b.StartTimer()
		t0 := time.Now()
		update(b, db, func(tx casedesk.Tx) (err error) {
			_, err = tx.CreateSandbox(ctx, casedesk.NewSandbox{TenantID: tenantID, Mode: casedesk.SandboxAnonymized})
			return err
		})
		// The builder serve runs: two transactions copy chunks at once.
		if err := jobs.NewSandboxBuilder(db, db, jobs.SandboxBuilderOptions{Logger: slog.New(slog.DiscardHandler)}).Drain(ctx); err != nil {
			b.Fatal(err)
		}
		var found *casedesk.Sandbox
		update(b, db, func(tx casedesk.Tx) (err error) {
			found, err = tx.FindSandbox(ctx, tenantID)
			return err
		})
		job := found.Job
		if job.State != casedesk.JobDone {
			b.Fatalf("job = %+v", job)
		}
		took += time.Since(t0)
		rows += job.Progress
		b.Logf("clone: %d rows in %s", job.Progress, time.Since(t0).Round(time.Millisecond))
	}
	b.ReportMetric(float64(rows)/took.Seconds(), "rows/s")
	b.ReportMetric(took.Seconds()/float64(b.N), "s/clone")
}

// loadSandboxSource creates the tenant the clone benchmark copies.
func loadSandboxSource(b *testing.B, cases int) int64 {
	b.Helper()
	ctx := context.Background()
	db := casestoretest.Open(b)
	var tenantID int64
	update(b, db, func(tx casedesk.Tx) error {
		t, err := tx.CreateTenant(ctx, casedesk.NewTenant{Slug: "bench-sandbox-" + randHex(4), Name: "Sandbox benchmark",
			SupportAddress: "support@vendor.example"})
		if err != nil {
			return err
		}
		tenantID = t.ID
		for i := range 20 {
			if _, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: t.ID, Email: fmt.Sprintf("agent%d@vendor.example", i),
				Name: fmt.Sprintf("Agent Number %d", i), RoleName: casedesk.RoleSupport}); err != nil {
				return err
			}
		}
		return nil
	})
	conn, err := pgx.Connect(ctx, casestoretest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	steps := []string{
		`INSERT INTO accounts (tenant_id, name, domains, created_at, updated_at)
		SELECT $1, 'Company ' || g, ARRAY['company' || g || '.example'], now(), now() FROM generate_series(1, 1000) g`,
		`INSERT INTO contacts (tenant_id, email, name, phone, account_id, created_at, updated_at)
		SELECT $1, 'person' || g || '@company' || (g % 1000 + 1) || '.example', 'Person Name ' || g, '+1 555 ' || g,
			a.id, now(), now()
		FROM generate_series(1, 20000) g JOIN accounts a ON a.tenant_id = $1 AND a.name = 'Company ' || (g % 1000 + 1)`,
		`INSERT INTO cases (tenant_id, number, subject, status, priority, category, requester_id, account_id, assignee_id,
			message_count, created_at, updated_at)
		SELECT $1, g, 'Printer on floor ' || g % 40 || ' prints blank pages (ref ' || g || ')',
			(ARRAY['open', 'pending', 'solved', 'closed'])[g % 4 + 1], 'normal', 'email',
			ct.ids[g % 20000 + 1], NULL, us.ids[g % 20 + 1], 10, now() - make_interval(hours => $2::int - g), now()
		FROM generate_series(1, $2::int) g,
			(SELECT array_agg(id ORDER BY id) ids FROM contacts WHERE tenant_id = $1) ct,
			(SELECT array_agg(id ORDER BY id) ids FROM users WHERE tenant_id = $1) us`,
		`UPDATE cases c SET account_id = ct.account_id FROM contacts ct
		WHERE c.tenant_id = $1 AND ct.tenant_id = $1 AND ct.id = c.requester_id`,
		`UPDATE case_counters SET last_number = $2 WHERE tenant_id = $1`,
		`INSERT INTO case_participants (tenant_id, case_id, contact_id, added_at)
		SELECT tenant_id, id, requester_id, created_at FROM cases WHERE tenant_id = $1`,
		`INSERT INTO messages (tenant_id, case_id, message_id, in_reply_to, refs, direction, author_kind, contact_id,
			user_id, from_addr, to_addrs, cc_addrs, subject, text_body, class, mailbox, raw_size, created_at)
		SELECT c.tenant_id, c.id, md5(c.number || '.' || k) || '@mail.company.example',
			CASE WHEN k > 1 THEN md5(c.number || '.' || (k - 1)) || '@mail.company.example' ELSE '' END,
			CASE WHEN k > 1 THEN ARRAY[md5(c.number || '.1') || '@mail.company.example',
				md5(c.number || '.' || (k - 1)) || '@mail.company.example'] ELSE '{}' END,
			CASE WHEN k % 2 = 1 THEN 'inbound' ELSE 'outbound' END,
			CASE WHEN k % 2 = 1 THEN 'customer' ELSE 'agent' END,
			CASE WHEN k % 2 = 1 THEN c.requester_id END,
			CASE WHEN k % 2 = 0 THEN c.assignee_id END,
			CASE WHEN k % 2 = 1 THEN jsonb_build_object('name', ct.name, 'email', ct.email)
				ELSE '{"name": "Agent", "email": "support@vendor.example"}' END,
			CASE WHEN k % 2 = 1 THEN '[{"email": "support@vendor.example"}]'::jsonb
				ELSE jsonb_build_array(jsonb_build_object('name', ct.name, 'email', ct.email)) END,
			CASE WHEN k = 3 THEN '[{"name": "A Colleague", "email": "colleague@company1.example"}]'::jsonb ELSE '[]' END,
			CASE WHEN k = 1 THEN c.subject ELSE 'Re: ' || c.subject END,
			repeat(md5(c.number || ':' || k) || ' ', 31), 'normal', CASE WHEN k % 2 = 1 THEN 'INBOX' ELSE '' END,
			4200, c.created_at + make_interval(mins => k - 1)
		FROM cases c JOIN contacts ct ON ct.tenant_id = c.tenant_id AND ct.id = c.requester_id
			CROSS JOIN generate_series(1, 10) k
		WHERE c.tenant_id = $1 ORDER BY c.id, k`,
		`INSERT INTO events (tenant_id, case_id, kind, actor, data, created_at)
		SELECT c.tenant_id, c.id, e.kind, '{"kind": "system"}', e.data::jsonb, c.created_at
		FROM cases c CROSS JOIN (VALUES ('created', '{}'), ('status_changed', '{"from": "new", "to": "open"}')) e (kind, data)
		WHERE c.tenant_id = $1 ORDER BY c.id`,
		`VACUUM (ANALYZE) accounts, contacts, cases, case_participants, messages, events`,
	}
	for _, s := range steps {
		args := []any{tenantID, cases}
		if strings.HasPrefix(s, "VACUUM") {
			args = nil
		} else if !strings.Contains(s, "$2") {
			args = args[:1]
		}
		if _, err := conn.Exec(ctx, s, args...); err != nil {
			b.Fatalf("%.60s: %v", s, err)
		}
	}
	_, _ = conn.Exec(ctx, "CHECKPOINT")
	return tenantID
}
