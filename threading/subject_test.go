package threading

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestNormalizeSubject(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		prefix  string
		want    string
	}{
		// Every prefix, in its usual spellings.
		{"plain", "Hello", "", "Hello"},
		{"Re", "Re: Hello", "", "Hello"},
		{"RE", "RE: Hello", "", "Hello"},
		{"re lower", "re: Hello", "", "Hello"},
		{"Aw", "Aw: Hallo", "", "Hallo"},
		{"AW", "AW: Hallo", "", "Hallo"},
		{"Sv", "Sv: Hej", "", "Hej"},
		{"SV", "SV: Hej", "", "Hej"},
		{"Antw", "Antw: Hallo", "", "Hallo"},
		{"Antwort", "Antwort: Hallo", "", "Hallo"},
		{"Réf", "Réf: Bonjour", "", "Bonjour"},
		{"RÉF upper", "RÉF : Bonjour", "", "Bonjour"},
		{"Réf decomposed", "Re\u0301f: Bonjour", "", "Bonjour"},
		{"Rép", "Rép: Bonjour", "", "Bonjour"},
		{"Rép decomposed", "RE\u0301P: Bonjour", "", "Bonjour"},
		{"Rif", "Rif: Ciao", "", "Ciao"},
		{"R", "R: Ciao", "", "Ciao"},
		{"I", "I: Ciao", "", "Ciao"},
		{"RV", "RV: Hola", "", "Hola"},
		{"Fwd", "Fwd: Hi", "", "Hi"},
		{"FWD", "FWD: Hi", "", "Hi"},
		{"FW", "FW: Hi", "", "Hi"},
		{"Fw", "Fw: Hi", "", "Hi"},
		{"WG", "WG: Hallo", "", "Hallo"},
		{"TR", "TR: Bonjour", "", "Bonjour"},
		{"Doorst", "Doorst: Hallo", "", "Hallo"},
		{"Wtr", "Wtr: Hallo", "", "Hallo"},
		{"Odp", "Odp: Dzień dobry", "", "Dzień dobry"},
		{"Ynt", "YNT: Merhaba", "", "Merhaba"},
		{"Vá", "Vá: Szia", "", "Szia"},
		{"Vá decomposed", "Va\u0301: Szia", "", "Szia"},
		{"Ang", "Ang: Hej", "", "Hej"},
		{"Ref", "Ref: Invoice", "", "Invoice"},
		{"Res", "RES: Olá", "", "Olá"},
		{"Enc", "ENC: Olá", "", "Olá"},
		{"VS", "VS: Hei", "", "Hei"},
		{"VL", "VL: Hei", "", "Hei"},

		// Colons, spacing and counted forms.
		{"full-width colon", "Re：Hello", "", "Hello"},
		{"space before colon", "RE : Hello", "", "Hello"},
		{"no space after colon", "Re:Hello", "", "Hello"},
		{"counted brackets", "Re[2]: Hello", "", "Hello"},
		{"counted parens", "Re(3): Hello", "", "Hello"},
		{"counted caret", "RE^2: Hello", "", "Hello"},
		{"counted AW", "AW[12] : Hallo", "", "Hallo"},
		{"counted full-width", "Re[2]：Hello", "", "Hello"},

		// Repeated and mixed chains.
		{"repeated Re", "Re: Re: Re: Hello", "", "Hello"},
		{"mixed chain", "Re: Re[2]: AW: Fwd: RE : Hello", "", "Hello"},
		{"forward chain", "Fwd: Re: Fw: WG: TR: Hello", "", "Hello"},
		{"chain without spaces", "RE:AW:Sv:Hello", "", "Hello"},
		{"single letters in chain", "R: I: R: Ciao", "", "Ciao"},

		// Our tag, wherever it is.
		{"tag at start", "[Case #12] Printer", "", "Printer"},
		{"tag after Re", "Re: [Case #12] Printer", "", "Printer"},
		{"tag at end", "Printer [Case #12]", "", "Printer"},
		{"tag at end lower spaced", "RE: Printer [case # 12]", "", "Printer"},
		{"tag in middle", "Printer [CASE#12] broken", "", "Printer broken"},
		{"tag spaced", "[ Case  # 123 ] Printer", "", "Printer"},
		{"tag glued", "Printer[Case #12]broken", "", "Printer broken"},
		{"two tags", "[Case #1] Printer [Case #2]", "", "Printer"},
		{"tag before prefix", "[Case #4] Re: Printer", "", "Printer"},
		{"nested tags", "Printer [Case [Case #1]#2] x", "", "Printer x"},
		{"deeply nested tags", "a " + strings.Repeat("[Case ", 50) + strings.Repeat("#1]", 50) + " b", "", "a b"},
		{"bracket kept between", "a [Case [x] #1] b", "", "a [Case [x] #1] b"},
		{"custom prefix", "Re: [Ticket #5] Hi", "Ticket", "Hi"},
		{"custom prefix at end", "Hi [ticket #5]", "Ticket", "Hi"},
		{"multi-word prefix", "Hi [acme  SUPPORT #5] there", "Acme Support", "Hi there"},
		{"other prefix in middle stays", "Printer [Case #5] x", "Ticket", "Printer [Case #5] x"},
		{"zero tag in middle stays", "Printer [Case #0] broken", "", "Printer [Case #0] broken"},
		{"bad tag in middle stays", "Printer [Case #12a] broken", "", "Printer [Case #12a] broken"},

		// Mailing-list tags at the start.
		{"list tag", "[users] Re: Hello", "", "Hello"},
		{"list tag after Re", "Re: [users] Hello", "", "Hello"},
		{"external and tag", "[EXTERNAL] RE: [Case #7] Printer", "", "Printer"},
		{"two list tags", "[EXTERNAL][users] Hello", "", "Hello"},
		{"other tag at start", "[Ticket #9] Hello", "", "Hello"},
		{"bracket later stays", "Error in [module x]", "", "Error in [module x]"},
		{"bracket later after Re", "Re: Error in [module x]", "", "Error in [module x]"},
		{"long bracket stays", "[" + strings.Repeat("a", 41) + "] x", "", "[" + strings.Repeat("a", 41) + "] x"},
		{"empty brackets stay", "[] Hello", "", "[] Hello"},

		// Words that look like prefixes but are not.
		{"Reboot", "Reboot needed", "", "Reboot needed"},
		{"Trace", "Trace: stack overflow", "", "Trace: stack overflow"},
		{"Forward planning", "Forward planning", "", "Forward planning"},
		{"Ring", "Ring: x", "", "Ring: x"},
		{"Relay", "Relay: x", "", "Relay: x"},
		{"Refund", "Refund: order 12", "", "Refund: order 12"},
		{"Re without colon", "Re the meeting", "", "Re the meeting"},
		{"R with space before colon", "R : x", "", "R : x"},
		{"I:O", "I:O error on disk", "", "I:O error on disk"},
		{"digit in word", "Re2: x", "", "Re2: x"},
		{"prefix later", "Hello Re: world", "", "Hello Re: world"},
		{"Fwd without colon", "Fwd planning", "", "Fwd planning"},
		{"unclosed count", "Re[2: x", "", "Re[2: x"},

		// White space.
		{"tabs and CRLF", "Re:\tHello\r\n world", "", "Hello world"},
		{"folded header", "Re: Printer\r\n\tis broken", "", "Printer is broken"},
		{"non-breaking space", "Re:\u00a0Hello\u00a0 world", "", "Hello world"},
		{"ideographic space", "Re:\u3000Hello", "", "Hello"},
		{"space around", "   Hello   world  ", "", "Hello world"},

		// Empty and nothing but prefixes.
		{"empty", "", "", ""},
		{"blank", " \t\r\n", "", ""},
		{"only Re", "Re:", "", "Re:"},
		{"only prefixes", "Re:  Fwd:\t", "", "Re: Fwd:"},
		{"only tag", "Re:   [Case #5]", "", "Re: [Case #5]"},
		{"only list tag", "[users]", "", "[users]"},

		// Other scripts and bad bytes.
		{"umlauts", "AW: Ärger mit Drucker", "", "Ärger mit Drucker"},
		{"CJK", "Re: 打印机坏了", "", "打印机坏了"},
		{"invalid UTF-8", "Re: \xff\xfe x", "", "\xff\xfe x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NormalizeSubject(tt.subject, tt.prefix)
			if got != tt.want {
				t.Errorf("NormalizeSubject(%q, %q) = %q, want %q", tt.subject, tt.prefix, got, tt.want)
			}
		})
	}
}

func TestFindTag(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		prefix  string
		want    int64
		wantOK  bool
	}{
		{"plain", "[Case #123] Printer", "", 123, true},
		{"lower", "[case #123]", "", 123, true},
		{"upper glued", "[CASE#123]", "", 123, true},
		{"spaced", "[ Case  # 123 ]", "", 123, true},
		{"tabs", "[Case\t#\t5]", "", 5, true},
		{"at end", "Re: Printer [Case #12]", "", 12, true},
		{"in middle", "Printer [Case #12] broken", "", 12, true},
		{"leading zeros", "[Case #007]", "", 7, true},
		{"max int64", "[Case #9223372036854775807]", "", 9223372036854775807, true},
		{"explicit default", "[Case #9]", "Case", 9, true},
		{"custom prefix", "Re: [ticket #42]", "Ticket", 42, true},
		{"multi-word prefix", "[acme  support #5]", "Acme Support", 5, true},
		{"accented prefix", "[ärende #4]", "Ärende", 4, true},
		{"two tags", "[Case #3] [Case #4]", "", 3, true},
		{"invalid then valid", "[Case #0] [Case #9]", "", 9, true},
		{"bracket before tag", "[x [Case #8]", "", 8, true},

		{"empty", "", "", 0, false},
		{"no tag", "Printer broken", "", 0, false},
		{"no number", "[Case #]", "", 0, false},
		{"trailing letter", "[Case #12a]", "", 0, false},
		{"zero", "[Case #0]", "", 0, false},
		{"negative", "[Case #-5]", "", 0, false},
		{"overflow", "[Case #9223372036854775808]", "", 0, false},
		{"different prefix", "[Ticket #5]", "", 0, false},
		{"default under custom prefix", "[Case #5]", "Ticket", 0, false},
		{"no hash", "[Case 12]", "", 0, false},
		{"unclosed", "[Case #12", "", 0, false},
		{"no brackets", "Case #12", "", 0, false},
		{"longer word", "[Cases #12]", "", 0, false},
		{"prefix inside word", "[MyCase #12]", "", 0, false},
		{"bracketed prefix", "[Support #6]", "[Support]", 6, true},
		{"multi-word glued", "[AcmeSupport #5]", "Acme Support", 0, false},
		{"space in number", "[Case #1 2]", "", 0, false},
		{"invalid UTF-8", "\xff[Case #\xff]", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FindTag(tt.subject, tt.prefix)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("FindTag(%q, %q) = %d, %v, want %d, %v", tt.subject, tt.prefix, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestTag(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		number int64
		want   string
	}{
		{"default", "Case", 123, "[Case #123]"},
		{"empty prefix", "", 123, "[Case #123]"},
		{"blank prefix", "  \t", 7, "[Case #7]"},
		{"custom", "Ticket", 1, "[Ticket #1]"},
		{"multi-word spaced", "  Acme   Support ", 5, "[Acme Support #5]"},
		{"brackets dropped", "[Support]", 6, "[Support #6]"},
		{"max", "Case", 9223372036854775807, "[Case #9223372036854775807]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Tag(tt.prefix, tt.number)
			if got != tt.want {
				t.Errorf("Tag(%q, %d) = %q, want %q", tt.prefix, tt.number, got, tt.want)
			}
			if n, ok := FindTag("Re: x "+got, tt.prefix); !ok || n != tt.number {
				t.Errorf("FindTag(Tag(%q, %d)) = %d, %v", tt.prefix, tt.number, n, ok)
			}
			if n := NormalizeSubject("Re: x "+got, tt.prefix); n != "x" {
				t.Errorf("NormalizeSubject with Tag(%q, %d) = %q, want %q", tt.prefix, tt.number, n, "x")
			}
		})
	}
}

func TestIsForward(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		want    bool
	}{
		{"Fwd", "Fwd: x", true},
		{"FWD", "FWD: x", true},
		{"FW", "FW: x", true},
		{"Fw", "Fw: x", true},
		{"WG", "WG: x", true},
		{"TR", "TR: x", true},
		{"RV", "RV: x", true},
		{"Doorst", "Doorst: x", true},
		{"Wtr", "Wtr: x", true},
		{"VL", "VL: x", true},
		{"Enc", "Enc: x", true},
		{"I", "I: x", true},
		{"counted", "Fwd[2]: x", true},
		{"space before colon", "FW : x", true},
		{"only prefix", "Fwd:", true},
		{"after list tag", "[EXTERNAL] Fwd: x", true},
		{"after our tag", "[Case #12] FW: x", true},
		{"after both", " [users] [Case #12] WG: x", true},
		{"forward of reply", "Fwd: Re: x", true},

		{"reply of forward", "Re: Fwd: x", false},
		{"AW", "AW: x", false},
		{"VS is a reply", "VS: x", false},
		{"R", "R: x", false},
		{"plain", "Hello", false},
		{"empty", "", false},
		{"Forward planning", "Forward planning", false},
		{"no colon", "Fwd x", false},
		{"I:O", "I:O error", false},
		{"Trace", "Trace: x", false},
		{"later", "Hello Fwd: x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsForward(tt.subject); got != tt.want {
				t.Errorf("IsForward(%q) = %v, want %v", tt.subject, got, tt.want)
			}
		})
	}
}

func FuzzNormalizeSubject(f *testing.F) {
	seeds := []struct{ subject, prefix string }{
		{"Re: Re[2]: AW: Fwd: RE : Hello", ""},
		{"[EXTERNAL] RE: Printer [case # 12]", ""},
		{"Printer [Case [Case #1]#2] x", ""},
		{"R: I:O [Ticket #9223372036854775808]", "Ticket"},
		{"Re:\u00a0Re\u0301f：\t[users]", "Acme Support"},
		{"\xff[Case #\xff] Re^2:", "\xff"},
		{"", ""},
	}
	for _, s := range seeds {
		f.Add(s.subject, s.prefix)
	}
	f.Fuzz(func(t *testing.T, subject, prefix string) {
		got := NormalizeSubject(subject, prefix)
		if utf8.ValidString(subject) && !utf8.ValidString(got) {
			t.Fatalf("NormalizeSubject(%q, %q) = %q, not valid UTF-8", subject, prefix, got)
		}
		if strings.TrimFunc(got, unicode.IsSpace) != got {
			t.Fatalf("NormalizeSubject(%q, %q) = %q, has space at an end", subject, prefix, got)
		}
		if got == "" && len(strings.Fields(subject)) > 0 {
			t.Fatalf("NormalizeSubject(%q, %q) is empty", subject, prefix)
		}
		if again := NormalizeSubject(got, prefix); again != got {
			t.Fatalf("NormalizeSubject(%q, %q) = %q, but again gives %q", subject, prefix, got, again)
		}
		FindTag(subject, prefix)
		IsForward(subject)
	})
}

func TestRemoveTags(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"[Case #12] Printer", "  Printer"},
		{"Re: [case#12] Printer [CASE # 7]", "Re:   Printer  "},
		{"[Case [Case #1]#2] x", "  x"},
		{"[Ticket #12] Printer", "[Ticket #12] Printer"},
		{"[Case #] Printer", "[Case #] Printer"},
	} {
		if got := RemoveTags(tc.in, ""); got != tc.want {
			t.Errorf("RemoveTags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
