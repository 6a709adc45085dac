package threading

import (
	"strings"
	"testing"
)

var (
	acme  = NewTokens(1, []byte("acme secret, 32 bytes long......"))
	other = NewTokens(2, []byte("other tenant's secret..........."))
	// sameSecret shares acme's secret but not its tenant ID.
	sameSecret = NewTokens(2, []byte("acme secret, 32 bytes long......"))
)

func TestMessageIDTokens(t *testing.T) {
	id := acme.MessageID(123, 456, "support.acme.example")
	tok := acme.Token(123)
	if want := "c123.m456." + tok + "@support.acme.example"; id != want {
		t.Fatalf("MessageID = %q, want %q", id, want)
	}
	tests := []struct {
		name string
		id   string
		want int64 // 0: no match
	}{
		{"ours", id, 123},
		{"in angle brackets", "<" + id + ">", 123},
		{"upper-cased by a client", strings.ToUpper(id), 123},
		{"another domain is still ours", "c123.m1." + tok + "@elsewhere.example", 123},
		{"forged token", "c123.m456.aaaaaaaa@support.acme.example", 0},
		{"token of another case", "c124.m456." + tok + "@support.acme.example", 0},
		{"truncated token", "c123.m456." + tok[:7] + "@support.acme.example", 0},
		{"token with extra characters", "c123.m456." + tok + "x@support.acme.example", 0},
		{"other tenant's token for the same number", other.MessageID(123, 456, "support.acme.example"), 0},
		{"same secret, other tenant", sameSecret.MessageID(123, 456, "support.acme.example"), 0},
		{"no domain", "c123.m456." + tok, 0},
		{"no message number", "c123." + tok + "@x", 0},
		{"case zero", "c0.m1." + acme.Token(0) + "@x", 0},
		{"negative case", "c-1.m1." + tok + "@x", 0},
		{"overflowing case number", "c99999999999999999999.m1." + tok + "@x", 0},
		{"customer's own id", "CAF=abc123@mail.gmail.com", 0},
		{"empty", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := acme.CaseFromMessageID(tt.id)
			if ok != (tt.want != 0) || got != tt.want {
				t.Errorf("CaseFromMessageID(%q) = %d, %v; want %d", tt.id, got, ok, tt.want)
			}
		})
	}
}

func TestReplyAddressTokens(t *testing.T) {
	addr := acme.ReplyAddress("support@acme.example", 77)
	tok := acme.Token(77)
	if want := "support+c77-" + tok + "@acme.example"; addr != want {
		t.Fatalf("ReplyAddress = %q, want %q", addr, want)
	}
	if got := acme.ReplyAddress("support+eu@acme.example", 77); got != addr {
		t.Errorf("ReplyAddress of a plus-address = %q, want the plus-part replaced: %q", got, addr)
	}
	tests := []struct {
		name string
		addr string
		want int64
	}{
		{"ours", addr, 77},
		{"upper case", strings.ToUpper(addr), 77},
		{"forged", "support+c77-abcdefgh@acme.example", 0},
		{"other case", "support+c78-" + tok + "@acme.example", 0},
		{"truncated", "support+c77-" + tok[:5] + "@acme.example", 0},
		{"other tenant", other.ReplyAddress("support@acme.example", 77), 0},
		{"plain support address", "support@acme.example", 0},
		{"unrelated plus-address", "cara+newsletter@customer.example", 0},
		{"no at sign", "support+c77-" + tok, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := acme.CaseFromAddress(tt.addr)
			if ok != (tt.want != 0) || got != tt.want {
				t.Errorf("CaseFromAddress(%q) = %d, %v; want %d", tt.addr, got, ok, tt.want)
			}
		})
	}
}

func TestTokensDifferPerTenantAndCase(t *testing.T) {
	seen := map[string]bool{}
	for n := int64(1); n <= 1000; n++ {
		tok := acme.Token(n)
		if len(tok) != tokenLen || strings.Trim(tok, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("Token(%d) = %q, want %d lower-case base32 characters", n, tok, tokenLen)
		}
		if seen[tok] {
			t.Fatalf("Token(%d) = %q repeats", n, tok)
		}
		seen[tok] = true
		if other.Token(n) == tok || sameSecret.Token(n) == tok {
			t.Fatalf("case %d has the same token in two tenants", n)
		}
	}
}

func TestRefOrderAndCasesInReferences(t *testing.T) {
	ack := acme.MessageID(5, 1, "s.example")
	reply := acme.MessageID(9, 3, "s.example")
	refs := []string{"<orig@customer.example>", "<" + ack + ">", "<" + reply + ">"}
	got := RefOrder("<"+reply+">", refs)
	want := []string{reply, ack, "orig@customer.example"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("RefOrder = %v, want %v", got, want)
	}
	cases := acme.CasesInReferences("<"+reply+">", append(refs, "<c5.m2.forgedxx@s.example>"))
	if len(cases) != 2 || cases[0] != 9 || cases[1] != 5 {
		t.Errorf("CasesInReferences = %v, want [9 5]", cases)
	}
}

func FuzzCaseFromMessageID(f *testing.F) {
	f.Add(acme.MessageID(1, 1, "x.example"))
	f.Add("c1.m1.aaaaaaaa@x")
	f.Add(acme.ReplyAddress("s@x.example", 9))
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := acme.CaseFromMessageID(s); ok {
			// Anything accepted must carry the case's real token.
			if !strings.Contains(strings.ToLower(s), acme.Token(n)) {
				t.Fatalf("accepted %q for case %d without its token", s, n)
			}
		}
		if n, ok := acme.CaseFromAddress(s); ok && !strings.Contains(strings.ToLower(s), acme.Token(n)) {
			t.Fatalf("accepted address %q for case %d without its token", s, n)
		}
	})
}
