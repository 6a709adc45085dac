package casestore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

func TestOutboxDepth(t *testing.T) {
	f := newFixture(t)
	pending0, sending0, err := f.db.OutboxDepth(ctx())
	if err != nil {
		t.Fatal(err)
	}
	f.enqueue(t, 3, casedesk.OutboxAck)
	pending, sending, err := f.db.OutboxDepth(ctx())
	if err != nil {
		t.Fatal(err)
	}
	// Other tests of the package share the database but none runs in
	// parallel with this one.
	if pending-pending0 != 3 || sending != sending0 {
		t.Errorf("depth went from pending %d, sending %d to %d, %d; want 3 more pending",
			pending0, sending0, pending, sending)
	}
}

func TestMaintain(t *testing.T) {
	dbURL := casestoretest.EmptyDatabase(t)
	db, err := casestore.Open(ctx(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx()); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx())
	// exec runs sql and has the session report its row counts at once
	// rather than within 10 s.
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx(), sql, args...); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx(), `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
	}
	addContacts := func(slug string, n int) {
		t.Helper()
		var tenant *casedesk.Tenant
		update(t, db, func(tx casedesk.Tx) (err error) {
			tenant, err = tx.CreateTenant(ctx(), casedesk.NewTenant{Slug: slug, Name: slug, SupportAddress: "support@" + slug + ".example"})
			return err
		})
		exec(`INSERT INTO contacts (tenant_id, email, created_at, updated_at)
			SELECT $1, 'c' || g || '@customer.example', now(), now() FROM generate_series(1, $2) g`, tenant.ID, n)
	}
	reltuples := func() (n float64) {
		t.Helper()
		if err := conn.QueryRow(ctx(), `SELECT reltuples FROM pg_class WHERE oid = 'contacts'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// counted waits until the statistics views show at least n for the
	// contacts' counter col: what a session reports takes a moment.
	counted := func(col string, n int) {
		t.Helper()
		var got int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if err := conn.QueryRow(ctx(), `SELECT `+col+` FROM pg_stat_user_tables WHERE relid = 'contacts'::regclass`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("contacts' %s stays at %d, want %d", col, got, n)
			}
		}
	}
	maintain := func(run func(context.Context) (casestore.Maintenance, error)) casestore.Maintenance {
		t.Helper()
		m, err := run(ctx())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	// A table never analysed gets statistics as soon as it has rows.
	addContacts("acme", 300)
	if n := reltuples(); n >= 0 {
		t.Fatalf("contacts has statistics (reltuples %v) before any ANALYZE; the test proves nothing", n)
	}
	counted("n_live_tup", 300)
	if m := maintain(db.MaintainAnyway); !slices.Contains(m.Analyzed, "contacts") {
		t.Fatalf("contacts got 300 rows and was not analysed: %+v", m)
	}
	if n := reltuples(); n != 300 {
		t.Errorf("contacts' statistics count %v rows, want 300", n)
	}
	// Then again once it has more than doubled, not before.
	addContacts("more", 500)
	counted("n_mod_since_analyze", 500)
	if m := maintain(db.MaintainAnyway); slices.Contains(m.Analyzed, "contacts") {
		t.Errorf("contacts analysed again after growing from 300 to 800 rows: %+v", m)
	}
	addContacts("most", 400)
	counted("n_mod_since_analyze", 900)
	if m := maintain(db.MaintainAnyway); !slices.Contains(m.Analyzed, "contacts") {
		t.Errorf("contacts not analysed again after growing from 300 to 1,200 rows: %+v", m)
	}

	// A table is vacuumed once its dead rows pass 20% of it.
	exec(`UPDATE contacts SET name = 'x' WHERE id IN (SELECT id FROM contacts ORDER BY id LIMIT 100)`)
	counted("n_dead_tup", 100)
	if m := maintain(db.MaintainAnyway); slices.Contains(m.Vacuumed, "contacts") {
		t.Errorf("contacts vacuumed with 100 dead rows of 1,200: %+v", m)
	}
	exec(`UPDATE contacts SET name = 'y' WHERE id IN (SELECT id FROM contacts ORDER BY id LIMIT 300)`)
	counted("n_dead_tup", 400)
	if m := maintain(db.MaintainAnyway); !slices.Contains(m.Vacuumed, "contacts") {
		t.Errorf("contacts not vacuumed with 400 dead rows of 1,200: %+v", m)
	}
	dead := func() (n int) {
		t.Helper()
		if err := conn.QueryRow(ctx(), `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'contacts'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := dead(); n != 0 {
		t.Errorf("contacts has %d dead rows after its VACUUM", n)
	}
	// Or once they pass the table's own autovacuum threshold, as the
	// queues have (migration 00006).
	exec(`ALTER TABLE contacts SET (autovacuum_vacuum_threshold = 10, autovacuum_vacuum_scale_factor = 0)`)
	exec(`UPDATE contacts SET name = 'z' WHERE id IN (SELECT id FROM contacts ORDER BY id LIMIT 20)`)
	counted("n_dead_tup", 20)
	if m := maintain(db.MaintainAnyway); !slices.Contains(m.Vacuumed, "contacts") {
		t.Errorf("contacts not vacuumed with 20 dead rows over its threshold of 10: %+v", m)
	}
	for _, queue := range []string{"outbox", "search_queue"} {
		var opts []string
		if err := conn.QueryRow(ctx(), `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = $1::regclass`, queue).Scan(&opts); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(opts, "autovacuum_vacuum_scale_factor=0") {
			t.Errorf("%s has options %v, want a vacuum threshold that does not grow with it", queue, opts)
		}
	}

	// Maintain leaves the work to autovacuum where it runs.
	addContacts("other", 3000)
	var autovacuum bool
	if err := conn.QueryRow(ctx(), `SELECT current_setting('autovacuum')::boolean`).Scan(&autovacuum); err != nil {
		t.Fatal(err)
	}
	if autovacuum {
		if m, err := db.Maintain(ctx()); err != nil || len(m.Analyzed)+len(m.Vacuumed) != 0 {
			t.Errorf("autovacuum is on, and Maintain did %+v (%v)", m, err)
		}
		return
	}
	counted("n_mod_since_analyze", 3000)
	if m := maintain(db.Maintain); !slices.Contains(m.Analyzed, "contacts") {
		t.Errorf("autovacuum is off, and Maintain did not analyse contacts after 3,000 more rows: %+v", m)
	}
	if n := reltuples(); n != 4200 {
		t.Errorf("contacts' statistics count %v rows, want 4,200", n)
	}
}
