package casedesk

import (
	"strconv"
	"strings"
)

// currencyExponents are the ISO 4217 currencies invoices may be written
// in, with the number of decimal digits of each one's minor unit. A
// currency missing here is refused rather than guessed: a wrong exponent
// would show every amount off by a factor of ten or a hundred.
var currencyExponents = map[string]int{
	// No minor unit in use.
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
	"UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// Thousandths.
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// Hundredths.
	"AED": 2, "AUD": 2, "BGN": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2,
	"DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "ILS": 2, "INR": 2,
	"MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2, "PHP": 2, "PLN": 2, "RON": 2, "SAR": 2,
	"SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "ZAR": 2,
}

// CurrencyExponent returns how many decimal digits the currency's minor
// unit has (2 for EUR, 0 for JPY, 3 for KWD) and whether casedesk knows
// the currency. code must be upper case.
func CurrencyExponent(code string) (int, bool) {
	e, ok := currencyExponents[code]
	return e, ok
}

// FormatMinor formats an amount in minor units exactly, with English
// marks: 123456 EUR is "1,234.56 EUR", 1500 JPY "1,500 JPY", -5 USD
// "-0.05 USD". An unknown currency is shown with 2 decimals.
func FormatMinor(amount int64, currency string) string {
	return FormatMinorMarks(amount, currency, ',', '.')
}

// FormatMinorMarks formats as FormatMinor does, with the language's marks
// for thousands (group) and decimals: '.' and ',' in German.
func FormatMinorMarks(amount int64, currency string, group, decimal byte) string {
	digits, ok := CurrencyExponent(currency)
	if !ok {
		digits = 2
	}
	// Through uint64, so that the most negative amount has a magnitude.
	mag := uint64(amount)
	if amount < 0 {
		mag = -mag
	}
	s := strconv.FormatUint(mag, 10)
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	whole, frac := s[:len(s)-digits], s[len(s)-digits:]
	var b strings.Builder
	if amount < 0 {
		b.WriteByte('-')
	}
	for i := range len(whole) {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(group)
		}
		b.WriteByte(whole[i])
	}
	if digits > 0 {
		b.WriteByte(decimal)
		b.WriteString(frac)
	}
	b.WriteByte(' ')
	b.WriteString(currency)
	return b.String()
}
