package casestore_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// TestCommitSent checks the hook of casedesk.WithCommitSent: called once,
// after fn succeeded, with the transaction's writes committed; never
// called when fn fails, and then nothing is written.
func TestCommitSent(t *testing.T) {
	f := newFixture(t)
	slug := "hook-" + randHex(4)
	calls := 0
	hctx := casedesk.WithRelaxedCommit(casedesk.WithCommitSent(context.Background(), func() { calls++ }))
	err := f.db.Update(hctx, func(tx casedesk.Tx) error {
		_, err := tx.CreateTenant(ctx(), casedesk.NewTenant{Slug: slug, Name: "Hooked"})
		return err
	})
	if err != nil || calls != 1 {
		t.Fatalf("Update = %v with the hook called %d times; want nil and once", err, calls)
	}
	update(t, f.db, func(tx casedesk.Tx) error {
		_, err := tx.FindTenantBySlug(ctx(), slug)
		return err
	})

	calls = 0
	failed := errors.New("refused")
	err = f.db.Update(hctx, func(tx casedesk.Tx) error {
		if _, err := tx.CreateTenant(ctx(), casedesk.NewTenant{Slug: slug + "-x", Name: "Never"}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) || calls != 0 {
		t.Fatalf("failing Update = %v with the hook called %d times; want the error and no call", err, calls)
	}
	err = f.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.FindTenantBySlug(ctx(), slug+"-x")
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)
}

// TestCommitSentReturnsConnection checks that a transaction ended by the
// commit-sent path gives its connection back: with a pool of one, the
// next transactions would wait for ever otherwise.
func TestCommitSentReturnsConnection(t *testing.T) {
	u, err := url.Parse(casestoretest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "1")
	u.RawQuery = q.Encode()
	db, err := casestore.Open(ctx(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	// Not deferred: Close waits for a leaked connection for ever.
	for i := range 3 {
		calls := 0
		hctx, cancel := context.WithTimeout(casedesk.WithCommitSent(context.Background(), func() { calls++ }), 5*time.Second)
		err := db.Update(hctx, func(tx casedesk.Tx) error {
			_, err := tx.CreateTenant(hctx, casedesk.NewTenant{Slug: "conn-" + randHex(4), Name: "Hooked"})
			return err
		})
		cancel()
		if err != nil || calls != 1 {
			t.Fatalf("hooked Update %d = %v, hook called %d times", i, err, calls)
		}
	}
	tctx, cancel := context.WithTimeout(ctx(), 5*time.Second)
	defer cancel()
	if err := db.Update(tctx, func(tx casedesk.Tx) error {
		_, err := tx.CreateTenant(tctx, casedesk.NewTenant{Slug: "plain-" + randHex(4), Name: "Plain"})
		return err
	}); err != nil {
		t.Fatalf("Update after hooked ones: %v", err)
	}
	db.Close()
}
