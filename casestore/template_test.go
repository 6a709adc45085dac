package casestore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func (f *fixture) saveOverride(t *testing.T, o casedesk.TemplateOverride) *casedesk.TemplateOverride {
	t.Helper()
	var saved *casedesk.TemplateOverride
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		saved, err = tx.SaveTemplateOverride(ctx(), o)
		return err
	})
	return saved
}

func (f *fixture) overrides(t *testing.T, tenantID int64) []casedesk.TemplateOverride {
	t.Helper()
	var out []casedesk.TemplateOverride
	err := f.db.View(ctx(), func(tx casedesk.Tx) (err error) {
		out, err = tx.TemplateOverrides(ctx(), tenantID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTemplateOverrideSaveReplacesAndLists(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	f := newFixture(t, casestoreClock(&now))
	tid := f.tenant.ID
	first := f.saveOverride(t, casedesk.TemplateOverride{TenantID: tid, Name: "ack", Lang: "de",
		Subject: "Eingang {{.Subject}}", Text: "Hallo", HTML: "<p>Hallo</p>"})
	want := casedesk.TemplateOverride{TenantID: tid, Name: "ack", Lang: "de",
		Subject: "Eingang {{.Subject}}", Text: "Hallo", HTML: "<p>Hallo</p>", UpdatedAt: now}
	if *first != want {
		t.Fatalf("saved %+v, want %+v", *first, want)
	}

	// The same name and language again replaces the row, with a new time.
	now = now.Add(time.Hour)
	second := f.saveOverride(t, casedesk.TemplateOverride{TenantID: tid, Name: "ack", Lang: "de", Text: "Neu", HTML: "<p>Neu</p>"})
	if second.Subject != "" || second.Text != "Neu" || !second.UpdatedAt.Equal(now) {
		t.Fatalf("after replacing: %+v", *second)
	}
	f.saveOverride(t, casedesk.TemplateOverride{TenantID: tid, Name: "relay", Lang: "en", Text: "r", HTML: "r"})
	f.saveOverride(t, casedesk.TemplateOverride{TenantID: tid, Name: "ack", Lang: "en", Text: "a", HTML: "a"})

	got := f.overrides(t, tid)
	var keys []string
	for _, o := range got {
		keys = append(keys, o.Name+"/"+o.Lang)
	}
	if strings.Join(keys, " ") != "ack/de ack/en relay/en" {
		t.Fatalf("overrides %v, want ack/de ack/en relay/en in that order", keys)
	}
	if got[0] != *second {
		t.Fatalf("listed %+v, want %+v", got[0], *second)
	}
}

func TestTemplateOverrideDelete(t *testing.T) {
	f := newFixture(t)
	tid := f.tenant.ID
	f.saveOverride(t, casedesk.TemplateOverride{TenantID: tid, Name: "reminder", Lang: "en", Text: "t", HTML: "h"})
	del := func(name, lang string) error {
		return f.db.Update(ctx(), func(tx casedesk.Tx) error { return tx.DeleteTemplateOverride(ctx(), tid, name, lang) })
	}
	wantCode(t, del("reminder", "de"), casedesk.ENOTFOUND)
	if err := del("reminder", "en"); err != nil {
		t.Fatal(err)
	}
	if got := f.overrides(t, tid); len(got) != 0 {
		t.Fatalf("%d overrides left after delete", len(got))
	}
	wantCode(t, del("reminder", "en"), casedesk.ENOTFOUND)
}

func TestTemplateOverrideRefusesIncompleteInput(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		o    casedesk.TemplateOverride
	}{
		{"no tenant", casedesk.TemplateOverride{Name: "ack", Lang: "en", Text: "t", HTML: "h"}},
		{"no name", casedesk.TemplateOverride{TenantID: f.tenant.ID, Name: " ", Lang: "en", Text: "t", HTML: "h"}},
		{"no lang", casedesk.TemplateOverride{TenantID: f.tenant.ID, Name: "ack", Text: "t", HTML: "h"}},
		{"unknown tenant", casedesk.TemplateOverride{TenantID: 1 << 60, Name: "ack", Lang: "en", Text: "t", HTML: "h"}},
		{"NUL byte", casedesk.TemplateOverride{TenantID: f.tenant.ID, Name: "ack", Lang: "en", Text: "a\x00b", HTML: "h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
				_, err := tx.SaveTemplateOverride(ctx(), tt.o)
				return err
			})
			wantCode(t, err, casedesk.EINVALID)
		})
	}
	if got := f.overrides(t, f.tenant.ID); len(got) != 0 {
		t.Fatalf("%d overrides stored from refused input", len(got))
	}
}

// TestTemplateOverrideTenantIsolation checks that one tenant neither sees
// nor deletes nor replaces another's override with the same name and
// language. The reads are also checked to find the owner's row, so a read
// that finds nothing at all cannot pass.
func TestTemplateOverrideTenantIsolation(t *testing.T) {
	fa, fb := newFixture(t), newFixture(t)
	b := fb.saveOverride(t, casedesk.TemplateOverride{TenantID: fb.tenant.ID, Name: "invoice", Lang: "de", Text: "B's", HTML: "B's"})
	if got := fb.overrides(t, fb.tenant.ID); len(got) != 1 || got[0] != *b {
		t.Fatalf("tenant B's own overrides: %+v; the check is broken", got)
	}
	if got := fa.overrides(t, fa.tenant.ID); len(got) != 0 {
		t.Fatalf("tenant A sees %+v", got)
	}
	err := fa.db.Update(ctx(), func(tx casedesk.Tx) error {
		return tx.DeleteTemplateOverride(ctx(), fa.tenant.ID, "invoice", "de")
	})
	wantCode(t, err, casedesk.ENOTFOUND)

	// A's own override with the same key is A's alone.
	fa.saveOverride(t, casedesk.TemplateOverride{TenantID: fa.tenant.ID, Name: "invoice", Lang: "de", Text: "A's", HTML: "A's"})
	if got := fb.overrides(t, fb.tenant.ID); len(got) != 1 || got[0] != *b {
		t.Fatalf("tenant B's overrides after A saved its own: %+v, want only %+v", got, *b)
	}
	if got := fa.overrides(t, fa.tenant.ID); len(got) != 1 || got[0].Text != "A's" {
		t.Fatalf("tenant A's overrides: %+v", got)
	}
}
