package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/casedesk/casedesk"
)

// sandboxOut is a tenant's sandbox as the API shows it.
type sandboxOut struct {
	Status   casedesk.SandboxStatus `json:"status"`
	Mode     casedesk.SandboxMode   `json:"mode,omitempty"`
	Tenant   *sandboxTenantOut      `json:"tenant,omitempty"`
	Progress *sandboxProgress       `json:"progress,omitempty"`
	// Error says why the build failed.
	Error      string     `json:"error,omitempty"`
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// APIKey and AdminEmail answer the request that created the sandbox,
	// once: the key of the sandbox's admin user.
	APIKey     string `json:"api_key,omitempty"`
	AdminEmail string `json:"admin_email,omitempty"`
}

type sandboxTenantOut struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

type sandboxProgress struct {
	Step    string `json:"step"`
	Done    int64  `json:"done"`  // rows copied
	Total   int64  `json:"total"` // rows to copy, once counted
	Percent int    `json:"percent"`
}

func sandboxOf(sb *casedesk.Sandbox) sandboxOut {
	out := sandboxOut{Status: sb.Status()}
	if sb == nil {
		return out
	}
	out.Tenant = &sandboxTenantOut{ID: sb.Tenant.ID, Slug: sb.Tenant.Slug, Name: sb.Tenant.Name}
	j := sb.Job
	if j == nil {
		return out
	}
	out.Mode, out.Error, out.CreatedAt = j.Mode, j.Error, &j.CreatedAt
	out.StartedAt, out.FinishedAt = timePtr(j.StartedAt), timePtr(j.FinishedAt)
	step := j.Step
	if step == "" {
		step = "queued"
	}
	p := &sandboxProgress{Step: step, Done: j.Progress, Total: j.Total}
	switch {
	case j.State == casedesk.JobDone:
		p.Percent = 100
	case j.Total > 0:
		p.Percent = int(min(99, j.Progress*100/j.Total))
	}
	out.Progress = p
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// getSandbox: GET /v1/sandbox
func (s *Server) getSandbox(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var sb *casedesk.Sandbox
	err := s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		sb, err = tx.FindSandbox(r.Context(), p.Tenant.ID)
		return err
	})
	if err != nil && casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
		return err
	}
	writeJSON(w, http.StatusOK, sandboxOf(sb))
	return nil
}

// createSandbox: POST /v1/sandbox. It answers at once (202) with the new
// sandbox's admin key; the build runs in the background.
func (s *Server) createSandbox(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req struct {
		Mode            casedesk.SandboxMode `json:"mode"`
		ConfirmFullData bool                 `json:"confirm_full_data"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	if req.Mode == "" {
		req.Mode = casedesk.SandboxAnonymized
	}
	if !req.Mode.Valid() {
		return casedesk.Errorf(casedesk.EINVALID, "field \"mode\" must be \"empty\", \"anonymized\" or \"full\", not %q", req.Mode)
	}
	if req.Mode == casedesk.SandboxFull && !req.ConfirmFullData {
		return casedesk.Errorf(casedesk.EINVALID, "mode \"full\" copies your customers' personal data into the sandbox as it is; "+
			"send \"confirm_full_data\": true to confirm, or use mode \"anonymized\"")
	}
	var sb *casedesk.Sandbox
	var secret, adminEmail string
	var replaced int64
	err := s.write(r, p, "sandbox.create", "tenant", func() string { return itoa(sb.Tenant.ID) },
		map[string]any{"mode": req.Mode, "confirm_full_data": req.ConfirmFullData, "replaced_tenant_id": &replaced},
		func(tx casedesk.Tx) (err error) {
			ctx := r.Context()
			sb, err = tx.CreateSandbox(ctx, casedesk.NewSandbox{TenantID: p.Tenant.ID, Mode: req.Mode, RequestedBy: p.User.ID})
			if err != nil {
				return err
			}
			replaced = sb.Replaced
			// The sandbox's own admin, with an address that can be no
			// one's: production's users are not copied with keys.
			adminEmail = fmt.Sprintf("admin@sandbox-%d.invalid", sb.Tenant.ID)
			u, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: sb.Tenant.ID, Email: adminEmail,
				Name: "Sandbox admin", RoleName: casedesk.RoleAdmin})
			if err != nil {
				return err
			}
			var hash []byte
			secret, hash = casedesk.NewAPIKeySecret(sb.Tenant.ID)
			_, err = tx.CreateAPIKey(ctx, casedesk.NewAPIKey{TenantID: sb.Tenant.ID, UserID: u.ID,
				Name: fmt.Sprintf("sandbox admin, created by user %d of tenant %d", p.User.ID, p.Tenant.ID), Hash: hash})
			return err
		})
	if err != nil {
		return err
	}
	if s.opts.SandboxQueued != nil {
		s.opts.SandboxQueued()
	}
	out := sandboxOf(sb)
	out.APIKey, out.AdminEmail = secret, adminEmail
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

// deleteSandbox: DELETE /v1/sandbox. The sandbox is gone at once (its
// keys stop working); its data is purged in the background.
func (s *Server) deleteSandbox(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var sb *casedesk.Sandbox
	err := s.write(r, p, "sandbox.delete", "tenant", func() string { return itoa(sb.Tenant.ID) }, nil,
		func(tx casedesk.Tx) (err error) {
			sb, err = tx.DeleteSandbox(r.Context(), p.Tenant.ID)
			return err
		})
	if err != nil {
		return err
	}
	if s.opts.SandboxQueued != nil {
		s.opts.SandboxQueued()
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
