package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

var testClassifier = NewClassifier(ClassifierConfig{
	SupportAddresses:   []string{"support@acme.example"},
	LoopValue:          "casedesk-acme",
	ErrorReportSenders: []string{"reports@app.acme.example"},
	ErrorReportHeader:  "X-Casedesk-Report",
	ErrorReportValue:   "error",
})

func classifyFile(t *testing.T, name string) Classification {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "classify", name))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewParser(0).Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return testClassifier.Classify(m)
}

func TestClassify(t *testing.T) {
	tests := []struct {
		file      string
		class     Class
		mayReply  bool
		reasonHas string
	}{
		{"normal.eml", ClassNormal, true, ""},
		{"auto-submitted-no.eml", ClassNormal, true, ""},
		{"ooo-subject-only.eml", ClassNormal, true, ""}, // a subject alone is only a hint
		{"outlook-ooo.eml", ClassAutoReply, false, "out-of-office"},
		{"exchange-auto-generated.eml", ClassAutoReply, false, "auto-generated"},
		{"gmail-vacation.eml", ClassAutoReply, false, "auto-replied"},
		{"x-autoreply.eml", ClassAutoReply, false, "X-Autoreply"},
		{"x-autorespond.eml", ClassAutoReply, false, "X-Autorespond"},
		{"precedence-junk.eml", ClassBulk, false, "junk"},
		{"list-id.eml", ClassBulk, false, "List-Id"},
		{"our-x-loop.eml", ClassLoop, false, "X-Loop"},
		{"from-support.eml", ClassLoop, false, "support address"},
		{"postfix-dsn.eml", ClassBounce, false, "delivery status"},
		{"exchange-dsn.eml", ClassBounce, false, "delivery status"},
		{"exim-bounce.eml", ClassBounce, false, "delivery status"},
		{"error-report-lines.eml", ClassErrorReport, false, "error report"},
		{"error-report-json.eml", ClassErrorReport, false, "error report"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := classifyFile(t, tt.file)
			if got.Class != tt.class || got.MayAutoReply != tt.mayReply {
				t.Fatalf("class %s mayReply=%v (%s), want %s mayReply=%v", got.Class, got.MayAutoReply, got.Reason, tt.class, tt.mayReply)
			}
			if !contains(got.Reason, tt.reasonHas) {
				t.Errorf("reason %q does not mention %q", got.Reason, tt.reasonHas)
			}
		})
	}
}

func TestClassifyBounceDetails(t *testing.T) {
	tests := []struct {
		file, original, recipient, status string
	}{
		{"postfix-dsn.eml", "c12.m34.k3f9a@acme.example", "gone@customer.example", "5.1.1"},
		{"exchange-dsn.eml", "c12.m35.k3f9a@acme.example", "left@customer.example", "5.1.10"},
		{"exim-bounce.eml", "c12.m36.k3f9a@acme.example", "old@customer.example", ""},
	}
	for _, tt := range tests {
		b := classifyFile(t, tt.file).Bounce
		if b == nil {
			t.Fatalf("%s: no bounce details", tt.file)
		}
		if b.OriginalMessageID != tt.original || b.Recipient != tt.recipient || b.Status != tt.status || !b.Failed() {
			t.Errorf("%s: bounce = %+v", tt.file, b)
		}
	}
}

func TestClassifyErrorReportFields(t *testing.T) {
	lines := classifyFile(t, "error-report-lines.eml").Report
	if lines.Product != "Billing" || lines.Tenant != "globex" || lines.ErrorID != "E-4711" ||
		lines.Message != "timeout after 3012 ms" || !contains(lines.Stack, "http.go:99") ||
		lines.UserText != "The export button does nothing." {
		t.Errorf("fields from lines = %+v", lines)
	}
	js := classifyFile(t, "error-report-json.eml").Report
	if js.Product != "Portal" || js.Tenant != "initech" || js.Message != "nil pointer at row 17" || js.Stack != "main.go:17\nmain.go:3" {
		t.Errorf("fields from JSON = %+v", js)
	}
	if lines.Fingerprint == "" || lines.Fingerprint == js.Fingerprint {
		t.Errorf("fingerprints %q and %q", lines.Fingerprint, js.Fingerprint)
	}
}

func TestFingerprintGroupsRepeats(t *testing.T) {
	tests := []struct {
		name string
		a, b ErrorReport
		same bool
	}{
		{"same error id", ErrorReport{Product: "P", ErrorID: "E1", Message: "x"}, ErrorReport{Product: "p", ErrorID: "E1", Message: "y"}, true},
		{"other error id", ErrorReport{Product: "P", ErrorID: "E1"}, ErrorReport{Product: "P", ErrorID: "E2"}, false},
		{"numbers masked", ErrorReport{Product: "P", Message: "timeout after 3012 ms", Stack: "a.go:1\nb"}, ErrorReport{Product: "P", Message: "timeout after 2990 ms", Stack: "a.go:1\nc"}, true},
		{"other product", ErrorReport{Product: "P", Message: "m"}, ErrorReport{Product: "Q", Message: "m"}, false},
		{"other top frame", ErrorReport{Product: "P", Message: "m", Stack: "a.go:x"}, ErrorReport{Product: "P", Message: "m", Stack: "b.go:x"}, false},
	}
	for _, tt := range tests {
		if got := fingerprint(&tt.a) == fingerprint(&tt.b); got != tt.same {
			t.Errorf("%s: same fingerprint = %v, want %v", tt.name, got, tt.same)
		}
	}
}

func TestNormalMailAskingForNoReply(t *testing.T) {
	m := &Message{From: addr("cara@customer.example"), XAutoResponseSuppress: "All"}
	got := testClassifier.Classify(m)
	if got.Class != ClassNormal || got.MayAutoReply {
		t.Errorf("X-Auto-Response-Suppress on human mail: %+v", got)
	}
}

func contains(s, sub string) bool { return sub == "" || strings.Contains(s, sub) }

func addr(email string) casedesk.Address { return casedesk.Address{Email: email} }
