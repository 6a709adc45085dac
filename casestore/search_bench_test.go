package casestore_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// BenchmarkIndexSearch measures the search indexer: b.N messages, queued
// as ingest queues them, are moved into the full-text index by
// IndexSearch. Their text is 500 words (about 3 KB) drawn from a
// vocabulary of 20,000, log-uniformly, so that a few words are in every
// message and most are rare, as in mail (LoadHistory's own text repeats one
// word, which would flatter to_tsvector). One op is one message.
func BenchmarkIndexSearch(b *testing.B) {
	ctx := context.Background()
	url := casestoretest.URL(b)
	db, err := casestore.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// Whatever an earlier round or test left queued is indexed first.
	if _, err := db.IndexSearch(ctx); err != nil {
		b.Fatal(err)
	}
	var tenantID, contactID int64
	err = db.Update(ctx, func(tx casedesk.Tx) error {
		t, err := tx.CreateTenant(ctx, casedesk.NewTenant{Slug: fmt.Sprintf("bench-index-%s-%d", runTag, indexRound.Add(1)),
			Name: "Index benchmark", SupportAddress: "support@bench.example"})
		if err != nil {
			return err
		}
		c, err := tx.UpsertContact(ctx, t.ID, casedesk.Address{Email: "alice@customer.example"})
		tenantID, contactID = t.ID, c.ID
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	cases := (b.N + 9) / 10
	if err := casestoretest.LoadHistory(ctx, url, tenantID, contactID, cases, 10, "index.bench.example"); err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE messages m SET text_body = (
			SELECT string_agg('w' || floor(power(20000, (abs(hashtext(m.id || '.' || i)) % 1000000) / 1e6)), ' ')
			FROM generate_series(1, 500) i)
		WHERE tenant_id = $1`, tenantID); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO search_queue (message_id, tenant_id)
		SELECT id, tenant_id FROM messages WHERE tenant_id = $1`, tenantID); err != nil {
		b.Fatal(err)
	}
	checkpoint(ctx, conn)
	b.ResetTimer()
	n, err := db.IndexSearch(ctx)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if n != cases*10 {
		b.Fatalf("indexed %d messages, want %d", n, cases*10)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

var indexRound atomic.Int64

var (
	searchIndexOnce sync.Once
	searchIndexErr  error
)

// BenchmarkSearchCases measures a case listing with a full-text query (a
// page of 50, newest first) over the 1M-message tenant, whose every message
// is indexed: a word of one message (repeated in its text), a word of 2.5% of the cases and their
// mail ("17": floor 17), and a word of every case and message ("printer").
func BenchmarkSearchCases(b *testing.B) {
	tenantID := loadBig(b)
	ctx := context.Background()
	url := casestoretest.URL(b)
	searchIndexOnce.Do(func() {
		start := time.Now()
		if searchIndexErr = casestoretest.IndexHistory(ctx, url, tenantID); searchIndexErr == nil {
			b.Logf("indexed 1M messages in %v", time.Since(start).Round(time.Second))
		}
	})
	if searchIndexErr != nil {
		b.Fatal(searchIndexErr)
	}
	db, err := casestore.Open(ctx, url, casestore.WithSearchTimeout(10*time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, bc := range []struct{ name, q string }{
		{"one_case", fmt.Sprintf("%x", md5.Sum([]byte("5000:3")))}, // LoadHistory's text of message 3 of case 5000
		{"2.5%", "17"},
		{"all", "printer"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var got int
			for b.Loop() {
				err := db.View(ctx, func(tx casedesk.Tx) error {
					page, err := tx.ListCases(ctx, tenantID, casedesk.CaseFilter{Q: bc.q, Limit: 50})
					if page != nil {
						got = len(page.Cases)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if got == 0 {
				b.Fatalf("q=%s found nothing", bc.q)
			}
		})
	}
}
