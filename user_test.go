package casedesk_test

import (
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func TestBuiltInRoles(t *testing.T) {
	roles := map[string]casedesk.Role{}
	for _, r := range casedesk.BuiltInRoles() {
		roles[r.Name] = r
		if err := casedesk.ValidateRole(r.Name, r.Permissions); err != nil {
			t.Errorf("built-in role %s invalid: %v", r.Name, err)
		}
	}
	tests := []struct {
		role string
		perm casedesk.Permission
		want bool
	}{
		{casedesk.RoleAdmin, casedesk.PermSettingsWrite, true},
		{casedesk.RoleAdmin, casedesk.PermInvoicesSend, true},
		{casedesk.RoleTechnical, casedesk.PermSandboxManage, true},
		{casedesk.RoleTechnical, casedesk.PermSettingsRead, true},
		{casedesk.RoleTechnical, casedesk.PermCasesReply, false},
		{casedesk.RoleSupport, casedesk.PermCasesReply, true},
		{casedesk.RoleSupport, casedesk.PermContactsRead, true},
		{casedesk.RoleSupport, casedesk.PermInvoicesRead, false},
		{casedesk.RoleFinance, casedesk.PermInvoicesSend, true},
		{casedesk.RoleFinance, casedesk.PermAccountsRead, true},
		{casedesk.RoleFinance, casedesk.PermCasesRead, false},
		{casedesk.RoleGeneral, casedesk.PermCasesCreate, true},
		{casedesk.RoleGeneral, casedesk.PermCasesReadOwn, true},
		{casedesk.RoleGeneral, casedesk.PermCasesRead, false},
		{casedesk.RoleSupportAccess, casedesk.PermCasesRead, true},
		{casedesk.RoleSupportAccess, casedesk.PermCasesWrite, false},
	}
	for _, tt := range tests {
		r, ok := roles[tt.role]
		if !ok {
			t.Fatalf("no built-in role %s", tt.role)
		}
		if got := r.Has(tt.perm); got != tt.want {
			t.Errorf("%s has %s = %v, want %v", tt.role, tt.perm, got, tt.want)
		}
	}
	if len(roles[casedesk.RoleAdmin].Permissions) != len(casedesk.AllPermissions) {
		t.Errorf("admin lacks permissions")
	}
}

func TestValidateRole(t *testing.T) {
	tests := []struct {
		name  string
		role  string
		perms []casedesk.Permission
		ok    bool
	}{
		{"custom", "triage", []casedesk.Permission{casedesk.PermCasesRead, casedesk.PermCasesWrite}, true},
		{"unknown permission", "x", []casedesk.Permission{"cases:delete_all"}, false},
		{"empty name", " ", nil, false},
		{"support-access read only", casedesk.RoleSupportAccess, []casedesk.Permission{casedesk.PermCasesRead, casedesk.PermSettingsRead}, true},
		{"support-access with write", casedesk.RoleSupportAccess, []casedesk.Permission{casedesk.PermCasesRead, casedesk.PermCasesReply}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := casedesk.ValidateRole(tt.role, tt.perms)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && casedesk.ErrorCode(err) != casedesk.EINVALID {
				t.Errorf("code = %s", casedesk.ErrorCode(err))
			}
		})
	}
}

func TestPermissionIsWrite(t *testing.T) {
	for _, p := range casedesk.AllPermissions {
		want := !(p == casedesk.PermCasesRead || p == casedesk.PermCasesReadOwn || p == casedesk.PermContactsRead ||
			p == casedesk.PermAccountsRead || p == casedesk.PermUsersRead || p == casedesk.PermInvoicesRead ||
			p == casedesk.PermSettingsRead || p == casedesk.PermAuditRead || p == casedesk.PermQuarantineRead)
		if p.IsWrite() != want {
			t.Errorf("%s.IsWrite() = %v", p, !want)
		}
	}
}

func TestNormalizeAgentAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ann@Example.COM", "ann@example.com"},
		{" ann+support@example.com ", "ann@example.com"},
		{"+x@example.com", "+x@example.com"},
		{"no-at-sign", "no-at-sign"},
	}
	for _, tt := range tests {
		if got := casedesk.NormalizeAgentAddress(tt.in); got != tt.want {
			t.Errorf("NormalizeAgentAddress(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAPIKeyUsable(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		key  casedesk.APIKey
		want bool
	}{
		{"fresh", casedesk.APIKey{}, true},
		{"expires later", casedesk.APIKey{ExpiresAt: now.Add(time.Hour)}, true},
		{"expired", casedesk.APIKey{ExpiresAt: now}, false},
		{"revoked", casedesk.APIKey{RevokedAt: now.Add(-time.Hour)}, false},
	}
	for _, tt := range tests {
		if got := tt.key.Usable(now); got != tt.want {
			t.Errorf("%s: Usable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
