package casestoretest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// HistoryMessageID is the Message-ID that LoadHistory gives message k
// (from 1) of case number n; its SQL computes the same string.
func HistoryMessageID(n, k int, domain string) string {
	sum := md5.Sum(fmt.Appendf(nil, "%d.%d", n, k))
	return hex.EncodeToString(sum[:]) + "@" + domain
}

// LoadHistory fills a tenant that has no cases yet with cases (numbers 1
// to cases) of perCase messages each, with set-based SQL, for benchmarks
// that need a store with history: about 80 s for a million messages on a
// small machine. requesterID is the contact that opened every case;
// Message-IDs are HistoryMessageID(n, k, domain). It ends with VACUUM
// ANALYZE and a CHECKPOINT, so the benchmark that follows does not pay for
// the load.
func LoadHistory(ctx context.Context, url string, tenantID, requesterID int64, cases, perCase int, domain string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// Cases are an hour apart, ending now; message k of a case is k-1
	// minutes after it was opened. Odd messages come from the customer,
	// even ones are agent replies. Each message refers to the first and the
	// previous one of its case, as mail clients do. The text body is ~1 KB;
	// raw bytes are left out, as no lookup reads them.
	mid := func(k string) string {
		return `md5(c.number || '.' || ` + k + `) || '@` + domain + `'`
	}
	steps := []struct {
		what string
		sql  string
		args []any
	}{
		{"cases", `
			INSERT INTO cases (tenant_id, number, subject, status, priority, category, requester_id,
				message_count, created_at, updated_at)
			SELECT $1, g, 'Printer on floor ' || g % 40 || ' prints blank pages (ref ' || g || ')',
				'open', 'normal', 'email', $2, $3::int,
				ts, ts + make_interval(mins => $3::int - 1)
			FROM generate_series(1, $4::int) g,
				LATERAL (SELECT now() - make_interval(hours => $4::int - g) AS ts) t`,
			[]any{tenantID, requesterID, perCase, cases}},
		{"case counter", `UPDATE case_counters SET last_number = $2 WHERE tenant_id = $1`,
			[]any{tenantID, cases}},
		{"participants", `
			INSERT INTO case_participants (tenant_id, case_id, contact_id, added_at)
			SELECT tenant_id, id, requester_id, created_at FROM cases WHERE tenant_id = $1`,
			[]any{tenantID}},
		{"messages", `
			INSERT INTO messages (tenant_id, case_id, message_id, in_reply_to, refs, direction,
				author_kind, contact_id, from_addr, to_addrs, subject, text_body, class, mailbox,
				raw_size, created_at)
			SELECT c.tenant_id, c.id, ` + mid("k") + `,
				CASE WHEN k > 1 THEN ` + mid("k - 1") + ` ELSE '' END,
				CASE WHEN k > 1 THEN ARRAY[` + mid("1") + `, ` + mid("k - 1") + `] ELSE '{}' END,
				CASE WHEN k % 2 = 1 THEN 'inbound' ELSE 'outbound' END,
				CASE WHEN k % 2 = 1 THEN 'customer' ELSE 'agent' END,
				CASE WHEN k % 2 = 1 THEN c.requester_id END,
				CASE WHEN k % 2 = 1 THEN '{"name": "Alice Customer", "email": "alice@customer.example"}'
					ELSE '{"email": "support@bench.example"}' END::jsonb,
				CASE WHEN k % 2 = 1 THEN '[{"email": "support@bench.example"}]'
					ELSE '[{"name": "Alice Customer", "email": "alice@customer.example"}]' END::jsonb,
				'Re: ' || c.subject,
				repeat(md5(c.number || ':' || k) || ' ', 31),
				'normal', CASE WHEN k % 2 = 1 THEN 'INBOX' ELSE '' END,
				4200, c.created_at + make_interval(mins => k - 1)
			FROM cases c CROSS JOIN generate_series(1, $2::int) k
			WHERE c.tenant_id = $1
			ORDER BY c.id, k`,
			[]any{tenantID, perCase}},
		// Vacuum too, not only analyze: a table in production has long been
		// vacuumed, and the first reads of fresh rows would otherwise pay for
		// setting hint bits.
		{"vacuum", `VACUUM (ANALYZE) cases, case_participants, messages`, nil},
	}
	for _, s := range steps {
		if _, err := conn.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	// CHECKPOINT needs superuser or pg_checkpoint; without them the
	// benchmark merely starts while the server is still writing.
	_, _ = conn.Exec(ctx, "CHECKPOINT")
	return nil
}

// IndexHistory builds the search index (message_search) of every message of
// the tenant, as the search indexer would have, with one statement: 50 s for the
// million messages of the lookup benchmarks on a 2-core machine.
func IndexHistory(ctx context.Context, url string, tenantID int64) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		INSERT INTO message_search (tenant_id, message_id, vector)
		SELECT tenant_id, id, casedesk_search_vector(subject, text_body)
		FROM messages WHERE tenant_id = $1
		ON CONFLICT DO NOTHING`, tenantID); err != nil {
		return fmt.Errorf("index history: %w", err)
	}
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) message_search`); err != nil {
		return fmt.Errorf("index history: %w", err)
	}
	return nil
}
