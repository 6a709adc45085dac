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

func TestAnalyzeStale(t *testing.T) {
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
	// addContacts adds 300 contacts to a new tenant and has the session
	// report its row counts at once rather than within 10 s.
	addContacts := func(slug string) {
		t.Helper()
		var tenant *casedesk.Tenant
		update(t, db, func(tx casedesk.Tx) (err error) {
			tenant, err = tx.CreateTenant(ctx(), casedesk.NewTenant{Slug: slug, Name: slug, SupportAddress: "support@" + slug + ".example"})
			return err
		})
		if _, err := conn.Exec(ctx(), `INSERT INTO contacts (tenant_id, email, created_at, updated_at)
			SELECT $1, 'c' || g || '@customer.example', now(), now() FROM generate_series(1, 300) g`, tenant.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx(), `SELECT pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
	}
	reltuples := func() (n float64) {
		t.Helper()
		if err := conn.QueryRow(ctx(), `SELECT reltuples FROM pg_class WHERE oid = 'contacts'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// analyse runs analyze until it analyses contacts or 10 s have passed.
	analyse := func(analyze func(context.Context) ([]string, error)) (got []string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got, err = analyze(ctx()); err != nil {
				t.Fatal(err)
			}
			if slices.Contains(got, "contacts") {
				break
			}
		}
		return got
	}

	addContacts("acme")
	if n := reltuples(); n >= 0 {
		t.Fatalf("contacts has statistics (reltuples %v) before any ANALYZE; the test proves nothing", n)
	}
	if got := analyse(db.AnalyzeStaleAnyway); !slices.Contains(got, "contacts") {
		t.Fatalf("contacts grew by 300 rows and was not analysed: %v", got)
	}
	if n := reltuples(); n != 300 {
		t.Errorf("contacts' statistics count %v rows, want 300", n)
	}
	again, err := db.AnalyzeStaleAnyway(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(again, "contacts") {
		t.Errorf("second run analysed contacts again: %v", again)
	}

	// AnalyzeStale leaves the work to autovacuum where it runs.
	addContacts("other")
	var autovacuum bool
	if err := conn.QueryRow(ctx(), `SELECT current_setting('autovacuum')::boolean`).Scan(&autovacuum); err != nil {
		t.Fatal(err)
	}
	if autovacuum {
		if got, err := db.AnalyzeStale(ctx()); err != nil || len(got) != 0 {
			t.Errorf("autovacuum is on, and AnalyzeStale analysed %v (%v)", got, err)
		}
		return
	}
	if got := analyse(db.AnalyzeStale); !slices.Contains(got, "contacts") {
		t.Errorf("autovacuum is off, and AnalyzeStale did not analyse contacts after 300 more rows: %v", got)
	}
	if n := reltuples(); n != 600 {
		t.Errorf("contacts' statistics count %v rows, want 600", n)
	}
}
