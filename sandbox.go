package casedesk

import (
	"context"
	"time"
)

// SandboxMode is what a new sandbox starts with.
type SandboxMode string

// Sandbox modes.
const (
	// SandboxEmpty: the production tenant's configuration (settings,
	// template overrides, custom roles) and no data.
	SandboxEmpty SandboxMode = "empty"
	// SandboxAnonymized: configuration and data, with the people in it
	// replaced by stable pseudonyms and message text removed (the
	// default).
	SandboxAnonymized SandboxMode = "anonymized"
	// SandboxFull: configuration and data as they are. An explicit
	// opt-in, audited.
	SandboxFull SandboxMode = "full"
)

// Valid reports whether m is a known mode.
func (m SandboxMode) Valid() bool {
	return m == SandboxEmpty || m == SandboxAnonymized || m == SandboxFull
}

// SandboxStatus is where a sandbox stands.
type SandboxStatus string

// Sandbox statuses.
const (
	SandboxNone     SandboxStatus = "none"     // the tenant has no sandbox
	SandboxCreating SandboxStatus = "creating" // its build job is queued or running
	SandboxReady    SandboxStatus = "ready"    // built; its keys work
	SandboxFailed   SandboxStatus = "failed"   // the build failed or was cancelled
)

// JobState is the progress of a background job.
type JobState string

// Job states.
const (
	JobQueued  JobState = "queued"
	JobRunning JobState = "running"
	JobDone    JobState = "done"
	JobFailed  JobState = "failed"
)

// SandboxJob builds the sandbox of a production tenant in the background,
// in steps that each commit with the job's progress, so that a restart
// resumes where the last step ended.
type SandboxJob struct {
	ID              int64
	TenantID        int64 // the production tenant
	SandboxTenantID int64
	Mode            SandboxMode
	State           JobState
	// Step names what the job is copying ("accounts", "messages", ...).
	Step     string
	Progress int64 // rows copied
	Total    int64 // rows to copy, known once the job has started
	// Chunks counts the chunks of the step still to copy, with
	// BuildSandboxChunk, before BuildSandbox moves on.
	Chunks int64
	Error  string
	// RequestedBy is the production user who asked for the sandbox.
	RequestedBy int64
	CreatedAt   time.Time
	StartedAt   time.Time // zero until it starts
	FinishedAt  time.Time // zero until done or failed
}

// Open reports whether the job is still to finish.
func (j *SandboxJob) Open() bool { return j.State == JobQueued || j.State == JobRunning }

// Sandbox is a production tenant's sandbox and the job that builds it.
type Sandbox struct {
	Tenant *Tenant
	Job    *SandboxJob
	// Replaced is the sandbox CreateSandbox retired to make room for this
	// one; zero when there was none.
	Replaced int64
}

// Status tells from the job where the sandbox stands.
func (s *Sandbox) Status() SandboxStatus {
	switch {
	case s == nil || s.Job == nil:
		return SandboxNone
	case s.Job.Open():
		return SandboxCreating
	case s.Job.State == JobDone:
		return SandboxReady
	}
	return SandboxFailed
}

// NewSandbox asks for a tenant's sandbox.
type NewSandbox struct {
	TenantID    int64 // the production tenant
	Mode        SandboxMode
	RequestedBy int64 // user
}

// SandboxOps create, show and remove sandboxes, and build them step by
// step. Copying is set-based and stays within the tenant pair.
type SandboxOps interface {
	// CreateSandbox replaces the tenant's sandbox with a new, empty one
	// that is not ready, and queues the job that builds it. The old
	// sandbox, if any, is retired at once (its keys stop working) and
	// purged in the background. A tenant that is not production is
	// EINVALID; one whose sandbox is being built is ECONFLICT.
	CreateSandbox(ctx context.Context, n NewSandbox) (*Sandbox, error)
	// FindSandbox returns the tenant's sandbox with its newest build job;
	// ENOTFOUND when it has none.
	FindSandbox(ctx context.Context, tenantID int64) (*Sandbox, error)
	// DeleteSandbox retires the tenant's sandbox (purged in the
	// background); a build under way is cancelled. ENOTFOUND when there
	// is none.
	DeleteSandbox(ctx context.Context, tenantID int64) (*Sandbox, error)
	// NextSandboxJob returns the oldest job still to finish, queued or
	// left running by a stopped process, of any tenant; nil when there is
	// none.
	NextSandboxJob(ctx context.Context) (*SandboxJob, error)
	// BuildSandbox moves a job on: it runs a one-shot step, or splits the
	// table of a copying step into chunks (job.Chunks), or, once they are
	// all copied, goes on to the next step; after the last the sandbox is
	// ready. It returns the job as it now stands. A job no longer open
	// (done, failed, cancelled) is returned untouched.
	BuildSandbox(ctx context.Context, tenantID, jobID int64) (*SandboxJob, error)
	// BuildSandboxChunk copies one chunk of the job's current step that no
	// other transaction is copying, and adds its rows to the job's
	// progress; several may run at once. It reports false when no chunk
	// was left to take. A chunk of a job no longer running is EUNAVAILABLE
	// and must be rolled back.
	BuildSandboxChunk(ctx context.Context, tenantID, jobID int64) (bool, error)
	// FailSandboxJob records that a job failed, with the reason; the
	// sandbox stays not ready.
	FailSandboxJob(ctx context.Context, tenantID, jobID int64, reason string) error
	// PurgeRetiredTenant deletes a bounded part of the data of one retired
	// sandbox, the tenant itself last, and reports whether any is left.
	PurgeRetiredTenant(ctx context.Context) (more bool, err error)
}
