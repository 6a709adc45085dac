// Package threading decides which case an inbound message belongs to and
// what it does to that case. It is pure: no I/O and no clock; the processor
// looks up the facts and passes them in.
package threading

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"slices"
	"strconv"
	"strings"
)

// tokenLen is the length of a case token: 8 base32 characters, 40 bits of
// HMAC. Guessing one for a given case takes about 10^12 tries, and every
// try is an email the tenant would see.
const tokenLen = 8

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Tokens makes and checks the case tokens of one tenant. A token is a
// truncated HMAC-SHA256, keyed with the tenant's secret, over the tenant
// and the case number, so a token of another tenant, a forged one or a
// truncated one never matches.
type Tokens struct {
	tenantID int64
	secret   []byte
}

// NewTokens returns the token maker of one tenant.
func NewTokens(tenantID int64, secret []byte) Tokens {
	return Tokens{tenantID: tenantID, secret: secret}
}

// Token returns the token of a case.
func (t Tokens) Token(caseNumber int64) string {
	mac := hmac.New(sha256.New, t.secret)
	mac.Write([]byte("casedesk case token v1\x00"))
	mac.Write(strconv.AppendInt(nil, t.tenantID, 10))
	mac.Write([]byte{0})
	mac.Write(strconv.AppendInt(nil, caseNumber, 10))
	return strings.ToLower(tokenEncoding.EncodeToString(mac.Sum(nil)))[:tokenLen]
}

// valid reports whether token is the token of the case, in constant time.
func (t Tokens) valid(caseNumber int64, token string) bool {
	return caseNumber > 0 && len(token) == tokenLen &&
		hmac.Equal([]byte(strings.ToLower(token)), []byte(t.Token(caseNumber)))
}

// MessageID returns the Message-ID (without angle brackets) of outbound
// message seq on a case: c123.m456.TOKEN@domain.
func (t Tokens) MessageID(caseNumber, seq int64, domain string) string {
	return "c" + strconv.FormatInt(caseNumber, 10) + ".m" + strconv.FormatInt(seq, 10) + "." +
		t.Token(caseNumber) + "@" + domain
}

// CaseFromMessageID returns the case number of one of our Message-IDs,
// with or without angle brackets, when its token is valid.
func (t Tokens) CaseFromMessageID(id string) (int64, bool) {
	id = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
	local, _, ok := strings.Cut(id, "@")
	if !ok {
		return 0, false
	}
	parts := strings.Split(local, ".")
	if len(parts) != 3 || !hasNumber(parts[1], 'm') {
		return 0, false
	}
	n, ok := number(parts[0], 'c')
	if !ok || !t.valid(n, parts[2]) {
		return 0, false
	}
	return n, true
}

// ReplyAddress returns the plus-address of a case on a support address:
// support+c123-TOKEN@example.com.
func (t Tokens) ReplyAddress(supportAddress string, caseNumber int64) string {
	local, domain, ok := strings.Cut(supportAddress, "@")
	if !ok {
		return supportAddress
	}
	if base, _, plus := strings.Cut(local, "+"); plus {
		local = base
	}
	return local + "+c" + strconv.FormatInt(caseNumber, 10) + "-" + t.Token(caseNumber) + "@" + domain
}

// CaseFromAddress returns the case number of a plus-address made by
// ReplyAddress, when its token is valid.
func (t Tokens) CaseFromAddress(addr string) (int64, bool) {
	local, _, ok := strings.Cut(strings.TrimSpace(addr), "@")
	if !ok {
		return 0, false
	}
	_, tag, ok := strings.Cut(local, "+")
	if !ok {
		return 0, false
	}
	num, token, ok := strings.Cut(tag, "-")
	if !ok {
		return 0, false
	}
	n, ok := number(num, 'c')
	if !ok || !t.valid(n, token) {
		return 0, false
	}
	return n, true
}

// CasesInReferences returns the case numbers that valid tokens in the
// message's references point at, most relevant first (see RefOrder).
func (t Tokens) CasesInReferences(inReplyTo string, references []string) []int64 {
	var out []int64
	for _, id := range RefOrder(inReplyTo, references) {
		if n, ok := t.CaseFromMessageID(id); ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// RefOrder lists the Message-IDs a reply refers to, most relevant first:
// In-Reply-To, then References from the newest (last) to the oldest, each
// once, without angle brackets.
func RefOrder(inReplyTo string, references []string) []string {
	out := make([]string, 0, len(references)+1)
	add := func(id string) {
		id = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	add(inReplyTo)
	for i := len(references) - 1; i >= 0; i-- {
		add(references[i])
	}
	return out
}

// number parses a prefix letter followed by a positive decimal number, in
// any letter case: "c123" -> 123.
func number(s string, prefix byte) (int64, bool) {
	if len(s) < 2 || (s[0]|0x20) != prefix {
		return 0, false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s[1:], 10, 64)
	return n, err == nil && n > 0
}

func hasNumber(s string, prefix byte) bool {
	_, ok := number(s, prefix)
	return ok
}
