package casestore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// AppendAudit appends an entry to the audit log.
func (t *tx) AppendAudit(ctx context.Context, e casedesk.AuditEntry) (*casedesk.AuditEntry, error) {
	if e.TenantID == 0 || e.Action == "" {
		return nil, casedesk.Errorf(casedesk.EINVALID, "audit entry needs a tenant and an action")
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage(`{}`)
	}
	if !json.Valid(e.Data) {
		return nil, casedesk.Errorf(casedesk.EINVALID, "audit data is not valid JSON")
	}
	e.CreatedAt = t.now
	err := t.tx.QueryRow(ctx, `
		INSERT INTO audit_log (tenant_id, user_id, action, target_kind, target_id, data, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		e.TenantID, nullID(e.UserID), clip(e.Action, maxNameBytes), clip(e.TargetKind, maxNameBytes),
		clip(e.TargetID, maxNameBytes), e.Data, t.now).Scan(&e.ID)
	if err != nil {
		return nil, wrap(err, "append audit")
	}
	return &e, nil
}

// ListAudit returns the tenant's audit entries, newest first.
func (t *tx) ListAudit(ctx context.Context, tenantID int64, f casedesk.AuditFilter) ([]*casedesk.AuditEntry, error) {
	w := &where{}
	w.add("tenant_id = ?", tenantID)
	if f.UserID != 0 {
		w.add("user_id = ?", f.UserID)
	}
	if f.Action != "" {
		w.add("action = ?", clean(f.Action))
	}
	if f.TargetKind != "" {
		w.add("target_kind = ?", clean(f.TargetKind))
	}
	if f.TargetID != "" {
		w.add("target_id = ?", clean(f.TargetID))
	}
	if !f.From.IsZero() {
		w.add("created_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		w.add("created_at < ?", f.To)
	}
	if f.BeforeID != 0 {
		w.add("id < ?", f.BeforeID)
	}
	w.args = append(w.args, casedesk.PageSize(f.Limit))
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT tenant_id, id, coalesce(user_id, 0), action,
		target_kind, target_id, data, created_at FROM audit_log WHERE %s ORDER BY id DESC LIMIT $%d`,
		w.String(), len(w.args)), w.args...)
	if err != nil {
		return nil, wrap(err, "list audit")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.AuditEntry, error) {
		var e casedesk.AuditEntry
		err := r.Scan(&e.TenantID, &e.ID, &e.UserID, &e.Action, &e.TargetKind, &e.TargetID, &e.Data, &e.CreatedAt)
		return &e, err
	})
	return out, wrap(err, "list audit")
}
