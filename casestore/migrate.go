package casestore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one applied migration.
type Migration struct {
	Version  int64
	Name     string
	Duration string
}

// provider opens goose over the pool. Goose runs each migration in its own
// transaction and records it; the session lock keeps two replicas that
// migrate at once from applying anything twice.
func (db *DB) provider() (*goose.Provider, *sql.DB, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, nil, fmt.Errorf("migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub,
		goose.WithSessionLocker(locker),
		goose.WithTableName("casedesk_schema_migrations"),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	return p, sqlDB, nil
}

// Migrate applies every pending migration and returns what it applied; an
// empty result means the schema was already current.
func (db *DB) Migrate(ctx context.Context) ([]Migration, error) {
	p, sqlDB, err := db.provider()
	if err != nil {
		return nil, err
	}
	defer sqlDB.Close()
	results, err := p.Up(ctx)
	applied := make([]Migration, 0, len(results))
	for _, r := range results {
		if r.Error != nil {
			continue
		}
		applied = append(applied, Migration{
			Version:  r.Source.Version,
			Name:     r.Source.Path,
			Duration: r.Duration.Round(1e6).String(),
		})
	}
	if err != nil {
		return applied, fmt.Errorf("migrate: %w", err)
	}
	return applied, nil
}

// SchemaVersion returns the applied and the latest known schema version.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int64, err error) {
	p, sqlDB, err := db.provider()
	if err != nil {
		return 0, 0, err
	}
	defer sqlDB.Close()
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	return current, latest, nil
}

// CheckSchema returns an error telling the operator to run "casedesk
// migrate" when the database schema is behind this binary.
func (db *DB) CheckSchema(ctx context.Context) error {
	current, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if current < latest {
		return fmt.Errorf("database schema is at version %d, this casedesk needs %d: run 'casedesk migrate'", current, latest)
	}
	return nil
}
