package templates

import (
	"math"
	"testing"
	"time"
)

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		minor    int64
		currency string
		want     string
	}{
		{123456, "EUR", "1,234.56 EUR"},
		{0, "EUR", "0.00 EUR"},
		{5, "EUR", "0.05 EUR"},
		{99, "USD", "0.99 USD"},
		{100, "USD", "1.00 USD"},
		{-5, "EUR", "-0.05 EUR"},
		{-123456, "EUR", "-1,234.56 EUR"},
		{100000000, "EUR", "1,000,000.00 EUR"},
		{12345, "eur", "123.45 EUR"},
		{999, "XYZ", "9.99 XYZ"}, // unknown currencies have 2 decimals
		{0, "JPY", "0 JPY"},
		{7, "JPY", "7 JPY"},
		{123456789, "JPY", "123,456,789 JPY"},
		{-1000, "JPY", "-1,000 JPY"},
		{999, "KRW", "999 KRW"},
		{1234567, "KWD", "1,234.567 KWD"},
		{5, "BHD", "0.005 BHD"},
		{-1, "TND", "-0.001 TND"},
		{1000, "JOD", "1.000 JOD"},
		{0, "OMR", "0.000 OMR"},
		{math.MaxInt64, "EUR", "92,233,720,368,547,758.07 EUR"},
		{math.MinInt64, "EUR", "-92,233,720,368,547,758.08 EUR"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatMoney(tt.minor, tt.currency); got != tt.want {
				t.Errorf("FormatMoney(%d, %q) = %q, want %q", tt.minor, tt.currency, got, tt.want)
			}
		})
	}
}

func TestMoneyInTheLanguage(t *testing.T) {
	tests := []struct {
		lang     string
		minor    int64
		currency string
		want     string
	}{
		{"en", 123456, "EUR", "1,234.56 EUR"},
		{"de", 123456, "EUR", "1.234,56 EUR"},
		{"de-CH", -123456789, "CHF", "-1.234.567,89 CHF"},
		{"de", 1234567, "JPY", "1.234.567 JPY"},
		{"fr", 123456, "EUR", "1,234.56 EUR"}, // languages without their own marks use English ones
	}
	for _, tt := range tests {
		t.Run(tt.lang+" "+tt.want, func(t *testing.T) {
			money := funcs(tt.lang, false)["money"].(func(int64, string) string)
			if got := money(tt.minor, tt.currency); got != tt.want {
				t.Errorf("money(%d, %q) in %s = %q, want %q", tt.minor, tt.currency, tt.lang, got, tt.want)
			}
		})
	}
}

func TestDateInTheLanguage(t *testing.T) {
	d := time.Date(2031, 3, 5, 23, 30, 0, 0, time.FixedZone("X", -5*3600))
	tests := []struct{ lang, want string }{
		{"en", "5 March 2031"},
		{"en-GB", "5 March 2031"},
		{"de", "05.03.2031"},
		{"fr", "2031-03-05"},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			date := funcs(tt.lang, true)["date"].(func(time.Time) string)
			if got := date(d); got != tt.want {
				t.Errorf("date in %s = %q, want %q (the date where the time was taken)", tt.lang, got, tt.want)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"Grüße aus Köln", "Grüße aus Köln"},
		{"a\r\nBcc: x@example.com", "a Bcc: x@example.com"},
		{"\r\n", ""},
		{"  lead and trail  ", "lead and trail"},
		{"many   spaces", "many spaces"},
		{"tab\there", "tab here"},
		{"nul\x00del\x7fesc\x1b", "nul del esc"},
		{"line\u2028para\u2029nel\u0085nbsp\u00a0end", "line para nel nbsp end"},
		{"a\rb\nc\vd\fe", "a b c d e"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := oneLine(tt.in); got != tt.want {
				t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCanonLang(t *testing.T) {
	tests := []struct{ in, want string }{
		{"en", "en"},
		{"DE", "de"},
		{"de-at", "de-AT"},
		{"es-419", "es-419"},
		{"haw", "haw"},
		{"abcdefgh", "abcdefgh"},
		{"abcdefghi", ""},
		{"e", ""},
		{"", ""},
		{"de_DE", ""},
		{"de-", ""},
		{"de-DEU", ""},
		{"de-12", ""},
		{"d3", ""},
		{"de-AT-x", ""},
		{"é", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := canonLang(tt.in); got != tt.want {
				t.Errorf("canonLang(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDays(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{-time.Hour, 0},
		{time.Nanosecond, 1},
		{24 * time.Hour, 1},
		{24*time.Hour + time.Second, 2},
		{4 * 24 * time.Hour, 4},
	}
	for _, tt := range tests {
		if got := Days(tt.d); got != tt.want {
			t.Errorf("Days(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
