package casestore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/casedesk/casedesk"
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
