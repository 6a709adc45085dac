package casestore

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

const templateOverrideColumns = `tenant_id, name, lang, subject, text_body, html_body, updated_at`

// SaveTemplateOverride inserts or replaces the tenant's override for its
// name and language. Template syntax is the caller's to check
// (templates.Save); text PostgreSQL cannot hold is refused, not altered,
// since a changed template is a different template.
func (t *tx) SaveTemplateOverride(ctx context.Context, o casedesk.TemplateOverride) (*casedesk.TemplateOverride, error) {
	o.Name, o.Lang = strings.TrimSpace(o.Name), strings.TrimSpace(o.Lang)
	if o.TenantID == 0 || o.Name == "" || o.Lang == "" {
		return nil, casedesk.Errorf(casedesk.EINVALID, "template override needs a tenant, a name and a language")
	}
	row := t.tx.QueryRow(ctx, `
		INSERT INTO template_overrides AS o (`+templateOverrideColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, name, lang) DO UPDATE SET
			subject = excluded.subject, text_body = excluded.text_body,
			html_body = excluded.html_body, updated_at = excluded.updated_at
		RETURNING `+templateOverrideColumns,
		o.TenantID, clip(o.Name, maxNameBytes), clip(o.Lang, maxNameBytes), o.Subject, o.Text, o.HTML, t.now)
	saved, err := scanTemplateOverride(row)
	if err != nil {
		return nil, wrap(err, "save template override")
	}
	return &saved, nil
}

// TemplateOverrides returns the tenant's overrides ordered by name, then
// language.
func (t *tx) TemplateOverrides(ctx context.Context, tenantID int64) ([]casedesk.TemplateOverride, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+templateOverrideColumns+` FROM template_overrides
		WHERE tenant_id = $1 ORDER BY name, lang`, tenantID)
	if err != nil {
		return nil, wrap(err, "list template overrides")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (casedesk.TemplateOverride, error) {
		return scanTemplateOverride(r)
	})
	return out, wrap(err, "list template overrides")
}

// DeleteTemplateOverride removes the tenant's override for name and lang.
func (t *tx) DeleteTemplateOverride(ctx context.Context, tenantID int64, name, lang string) error {
	tag, err := t.tx.Exec(ctx, `DELETE FROM template_overrides
		WHERE tenant_id = $1 AND name = $2 AND lang = $3`, tenantID, clean(name), clean(lang))
	if err != nil {
		return wrap(err, "delete template override")
	}
	if tag.RowsAffected() == 0 {
		return casedesk.Errorf(casedesk.ENOTFOUND, "no %q template override in %q", clip(name, 100), clip(lang, 100))
	}
	return nil
}

func scanTemplateOverride(r pgx.Row) (casedesk.TemplateOverride, error) {
	var o casedesk.TemplateOverride
	err := r.Scan(&o.TenantID, &o.Name, &o.Lang, &o.Subject, &o.Text, &o.HTML, &o.UpdatedAt)
	o.UpdatedAt = o.UpdatedAt.UTC()
	return o, err
}
