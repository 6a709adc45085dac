package casedesk_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

func TestAPIKeySecretRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, tenant := range []int64{1, 42, 1 << 62} {
		secret, hash := casedesk.NewAPIKeySecret(tenant)
		if seen[secret] {
			t.Fatalf("secret %q made twice", secret)
		}
		seen[secret] = true
		id, got, err := casedesk.ParseAPIKey(secret)
		if err != nil {
			t.Fatalf("ParseAPIKey(%q): %v", secret, err)
		}
		want := sha256.Sum256([]byte(secret))
		if id != tenant || !bytes.Equal(got, hash) || !bytes.Equal(hash, want[:]) {
			t.Errorf("ParseAPIKey(%q) = %d, %x; want %d, %x", secret, id, got, tenant, want)
		}
	}
}

func TestParseAPIKeyMalformed(t *testing.T) {
	secret, _ := casedesk.NewAPIKeySecret(42)
	body := strings.TrimPrefix(secret, "cdk_42_")
	enc := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"prefix only", "cdk_"},
		{"wrong prefix", "cdx_42_" + body},
		{"upper-case prefix", "CDK_42_" + body},
		{"no prefix", "42_" + body},
		{"leading space", " " + secret},
		{"no separator", "cdk_42" + body},
		{"no tenant", "cdk__" + body},
		{"tenant not a number", "cdk_acme_" + body},
		{"tenant zero", "cdk_0_" + body},
		{"tenant negative", "cdk_-42_" + body},
		{"tenant overflows", "cdk_9223372036854775808_" + body},
		{"no secret", "cdk_42_"},
		{"bad base64", "cdk_42_" + body[:len(body)-1] + "!"},
		{"padded base64", "cdk_42_" + body + "="},
		{"standard alphabet", "cdk_42_" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32))},
		{"31 bytes", "cdk_42_" + enc(make([]byte, 31))},
		{"33 bytes", "cdk_42_" + enc(make([]byte, 33))},
		{"extra part", secret + "_x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, hash, err := casedesk.ParseAPIKey(tt.key)
			if code := casedesk.ErrorCode(err); code != casedesk.EUNAUTHORIZED {
				t.Fatalf("ParseAPIKey(%q) error %v (code %q), want %q", tt.key, err, code, casedesk.EUNAUTHORIZED)
			}
			if id != 0 || hash != nil {
				t.Errorf("ParseAPIKey(%q) = %d, %x with the error", tt.key, id, hash)
			}
		})
	}
}

// FuzzParseAPIKey: ParseAPIKey never panics, refuses with EUNAUTHORIZED,
// and accepts a key only with its own tenant and hash.
func FuzzParseAPIKey(f *testing.F) {
	secret, _ := casedesk.NewAPIKeySecret(7)
	for _, s := range []string{secret, "", "cdk_", "cdk_1_", "cdk_0_" + secret[6:], "cdk_-1_x", secret + "=", "cdk_1_" + strings.Repeat("A", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		id, hash, err := casedesk.ParseAPIKey(key)
		if err != nil {
			if casedesk.ErrorCode(err) != casedesk.EUNAUTHORIZED || id != 0 || hash != nil {
				t.Fatalf("ParseAPIKey(%q) = %d, %x, %v", key, id, hash, err)
			}
			return
		}
		want := sha256.Sum256([]byte(key))
		if !bytes.Equal(hash, want[:]) || !bytes.Equal(hash, casedesk.HashAPIKey(key)) {
			t.Fatalf("ParseAPIKey(%q) hash %x, want the key's own %x", key, hash, want)
		}
		tenant, _, _ := strings.Cut(strings.TrimPrefix(key, "cdk_"), "_")
		if n, err := strconv.ParseInt(tenant, 10, 64); !strings.HasPrefix(key, "cdk_") || id <= 0 || err != nil || n != id {
			t.Fatalf("ParseAPIKey(%q) accepted tenant %d", key, id)
		}
	})
}
