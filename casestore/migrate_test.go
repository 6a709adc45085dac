package casestore_test

import (
	"strings"
	"testing"

	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

func TestMigrateEmptyDatabaseThenNoop(t *testing.T) {
	db, err := casestore.Open(ctx(), casestoretest.EmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	err = db.CheckSchema(ctx())
	if err == nil || !strings.Contains(err.Error(), "casedesk migrate") {
		t.Fatalf("CheckSchema on an empty database = %v, want advice to run casedesk migrate", err)
	}
	applied, err := db.Migrate(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 || applied[0].Version != 1 || !strings.HasSuffix(applied[0].Name, ".sql") {
		t.Fatalf("first run applied %+v, want the migrations from version 1", applied)
	}
	again, err := db.Migrate(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("second run applied %+v, want nothing", again)
	}
	current, latest, err := db.SchemaVersion(ctx())
	if err != nil || current != latest || current != applied[len(applied)-1].Version {
		t.Fatalf("SchemaVersion = %d, %d, %v", current, latest, err)
	}
	if err := db.CheckSchema(ctx()); err != nil {
		t.Fatalf("CheckSchema after migrate: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	_, err := casestore.Open(ctx(), "postgres://postgres:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error leaks the password or spans lines: %q", err)
	}
	_, err = casestore.Open(ctx(), "postgres://postgres:hunter2@127.0.0.1:5432/x?sslmode=bogus")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL error = %v", err)
	}
}
