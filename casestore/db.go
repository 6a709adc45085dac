// Package casestore is the PostgreSQL implementation of casedesk.Store.
// It holds the schema, the embedded migrations and every SQL string of the
// project; nothing else imports pgx.
package casestore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/klauspost/compress/zstd"

	"github.com/casedesk/casedesk"
)

// DB is a casedesk.Store backed by a pgx connection pool.
type DB struct {
	pool *pgxpool.Pool
	// now is the clock; every transaction reads it once.
	now func() time.Time
	enc *zstd.Encoder
	dec *zstd.Decoder
	// maxRetries bounds re-runs of a transaction after a serialisation
	// failure or deadlock.
	maxRetries int
	// lockCheck is how often a held advisory lock checks its connection.
	lockCheck time.Duration
	// searchTimeout bounds a case listing with a full-text query.
	searchTimeout time.Duration
	// sandboxChunk is how many rows one step of a sandbox build copies.
	sandboxChunk int
}

var _ casedesk.Store = (*DB)(nil)

// Option configures a DB.
type Option func(*DB)

// WithClock replaces the wall clock, for tests and one-shot jobs run "as of"
// another time.
func WithClock(now func() time.Time) Option { return func(db *DB) { db.now = now } }

// WithLockCheck sets how often a held lock checks its connection (5 s by
// default); a lost connection is noticed within about this time.
func WithLockCheck(every time.Duration) Option { return func(db *DB) { db.lockCheck = every } }

// WithSearchTimeout bounds how long a case listing with a full-text query
// (CaseFilter.Q) may run (10 s by default). A query of words that nearly
// every message has can take minutes on a large tenant; past the bound it
// is refused as too broad.
func WithSearchTimeout(d time.Duration) Option { return func(db *DB) { db.searchTimeout = d } }

// Open connects to the database at url and checks that it answers. A URL
// without connect_timeout gets 5 seconds, so an unreachable server fails
// fast. A URL that does not parse is EINVALID. It does not migrate: call
// Migrate for that.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// EINVALID: trying again cannot help, unlike a connect failure.
		return nil, fmt.Errorf("parse database url: %w",
			&casedesk.Error{Code: casedesk.EINVALID, Message: redactURLError(err).Error()})
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	// Every statement here is a short, parameterised index lookup or write,
	// for which replanning on each execution (PostgreSQL's custom plans)
	// costs more than running it: a Message-ID lookup went from 550 to 150-250
	// microseconds at p50 (BENCHMARKS.md). The URL may still override it.
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	db, err := newDB(pool, opts...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

func newDB(pool *pgxpool.Pool, opts ...Option) (*DB, error) {
	// The fastest level costs about 3% in size against the default and
	// halves the time (BENCHMARKS.md); one encoder per CPU lets concurrent
	// writers compress in parallel.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	// Raw mail is at most the ingest size limit (50 MB by default) and
	// attachments are bounded by it, so decoded sizes are bounded too.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	db := &DB{pool: pool, now: time.Now, enc: enc, dec: dec, maxRetries: 5, lockCheck: lockCheckInterval,
		searchTimeout: 10 * time.Second, sandboxChunk: sandboxChunk}
	for _, o := range opts {
		o(db)
	}
	return db, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (db *DB) Close() {
	db.pool.Close()
	db.dec.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Update runs fn in a read-write transaction; see casedesk.Store.
func (db *DB) Update(ctx context.Context, fn func(casedesk.Tx) error) error {
	return unavailable(db.run(ctx, pgx.TxOptions{}, fn))
}

// View runs fn on one connection without a transaction: each statement
// reads the latest committed data, and a read costs one round trip instead
// of three (BEGIN, query, COMMIT). Reads that must agree with each other
// belong in Update. Any statement but a SELECT is refused.
func (db *DB) View(ctx context.Context, fn func(casedesk.Tx) error) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("acquire connection: %w", err))
	}
	defer conn.Release()
	return unavailable(fn(&tx{tx: readOnly{conn}, db: db, now: db.clock()}))
}

// readOnly runs SELECT statements on a pooled connection and refuses any
// other, so an operation that writes fails loudly in a View instead of
// committing outside any transaction.
type readOnly struct{ conn *pgxpool.Conn }

// errWriteInView is returned for a non-SELECT statement in a View.
var errWriteInView = errors.New("write attempted in a read-only View; use Update")

func isSelect(sql string) bool {
	sql = strings.TrimLeft(sql, " \t\r\n")
	return len(sql) >= 6 && strings.EqualFold(sql[:6], "SELECT")
}

func (r readOnly) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return pgconn.CommandTag{}, errWriteInView
}

func (r readOnly) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !isSelect(sql) {
		return nil, errWriteInView
	}
	return r.conn.Query(ctx, sql, args...)
}

func (r readOnly) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if !isSelect(sql) {
		return errRow{errWriteInView}
	}
	return r.conn.QueryRow(ctx, sql, args...)
}

// errRow delivers an error where pgx expects a row.
type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// batch sends queued write statements in one round trip. Only Update
// transactions can: a View refuses writes.
func (t *tx) batch(ctx context.Context, b *pgx.Batch) (pgx.BatchResults, error) {
	ptx, ok := t.tx.(pgx.Tx)
	if !ok {
		return nil, errWriteInView
	}
	return ptx.SendBatch(ctx, b), nil
}

// clock reads the store's clock once, at the database's precision.
func (db *DB) clock() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

func (db *DB) run(ctx context.Context, opts pgx.TxOptions, fn func(casedesk.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.runOnce(ctx, opts, fn)
		if err == nil || !retryable(err) || attempt >= db.maxRetries {
			return err
		}
		// Back off a little so the transactions that collided spread out.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
}

func (db *DB) runOnce(ctx context.Context, opts pgx.TxOptions, fn func(casedesk.Tx) error) error {
	if casedesk.RelaxedCommit(ctx) && opts.AccessMode != pgx.ReadOnly {
		// One round trip: BEGIN and the setting go as one simple query.
		opts.BeginQuery = "BEGIN; SET LOCAL synchronous_commit TO off"
	}
	// The connection is taken apart from the transaction so that one
	// ended by commitThen (whose COMMIT pgx does not see) goes back to the
	// pool without a ROLLBACK, which would cost a round trip.
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin: acquire connection: %w", err)
	}
	defer conn.Release()
	ptx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	ended := false
	defer func() {
		if !ended {
			ptx.Rollback(ctx)
		}
	}()
	t := &tx{tx: ptx, db: db, now: db.clock()}
	if err := fn(t); err != nil {
		return err
	}
	if then := casedesk.CommitSentHook(ctx); then != nil && opts.AccessMode != pgx.ReadOnly {
		// Committed or rolled back, the transaction is over; on a broken
		// connection the pool drops it at Release.
		ended = true
		return commitThen(ctx, ptx, then)
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", mapError(err))
	}
	return nil
}

// commitThen sends COMMIT, calls then as soon as it is written to the
// connection, and only then reads the answer (casedesk.WithCommitSent).
// Its errors are never retried: then has run.
func commitThen(ctx context.Context, ptx pgx.Tx, then func()) error {
	conn := ptx.Conn().PgConn()
	res := conn.Exec(ctx, "COMMIT")
	if !conn.IsClosed() {
		then()
	}
	results, err := res.ReadAll()
	if err != nil {
		return &casedesk.Error{Code: casedesk.EUNAVAILABLE, Message: "commit: " + mapError(err).Error()}
	}
	if len(results) != 1 || results[0].CommandTag.String() != "COMMIT" {
		// The transaction had failed; PostgreSQL answers COMMIT with
		// ROLLBACK.
		return casedesk.Errorf(casedesk.ECONFLICT, "commit: the transaction was rolled back")
	}
	return nil
}

// retryable reports a serialisation failure or deadlock anywhere in err.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// querier is what the operations need of a connection: a pgx transaction
// in Update, a read-only pooled connection in View.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tx implements casedesk.Tx on one pgx transaction or View connection.
type tx struct {
	tx  querier
	db  *DB
	now time.Time
}

var _ casedesk.Tx = (*tx)(nil)

// Now returns the transaction's clock reading.
func (t *tx) Now() time.Time { return t.now }

// mapError turns constraint and data errors of PostgreSQL into casedesk
// errors, in one place, so no raw driver error reaches a caller for bad
// input. Other errors pass through unchanged (they are internal).
func mapError(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "23505": // unique_violation
		return &casedesk.Error{Code: casedesk.ECONFLICT, Message: conflictMessage(pgErr.ConstraintName)}
	case "23503": // foreign_key_violation
		return casedesk.Errorf(casedesk.EINVALID, "refers to something that does not exist (%s)", pgErr.ConstraintName)
	case "23514", "23502": // check_violation, not_null_violation
		return casedesk.Errorf(casedesk.EINVALID, "value not allowed (%s)", firstNonEmpty(pgErr.ConstraintName, pgErr.ColumnName))
	case "22001", "22003", "22007", "22008", "22021", "22P02", "22P05", "54000":
		// Too long, out of range, bad date, bad encoding, bad text
		// representation, unsupported Unicode, index row too large.
		return casedesk.Errorf(casedesk.EINVALID, "value not storable: %s", pgErr.Message)
	case "42501": // our append-only triggers
		return casedesk.Errorf(casedesk.EFORBIDDEN, "%s", pgErr.Message)
	case "40001", "40P01":
		return err // kept raw so run can retry
	}
	return err
}

func conflictMessage(constraint string) string {
	switch constraint {
	case "contacts_email", "users_email":
		return "a record with this email already exists"
	case "tenants_slug_key":
		return "a tenant with this slug already exists"
	case "tenants_one_sandbox":
		return "this tenant already has a sandbox"
	case "roles_tenant_id_name_key":
		return "a role with this name already exists"
	}
	return "already exists (" + constraint + ")"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return "unknown"
}

// redactURLError drops the parser's echo of the URL, which may hold a password.
func redactURLError(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("invalid connection string")
	}
	return err
}

// notFound is the ENOTFOUND error for a missing object; any other error is
// mapped and wrapped.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return casedesk.Errorf(casedesk.ENOTFOUND, format, args...)
	}
	return fmt.Errorf(format+": %w", append(args, mapError(err))...)
}

// wrap maps a database error and adds what was being done.
func wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	mapped := mapError(err)
	var e *casedesk.Error
	if errors.As(mapped, &e) {
		return mapped
	}
	return fmt.Errorf("%s: %w", what, mapped)
}

// itemError names the item of a batch that err is about, by its index in
// the input (from 0). In a batch of one err is returned as it is, so that
// a single-item operation reports exactly what it always did.
func itemError(err error, what string, i, n int) error {
	var e *casedesk.Error
	if n == 1 || !errors.As(err, &e) {
		return err
	}
	return &casedesk.Error{Code: e.Code, Message: fmt.Sprintf("%s %d: %s", what, i, e.Message)}
}
