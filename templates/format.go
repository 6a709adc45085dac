package templates

import (
	htmltemplate "html/template"
	"strings"
	"time"
	"unicode"

	"github.com/casedesk/casedesk"
)

// separators are a language's thousands and decimal marks.
type separators struct{ group, decimal byte }

var (
	englishMarks = separators{',', '.'}
	germanMarks  = separators{'.', ','}
)

func marksFor(lang string) separators {
	if baseLang(lang) == "de" {
		return germanMarks
	}
	return englishMarks
}

// FormatMoney formats an amount in minor units of currency exactly, with
// English marks: 123456 EUR is "1,234.56 EUR", -5 JPY is "-5 JPY".
func FormatMoney(amountMinor int64, currency string) string {
	return formatMoney(amountMinor, currency, englishMarks)
}

func formatMoney(amountMinor int64, currency string, m separators) string {
	return casedesk.FormatMinorMarks(amountMinor, strings.ToUpper(currency), m.group, m.decimal)
}

// formatDate writes a date the way the language does: "2 January 2006" in
// English, "02.01.2006" in German, ISO 8601 in any other language. The
// date is read in the time's own location.
func formatDate(t time.Time, lang string) string {
	switch baseLang(lang) {
	case "en":
		return t.Format("2 January 2006")
	case "de":
		return t.Format("02.01.2006")
	}
	return t.Format("2006-01-02")
}

// funcs returns the functions templates in lang may call:
//
//	date   time.Time -> the date in the language's format
//	money  amount in minor units, currency -> "1,234.56 EUR" ("1.234,56 EUR" in German)
//
// HTML bodies also have nl2br: plain text -> escaped HTML with line breaks.
func funcs(lang string, html bool) map[string]any {
	m := marksFor(lang)
	f := map[string]any{
		"date":  func(t time.Time) string { return formatDate(t, lang) },
		"money": func(minor int64, currency string) string { return formatMoney(minor, currency, m) },
	}
	if html {
		f["nl2br"] = nl2br
	}
	return f
}

// nl2br escapes plain text for HTML and turns its line breaks into <br>.
func nl2br(s string) htmltemplate.HTML {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = htmltemplate.HTMLEscapeString(s)
	return htmltemplate.HTML(strings.ReplaceAll(s, "\n", "<br>\n"))
}

// oneLine makes a rendered subject one header-safe line: runs of white
// space and control characters (CR and LF among them) become one space,
// and none is left at either end.
func oneLine(s string) string {
	// Most subjects are clean already: return them without a copy.
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f || c >= 0x80 || (c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' ')) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	gap := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			gap = true
			continue
		}
		if gap && b.Len() > 0 {
			b.WriteByte(' ')
		}
		gap = false
		b.WriteRune(r)
	}
	return b.String()
}

// canonLang returns a language tag in canonical form ("de-AT" for
// "DE-at"), or "" if lang is not a plausible tag: 2 to 8 letters,
// optionally a hyphen and a region of 2 letters or 3 digits.
func canonLang(lang string) string {
	base, region, hasRegion := strings.Cut(lang, "-")
	if len(base) < 2 || len(base) > 8 || !allASCII(base, isLetter) {
		return ""
	}
	if !hasRegion {
		return strings.ToLower(base)
	}
	if !(len(region) == 2 && allASCII(region, isLetter) || len(region) == 3 && allASCII(region, isDigit)) {
		return ""
	}
	return strings.ToLower(base) + "-" + strings.ToUpper(region)
}

// baseLang is the language of a canonical tag without its region.
func baseLang(lang string) string {
	base, _, _ := strings.Cut(lang, "-")
	return base
}

func allASCII(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
