package casestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// A sandbox is built by its job in steps. A step copies one table with
// INSERT ... SELECT, split into chunks of key ranges (sandbox_chunks) that
// concurrent transactions claim, copy and mark done, each adding its rows
// to the job's progress; the job moves on (sandbox_jobs.step) once all are
// done. Copies keep their
// source IDs: keys are (tenant_id, id), so the sandbox's rows cannot clash
// with production's, and every reference between copied rows stays right
// without a mapping table. New rows in the sandbox take IDs from the same
// sequences, above every copied one.
//
// What is copied is fixed when the job starts: for each table the highest
// ID handed out by then (marks). The job waits until every transaction
// that was under way then has ended; after that no row at or below a mark
// can appear any more, and a row's references point at rows created
// before it, so at or below their marks too. References that change
// later (an assignee, a billing contact, a merge) and point beyond a mark
// are dropped or the row is left out.

// sandboxChunk is how many rows of a table one step copies.
const sandboxChunk = 25000

// WithSandboxChunk sets how many rows one step of a sandbox build copies
// (tests use small chunks to cover resuming).
func WithSandboxChunk(n int) Option { return func(db *DB) { db.sandboxChunk = n } }

// sandboxJobKind maps modes to the job kinds stored.
var sandboxJobKind = map[casedesk.SandboxMode]string{
	casedesk.SandboxEmpty:      "create_empty",
	casedesk.SandboxAnonymized: "clone_anonymised",
	casedesk.SandboxFull:       "clone_full",
}

func sandboxModeOf(kind string) casedesk.SandboxMode {
	for m, k := range sandboxJobKind {
		if k == kind {
			return m
		}
	}
	return casedesk.SandboxMode(kind)
}

const sandboxJobColumns = `j.id, j.tenant_id, coalesce(j.sandbox_tenant_id, 0), j.kind, j.state, j.step,
	j.progress, j.total, j.error, coalesce(j.requested_by, 0), j.created_at, j.started_at, j.finished_at,
	j.after_key, j.marks, j.xid_horizon`

// sandboxJob is a job with the columns only the builder reads.
type sandboxJob struct {
	casedesk.SandboxJob
	afterKey   int64 // 1 once the current step's chunks are planned
	marks      map[string]int64
	xidHorizon int64
}

func scanSandboxJob(row pgx.Row) (*sandboxJob, error) {
	var j sandboxJob
	var kind string
	var started, finished *time.Time
	var marks []byte
	err := row.Scan(&j.ID, &j.TenantID, &j.SandboxTenantID, &kind, &j.State, &j.Step, &j.Progress, &j.Total,
		&j.Error, &j.RequestedBy, &j.CreatedAt, &started, &finished, &j.afterKey, &marks, &j.xidHorizon)
	if err != nil {
		return nil, err
	}
	j.Mode = sandboxModeOf(kind)
	if started != nil {
		j.StartedAt = *started
	}
	if finished != nil {
		j.FinishedAt = *finished
	}
	if err := json.Unmarshal(marks, &j.marks); err != nil {
		return nil, fmt.Errorf("sandbox job %d marks: %w", j.ID, err)
	}
	return &j, nil
}

// lockProductionTenant locks the tenant's row, serialising the sandbox
// requests of one tenant, and checks that it may have a sandbox.
func (t *tx) lockProductionTenant(ctx context.Context, tenantID int64) (*casedesk.Tenant, error) {
	ten, err := scanTenant(t.tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants tn
		WHERE tn.id = $1 AND tn.retired_at IS NULL FOR UPDATE`, tenantID))
	if err != nil {
		return nil, notFound(err, "tenant %d not found", tenantID)
	}
	if ten.Kind != casedesk.TenantProduction {
		return nil, casedesk.Errorf(casedesk.EINVALID, "a sandbox has no sandbox of its own; use the production tenant's API key")
	}
	return ten, nil
}

// CreateSandbox retires the tenant's sandbox, if any, creates a new one
// that is not ready and queues its build.
func (t *tx) CreateSandbox(ctx context.Context, n casedesk.NewSandbox) (*casedesk.Sandbox, error) {
	if n.Mode == "" {
		n.Mode = casedesk.SandboxAnonymized
	}
	if !n.Mode.Valid() {
		return nil, casedesk.Errorf(casedesk.EINVALID, "mode %q: must be empty, anonymized or full", n.Mode)
	}
	prod, err := t.lockProductionTenant(ctx, n.TenantID)
	if err != nil {
		return nil, err
	}
	var replaced int64
	old, err := t.FindSandbox(ctx, prod.ID)
	switch {
	case casedesk.ErrorCode(err) == casedesk.ENOTFOUND:
	case err != nil:
		return nil, err
	case old.Job != nil && old.Job.Open():
		return nil, casedesk.Errorf(casedesk.ECONFLICT,
			"a sandbox is being built (job %d, %s, %d of %d rows); wait until it is ready or has failed, or delete it",
			old.Job.ID, firstNonEmpty(old.Job.Step, "queued"), old.Job.Progress, old.Job.Total)
	default:
		if err := t.retireTenant(ctx, old.Tenant.ID); err != nil {
			return nil, err
		}
		replaced = old.Tenant.ID
	}
	slug, err := t.sandboxSlug(ctx, prod.Slug)
	if err != nil {
		return nil, err
	}
	sb, err := t.CreateTenant(ctx, casedesk.NewTenant{Slug: slug, Name: prod.Name + " (sandbox)",
		Kind: casedesk.TenantSandbox, ParentID: prod.ID, SupportAddress: prod.SupportAddress, Settings: prod.Settings})
	if err != nil {
		return nil, err
	}
	if _, err := t.tx.Exec(ctx, `UPDATE tenants SET ready = false WHERE id = $1`, sb.ID); err != nil {
		return nil, wrap(err, "create sandbox")
	}
	sb.Ready = false
	job, err := scanSandboxJob(t.tx.QueryRow(ctx, `
		INSERT INTO sandbox_jobs AS j (tenant_id, sandbox_tenant_id, kind, state, requested_by, created_at)
		VALUES ($1, $2, $3, 'queued', $4, $5)
		RETURNING `+sandboxJobColumns, prod.ID, sb.ID, sandboxJobKind[n.Mode], nullID(n.RequestedBy), t.now))
	if err != nil {
		return nil, wrap(err, "queue sandbox build")
	}
	return &casedesk.Sandbox{Tenant: sb, Job: &job.SandboxJob, Replaced: replaced}, nil
}

// sandboxSlug is the production slug with "-sandbox", or, should a tenant
// have that slug already, with a random suffix too.
func (t *tx) sandboxSlug(ctx context.Context, prod string) (string, error) {
	base := prod
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	slug := base + "-sandbox"
	var taken bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = $1)`, slug).Scan(&taken); err != nil {
		return "", wrap(err, "sandbox slug")
	}
	if taken {
		var b [4]byte
		rand.Read(b[:])
		slug += "-" + hex.EncodeToString(b[:])
	}
	return slug, nil
}

// retireTenant takes a sandbox out of use at once: its keys stop working,
// its slug and its place as the production tenant's sandbox are free, and
// mail it had queued is never sent. PurgeRetiredTenant deletes the rest.
func (t *tx) retireTenant(ctx context.Context, id int64) error {
	_, err := t.tx.Exec(ctx, `
		WITH o AS (
			UPDATE outbox SET state = 'failed', last_error = 'the sandbox was deleted', claimed_at = NULL
			WHERE tenant_id = $1 AND state = 'pending')
		UPDATE tenants SET retired_at = $2, ready = false, updated_at = $2,
			slug = left('retired-' || id || '-' || slug, 63)
		WHERE id = $1 AND kind = 'sandbox'`, id, t.now)
	return wrap(err, "retire sandbox")
}

// FindSandbox returns the tenant's live sandbox and its newest job.
func (t *tx) FindSandbox(ctx context.Context, tenantID int64) (*casedesk.Sandbox, error) {
	sb, err := scanTenant(t.tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants tn
		WHERE tn.parent_id = $1 AND tn.kind = 'sandbox' AND tn.retired_at IS NULL`, tenantID))
	if err != nil {
		return nil, notFound(err, "this tenant has no sandbox")
	}
	job, err := scanSandboxJob(t.tx.QueryRow(ctx, `SELECT `+sandboxJobColumns+` FROM sandbox_jobs j
		WHERE j.tenant_id = $1 AND j.sandbox_tenant_id = $2 ORDER BY j.id DESC LIMIT 1`, tenantID, sb.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return &casedesk.Sandbox{Tenant: sb}, nil
	}
	if err != nil {
		return nil, wrap(err, "find sandbox job")
	}
	return &casedesk.Sandbox{Tenant: sb, Job: &job.SandboxJob}, nil
}

// DeleteSandbox retires the tenant's sandbox, cancelling its build.
func (t *tx) DeleteSandbox(ctx context.Context, tenantID int64) (*casedesk.Sandbox, error) {
	if _, err := t.lockProductionTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	sb, err := t.FindSandbox(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if sb.Job != nil && sb.Job.Open() {
		// Waits for a step under way: it holds the job's row.
		if err := t.FailSandboxJob(ctx, tenantID, sb.Job.ID, "cancelled: the sandbox was deleted"); err != nil {
			return nil, err
		}
	}
	return sb, t.retireTenant(ctx, sb.Tenant.ID)
}

// NextSandboxJob returns the oldest open job of any tenant.
func (t *tx) NextSandboxJob(ctx context.Context) (*casedesk.SandboxJob, error) {
	j, err := scanSandboxJob(t.tx.QueryRow(ctx, `SELECT `+sandboxJobColumns+` FROM sandbox_jobs j
		WHERE j.state IN ('queued', 'running') ORDER BY j.created_at, j.id LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(err, "next sandbox job")
	}
	return &j.SandboxJob, nil
}

// FailSandboxJob records an open job's failure.
func (t *tx) FailSandboxJob(ctx context.Context, tenantID, jobID int64, reason string) error {
	_, err := t.tx.Exec(ctx, `UPDATE sandbox_jobs SET state = 'failed', error = $3, finished_at = $4
		WHERE tenant_id = $1 AND id = $2 AND state IN ('queued', 'running')`,
		tenantID, jobID, clip(clean(reason), 2000), t.now)
	return wrap(err, "fail sandbox job")
}
