package templates

import (
	"context"
	"fmt"

	"github.com/casedesk/casedesk"
)

// Save checks a tenant's override as Validate does and stores it,
// replacing the tenant's override for the same template and language. A
// bad override is refused with an EINVALID error and nothing is stored.
// The language is stored in canonical form ("de-AT" for "DE-at").
func Save(ctx context.Context, tx casedesk.TemplateOps, o casedesk.TemplateOverride) (*casedesk.TemplateOverride, error) {
	if lang := canonLang(o.Lang); lang != "" {
		o.Lang = lang
	}
	if err := Validate(o); err != nil {
		return nil, err
	}
	return tx.SaveTemplateOverride(ctx, o)
}

// ForTenant loads a tenant's overrides into a Set. An override stored
// without Save that does not validate makes it fail with EINVALID.
func ForTenant(ctx context.Context, tx casedesk.TemplateOps, tenantID int64) (*Set, error) {
	overrides, err := tx.TemplateOverrides(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load template overrides: %w", err)
	}
	return NewSet(overrides...)
}
