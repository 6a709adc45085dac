// Package casestoretest gives tests a real, throwaway PostgreSQL database:
// one per test package, created before its tests and dropped after them.
//
// The server comes from CASEDESK_TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); the user
// needs the right to create databases.
package casestoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk/casestore"
)

// DefaultURL is the server used when CASEDESK_TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// packageURL is the migrated database of the running test package, set by Main.
var packageURL string

// Main creates and migrates the package's database, runs the tests and drops
// the database. Call it from TestMain: func TestMain(m *testing.M) { casestoretest.Main(m) }.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	dbURL, drop, err := CreateDatabase(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "casestoretest:", err)
		return 1
	}
	defer drop()
	if err := migrate(dbURL); err != nil {
		fmt.Fprintln(os.Stderr, "casestoretest:", err)
		return 1
	}
	packageURL = dbURL
	return m.Run()
}

func migrate(dbURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := casestore.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Migrate(ctx)
	return err
}

// URL returns the package database's URL (migrated). It fails the test when
// Main did not run.
func URL(tb testing.TB) string {
	tb.Helper()
	if packageURL == "" {
		tb.Fatal("casestoretest: call casestoretest.Main from TestMain")
	}
	return packageURL
}

// Open opens a store on the package database and closes it on cleanup.
// Tests share the database, so each test works in tenants of its own.
func Open(tb testing.TB, opts ...casestore.Option) *casestore.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := casestore.Open(ctx, URL(tb), opts...)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}

// EmptyDatabase creates an unmigrated database for this test alone and
// drops it on cleanup.
func EmptyDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbURL, drop, err := CreateDatabase(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(drop)
	return dbURL
}

// CreateDatabase creates a database with a random name on the test server
// and returns its URL and a function that drops it (closing any connection
// still open).
func CreateDatabase(ctx context.Context) (string, func(), error) {
	admin := os.Getenv("CASEDESK_TEST_DATABASE_URL")
	if admin == "" {
		admin = DefaultURL
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("CASEDESK_TEST_DATABASE_URL must be a postgres:// URL")
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "casedesk_test_" + hex.EncodeToString(suffix)
	if err := adminExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create test database (is PostgreSQL running at %s?): %w", u.Host, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "casestoretest: drop %s: %v\n", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
