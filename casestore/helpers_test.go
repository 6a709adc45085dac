package casestore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

// fixture is a tenant with a requester, in the package's database.
type fixture struct {
	db        *casestore.DB
	tenant    *casedesk.Tenant
	requester *casedesk.Contact
}

func newFixture(t *testing.T, opts ...casestore.Option) *fixture {
	t.Helper()
	db := casestoretest.Open(t, opts...)
	f := &fixture{db: db}
	update(t, db, func(tx casedesk.Tx) (err error) {
		f.tenant, err = tx.CreateTenant(ctx(), casedesk.NewTenant{
			Slug: "t-" + randHex(6), Name: "Acme Support", SupportAddress: "support@acme.example"})
		if err != nil {
			return err
		}
		f.requester, err = tx.UpsertContact(ctx(), f.tenant.ID, casedesk.Address{Name: "Cara Customer", Email: "cara@customer.example"})
		return err
	})
	return f
}

func ctx() context.Context { return context.Background() }

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// update runs fn in a transaction and fails the test on error.
func update(t testing.TB, db casedesk.Store, fn func(tx casedesk.Tx) error) {
	t.Helper()
	if err := db.Update(ctx(), fn); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) newCase(t testing.TB, subject string) *casedesk.Case {
	t.Helper()
	var c *casedesk.Case
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		c, err = tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID, Subject: subject, RequesterID: f.requester.ID})
		return err
	})
	return c
}

// inbound builds an inbound message on a case with a raw body.
func (f *fixture) inbound(caseID int64, msgID string) casedesk.NewMessage {
	raw := fmt.Sprintf("Message-ID: <%s>\r\nFrom: Cara <cara@customer.example>\r\nTo: support@acme.example\r\nSubject: Printer on fire\r\n\r\nIt is still burning.\r\n", msgID)
	return casedesk.NewMessage{
		TenantID: f.tenant.ID, CaseID: caseID, MessageID: "<" + msgID + ">",
		Direction: casedesk.Inbound, AuthorKind: casedesk.AuthorCustomer, ContactID: f.requester.ID,
		From:    casedesk.Address{Name: "Cara", Email: "cara@customer.example"},
		To:      []casedesk.Address{{Email: "support@acme.example"}},
		Subject: "Printer on fire", Text: "It is still burning.", Raw: []byte(raw),
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := casedesk.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// casestoreClock makes the store read *now as its clock.
func casestoreClock(now *time.Time) casestore.Option {
	return casestore.WithClock(func() time.Time { return *now })
}

// rawExec runs SQL on the package database outside the store, for checks
// of what the schema itself enforces.
func rawExec(t testing.TB, sql string, args ...any) error {
	t.Helper()
	conn, err := pgx.Connect(ctx(), casestoretest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx())
	_, err = conn.Exec(ctx(), sql, args...)
	return err
}

// queryRow reads one row on the package database outside the store.
func queryRow(t testing.TB, sql string, args []any, dest ...any) error {
	t.Helper()
	conn, err := pgx.Connect(ctx(), casestoretest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx())
	return conn.QueryRow(ctx(), sql, args...).Scan(dest...)
}
