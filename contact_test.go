package casedesk_test

import (
	"testing"

	"github.com/casedesk/casedesk"
)

func TestDeliverable(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"cara@customer.example", true},
		{"Cara@Customer.Example", true},
		{"unknown-sender@invalid", false},
		{"ghost@host.invalid", false},
		{"ghost@host.INVALID", false},
		{"someone@invalid.example", true},
		{"not an address", false},
		{"", false},
		{"@customer.example", false},
	} {
		if got := casedesk.Deliverable(tt.addr); got != tt.want {
			t.Errorf("Deliverable(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestMessageIDDomain(t *testing.T) {
	if got := casedesk.MessageIDDomain("Support@Acme.Example"); got != "acme.example" {
		t.Errorf("domain %q", got)
	}
	if got := casedesk.MessageIDDomain(""); got != "casedesk.invalid" {
		t.Errorf("no support address: %q", got)
	}
	if a, b := casedesk.OutboundSeq(), casedesk.OutboundSeq(); a <= 0 || b <= 0 || a == b || a >= 1<<44 {
		t.Errorf("sequences %d, %d", a, b)
	}
}
