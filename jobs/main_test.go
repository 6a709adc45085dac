package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/internal/testlog"
)

func TestMain(m *testing.M) { casestoretest.Main(m) }

const day = 24 * time.Hour

// t0 is the instant the test cases start waiting.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// testClock is the store's clock, moved by the tests.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Set(at time.Time)    { c.ns.Store(at.UnixNano()) }
func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// env is a database of its own, so that a job run over every tenant sees
// only this test's tenants and its summary counts exactly what the test
// made, with a store clock the test moves.
type env struct {
	t     testing.TB
	url   string
	clock *testClock
	db    *casestore.DB
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, url: casestoretest.EmptyDatabase(t), clock: &testClock{}}
	e.clock.Set(t0)
	db, err := casestore.Open(context.Background(), e.url, casestore.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close) // before the database is dropped
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.db = db
	return e
}

func (e *env) update(fn func(tx casedesk.Tx) error) {
	e.t.Helper()
	if err := e.db.Update(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

// tenant creates a tenant with settings and a deliverable requester.
func (e *env) tenant(slug string, s casedesk.TenantSettings) *tenantFixture {
	e.t.Helper()
	f := &tenantFixture{env: e}
	e.update(func(tx casedesk.Tx) (err error) {
		f.tenant, err = tx.CreateTenant(context.Background(), casedesk.NewTenant{Slug: slug, Name: "Acme " + slug,
			SupportAddress: "support@" + slug + ".example", Settings: s})
		if err != nil {
			return err
		}
		f.requester, err = tx.UpsertContact(context.Background(), f.tenant.ID,
			casedesk.Address{Name: "Cara Customer", Email: "cara@customer.example"})
		return err
	})
	return f
}

type tenantFixture struct {
	*env
	tenant    *casedesk.Tenant
	requester *casedesk.Contact
}

// pending creates a case at the store clock at that an agent answered
// then, setting it pending: it waits from at.
func (f *tenantFixture) pending(at time.Time, subject string) *casedesk.Case {
	f.t.Helper()
	c := f.newCase(at, subject, f.requester.ID, casedesk.StatusNew)
	f.agentReply(at, c.ID, casedesk.StatusPending)
	return f.find(c.ID)
}

// newCase creates a case at the store clock at.
func (f *tenantFixture) newCase(at time.Time, subject string, requesterID int64, status casedesk.Status) *casedesk.Case {
	f.t.Helper()
	f.clock.Set(at)
	var c *casedesk.Case
	f.update(func(tx casedesk.Tx) (err error) {
		c, err = tx.CreateCase(context.Background(), casedesk.NewCase{TenantID: f.tenant.ID, Subject: subject,
			RequesterID: requesterID, Status: status})
		return err
	})
	return c
}

// agentReply stores an agent's customer-visible reply on the case at the
// store clock at and moves the case to status, as ingest does.
func (f *tenantFixture) agentReply(at time.Time, caseID int64, status casedesk.Status) {
	f.t.Helper()
	f.clock.Set(at)
	ctx := context.Background()
	f.update(func(tx casedesk.Tx) error {
		_, _, err := tx.AppendMessage(ctx, casedesk.NewMessage{TenantID: f.tenant.ID, CaseID: caseID,
			MessageID: fmt.Sprintf("agent.%d@%s", time.Now().UnixNano(), f.tenant.Slug), Direction: casedesk.Outbound,
			AuthorKind: casedesk.AuthorAgent, From: casedesk.Address{Email: f.tenant.SupportAddress},
			Text: "Could you send us the log?", CustomerVisible: true})
		if err != nil {
			return err
		}
		c, err := tx.FindCase(ctx, f.tenant.ID, caseID)
		if err != nil || c.Status == status {
			return err
		}
		_, err = tx.ChangeStatus(ctx, f.tenant.ID, caseID, status, casedesk.Actor{Kind: casedesk.AuthorAgent})
		return err
	})
}

// setStatus moves a case at the store clock at, as the admin API does.
func (f *tenantFixture) setStatus(at time.Time, caseID int64, to casedesk.Status) {
	f.t.Helper()
	f.clock.Set(at)
	f.update(func(tx casedesk.Tx) error {
		_, err := tx.ChangeStatus(context.Background(), f.tenant.ID, caseID, to, casedesk.Actor{Kind: casedesk.AuthorAgent})
		return err
	})
}

func (f *tenantFixture) find(caseID int64) *casedesk.Case {
	f.t.Helper()
	var c *casedesk.Case
	f.update(func(tx casedesk.Tx) (err error) {
		c, err = tx.FindCase(context.Background(), f.tenant.ID, caseID)
		return err
	})
	return c
}

func (f *tenantFixture) events(caseID int64, kind string) []*casedesk.Event {
	f.t.Helper()
	var out []*casedesk.Event
	f.update(func(tx casedesk.Tx) error {
		es, err := tx.ListEvents(context.Background(), f.tenant.ID, caseID)
		for _, e := range es {
			if e.Kind == kind {
				out = append(out, e)
			}
		}
		return err
	})
	return out
}

// mail is an outbox row as the tests look at it.
type mail struct {
	CaseID    int64
	Kind      casedesk.OutboxKind
	To        string
	MessageID string
	Payload   map[string]any
}

// outbox returns the tenant's outbox rows, oldest first.
func (f *tenantFixture) outbox() []mail {
	f.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT coalesce(case_id, 0), kind, to_addr, message_id, payload FROM outbox
		WHERE tenant_id = $1 ORDER BY id`, f.tenant.ID)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mail, error) {
		var m mail
		var payload []byte
		if err := r.Scan(&m.CaseID, &m.Kind, &m.To, &m.MessageID, &payload); err != nil {
			return m, err
		}
		return m, json.Unmarshal(payload, &m.Payload)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// run runs the job as of at, with the store's clock at the same instant,
// as in production.
func (e *env) run(job Job, at time.Time) Summary {
	e.t.Helper()
	e.clock.Set(at)
	s, err := job.Run(context.Background(), at)
	if err != nil {
		e.t.Fatalf("%s at %v: %v", job.Name, at, err)
	}
	return s
}

func (e *env) autoResolve(batchSize int) Job {
	return AutoResolve(e.db, AutoResolveOptions{Logger: testlog.New(), BatchSize: batchSize})
}

// summary builds an auto-resolve summary.
func summary(reminders, solved, closed int) Summary {
	return Summary{KeyReminders: reminders, KeySolved: solved, KeyClosed: closed}
}
