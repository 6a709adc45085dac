package casestore_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

func TestTryLockIsExclusiveAcrossReplicas(t *testing.T) {
	// Two DB handles stand for two replicas of casedesk serve.
	a, b := casestoretest.Open(t), casestoretest.Open(t)
	name := "poller:1:support@acme.example/INBOX:" + randHex(4)

	held, err := a.TryLock(ctx(), name)
	if err != nil || held == nil {
		t.Fatalf("first TryLock = %v, %v; want a lease", held, err)
	}
	if again, err := b.TryLock(ctx(), name); err != nil || again != nil {
		t.Fatalf("second replica's TryLock = %v, %v; want nil, nil while the first holds it", again, err)
	}
	other, err := b.TryLock(ctx(), name+"-other")
	if err != nil || other == nil {
		t.Fatalf("TryLock of another name = %v, %v; want a lease", other, err)
	}
	other.Release()

	held.Release()
	held.Release() // a second release is harmless
	select {
	case <-held.Lost():
	default:
		t.Error("Lost not closed after Release")
	}
	taken, err := b.TryLock(ctx(), name)
	if err != nil || taken == nil {
		t.Fatalf("TryLock after release = %v, %v; want a lease", taken, err)
	}
	taken.Release()

	if _, err := a.TryLock(ctx(), ""); casedesk.ErrorCode(err) != casedesk.EINVALID {
		t.Errorf("TryLock(\"\") error = %v, want EINVALID", err)
	}
}

func TestLeaseReportsLostConnection(t *testing.T) {
	db := casestoretest.Open(t, casestore.WithLockCheck(50*time.Millisecond))
	name := "lost:" + randHex(4)
	l, err := db.TryLock(ctx(), name)
	if err != nil || l == nil {
		t.Fatalf("TryLock = %v, %v", l, err)
	}
	defer l.Release()
	// Kill the session that holds the lock, as a server restart or a
	// network cut would.
	killAdvisoryLockHolders(t)
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("lease did not report its lost connection")
	}
	// The server released the lock with the session.
	again, err := db.TryLock(ctx(), name)
	if err != nil || again == nil {
		t.Fatalf("TryLock after the holder died = %v, %v; want a lease", again, err)
	}
	again.Release()
}

func TestLostConnectionIsUnavailable(t *testing.T) {
	f := newFixture(t)
	u, err := url.Parse(casestoretest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "victim-"+randHex(4))
	u.RawQuery = q.Encode()
	other, err := casestore.Open(ctx(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	find := func(tx casedesk.Tx) error {
		_, err := tx.FindTenant(ctx(), f.tenant.ID)
		return err
	}
	if err := other.View(ctx(), find); err != nil {
		t.Fatal(err)
	}
	// End the pooled session under it, as a database restart would.
	if err := rawExec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1`, q.Get("application_name")); err != nil {
		t.Fatal(err)
	}
	err = other.Update(ctx(), find)
	if casedesk.ErrorCode(err) != casedesk.EUNAVAILABLE {
		t.Fatalf("Update on a killed connection: error %v (code %q), want EUNAVAILABLE", err, casedesk.ErrorCode(err))
	}
	if err := other.Update(ctx(), find); err != nil {
		t.Errorf("Update after the pool replaced the connection: %v", err)
	}
	if err := other.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.FindTenant(ctx(), f.tenant.ID+1_000_000)
		return err
	}); casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
		t.Errorf("a missing row is %v, want ENOTFOUND, not an outage", err)
	}
}

// killAdvisoryLockHolders ends every other session of the package database
// that holds an advisory lock.
func killAdvisoryLockHolders(t *testing.T) {
	t.Helper()
	err := rawExec(t, `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
		JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()
		AND l.pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
}
