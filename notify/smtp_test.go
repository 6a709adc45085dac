package notify

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
)

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want SMTPConfig
	}{
		{"implicit TLS", "smtps://agent:s3cret@mail.example.com:465",
			SMTPConfig{Host: "mail.example.com", Port: 465, Username: "agent", Password: "s3cret", TLS: TLSImplicit}},
		{"implicit TLS, default port", "smtps://mail.example.com",
			SMTPConfig{Host: "mail.example.com", Port: 465, TLS: TLSImplicit}},
		{"STARTTLS by default", "smtp://mail.example.com:587",
			SMTPConfig{Host: "mail.example.com", Port: 587, TLS: TLSStartTLS}},
		{"submission port by default", "smtp://agent:s3cret@mail.example.com",
			SMTPConfig{Host: "mail.example.com", Port: 587, Username: "agent", Password: "s3cret", TLS: TLSStartTLS}},
		{"STARTTLS named", "smtp://mail.example.com?tls=STARTTLS",
			SMTPConfig{Host: "mail.example.com", Port: 587, TLS: TLSStartTLS}},
		{"plain text opted in", "smtp://mail.example.com:25?tls=none",
			SMTPConfig{Host: "mail.example.com", Port: 25, TLS: TLSNone}},
		{"opportunistic opted in", "smtp://mail.example.com:25?tls=opportunistic",
			SMTPConfig{Host: "mail.example.com", Port: 25, TLS: TLSOpportunistic}},
		{"loopback IPv4", "smtp://127.0.0.1:2525",
			SMTPConfig{Host: "127.0.0.1", Port: 2525, TLS: TLSOpportunistic}},
		{"loopback 127/8", "smtp://127.8.9.10:25",
			SMTPConfig{Host: "127.8.9.10", Port: 25, TLS: TLSOpportunistic}},
		{"loopback IPv6", "smtp://[::1]:25",
			SMTPConfig{Host: "::1", Port: 25, TLS: TLSOpportunistic}},
		{"localhost", "smtp://LOCALHOST:25",
			SMTPConfig{Host: "LOCALHOST", Port: 25, TLS: TLSOpportunistic}},
		{"loopback can still require STARTTLS", "smtp://localhost:25?tls=starttls",
			SMTPConfig{Host: "localhost", Port: 25, TLS: TLSStartTLS}},
		{"credentials in plain text to loopback", "smtp://agent:s3cret@127.0.0.1:25?tls=none",
			SMTPConfig{Host: "127.0.0.1", Port: 25, Username: "agent", Password: "s3cret", TLS: TLSNone}},
		{"escaped credentials", "smtps://agent%40acme.example:p%2Fw%3As%40cret@mail.example.com",
			SMTPConfig{Host: "mail.example.com", Port: 465, Username: "agent@acme.example", Password: "p/w:s@cret", TLS: TLSImplicit}},
		{"timeout and helo", "smtp://mail.example.com?timeout=10s&helo=casedesk.acme.example",
			SMTPConfig{Host: "mail.example.com", Port: 587, TLS: TLSStartTLS, Timeout: 10 * time.Second, HELO: "casedesk.acme.example"}},
		{"insecure_skip_verify for tests", "smtps://127.0.0.1:4650?insecure_skip_verify=true",
			SMTPConfig{Host: "127.0.0.1", Port: 4650, TLS: TLSImplicit, InsecureSkipVerify: true}},
		{"trailing slash", "smtp://mail.example.com/",
			SMTPConfig{Host: "mail.example.com", Port: 587, TLS: TLSStartTLS}},
		{"upper-case scheme", "SMTPS://mail.example.com",
			SMTPConfig{Host: "mail.example.com", Port: 465, TLS: TLSImplicit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSMTPURL(tt.url)
			if err != nil {
				t.Fatalf("ParseSMTPURL(%q): %v", tt.url, err)
			}
			if got != tt.want {
				t.Errorf("ParseSMTPURL(%q) =\n%#v\nwant\n%#v", tt.url, got, tt.want)
			}
			if got.Password != tt.want.Password {
				t.Errorf("password %q, want %q", got.Password, tt.want.Password)
			}
		})
	}
}

func TestParseSMTPURLErrors(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantMsg string
	}{
		{"empty", "", "missing scheme"},
		{"no scheme", "mail.example.com", "missing scheme"},
		{"host and port only", "mail.example.com:25", "unsupported scheme"},
		{"http", "http://mail.example.com", `unsupported scheme "http"`},
		{"submission scheme", "submission://mail.example.com", "unsupported scheme"},
		{"no host", "smtp://", "missing host"},
		{"no host with port", "smtp://:25", "invalid host"},
		{"opaque", "smtp:mail.example.com", "missing host"},
		{"port zero", "smtp://mail.example.com:0", "invalid port"},
		{"port too big", "smtp://mail.example.com:99999", "invalid port"},
		{"port not a number", "smtp://mail.example.com:smtp", "invalid port"},
		{"path", "smtp://mail.example.com/INBOX", "unexpected path"},
		{"fragment", "smtp://mail.example.com#x", "unexpected fragment"},
		{"unknown tls mode", "smtp://mail.example.com?tls=maybe", "tls="},
		{"tls with smtps", "smtps://mail.example.com?tls=none", "smtps:// always uses implicit TLS"},
		{"unknown parameter", "smtp://mail.example.com?tsl=none", `unknown parameter "tsl"`},
		{"repeated parameter", "smtp://mail.example.com?tls=none&tls=starttls", "given 2 times"},
		{"bad timeout", "smtp://mail.example.com?timeout=soon", "timeout="},
		{"negative timeout", "smtp://mail.example.com?timeout=-1s", "timeout="},
		{"huge timeout", "smtp://mail.example.com?timeout=2h", "timeout 2h0m0s outside"},
		{"bad helo", "smtp://mail.example.com?helo=bad%20name", "invalid helo"},
		{"bad insecure_skip_verify", "smtp://mail.example.com?insecure_skip_verify=yes please", "insecure_skip_verify="},
		{"insecure_skip_verify without TLS", "smtp://mail.example.com?tls=none&insecure_skip_verify=true", "no effect"},
		{"user without password", "smtp://agent@mail.example.com", "has no password"},
		{"password in plain text to a remote host", "smtp://agent:s3cret@mail.example.com:25?tls=none", "refusing to send the password in plain text"},
		{"malformed with credentials", "smtp://agent:s3cr%zzet@mail.example.com", "malformed URL"},
		{"bad query escape", "smtp://mail.example.com?helo=%zz", "malformed query"},
		{"control character", "smtp://mail.example.com\n:25", "invalid control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSMTPURL(tt.url)
			if err == nil {
				t.Fatalf("ParseSMTPURL(%q) = %v, want an error", tt.url, got)
			}
			if casedesk.ErrorCode(err) != casedesk.EINVALID {
				t.Errorf("error code %q, want %q (%v)", casedesk.ErrorCode(err), casedesk.EINVALID, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "s3cr") {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

func TestSMTPConfigHidesPassword(t *testing.T) {
	cfg, err := ParseSMTPURL("smtps://agent:s3cret@mail.example.com:465?timeout=10s")
	if err != nil {
		t.Fatal(err)
	}
	if want := "smtps://agent:xxxxx@mail.example.com:465?timeout=10s"; cfg.String() != want {
		t.Errorf("String() = %q, want %q", cfg.String(), want)
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("text", "smtp", cfg)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("json", "smtp", cfg)
	shown := map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"%s":   fmt.Sprintf("%s", cfg),
		"&%+v": fmt.Sprintf("%+v", &cfg),
		"slog": logs.String(),
	}
	for how, s := range shown {
		if strings.Contains(s, "s3cret") || !strings.Contains(s, "mail.example.com") {
			t.Errorf("%s shows %q", how, s)
		}
	}
}

func TestSMTPConfigString(t *testing.T) {
	tests := []string{
		"smtps://mail.example.com:465",
		"smtp://mail.example.com:587",
		"smtp://mail.example.com:25?tls=none",
		"smtp://mail.example.com:25?tls=opportunistic",
		"smtp://127.0.0.1:2525",
		"smtp://127.0.0.1:2525?tls=starttls",
		"smtp://[::1]:25?tls=none",
		"smtps://agent:xxxxx@mail.example.com:465?helo=casedesk.example&insecure_skip_verify=true&timeout=5s",
	}
	for _, s := range tests {
		cfg, err := ParseSMTPURL(s)
		if err != nil {
			t.Fatalf("ParseSMTPURL(%q): %v", s, err)
		}
		if got := cfg.String(); got != s {
			t.Errorf("String() = %q, want %q", got, s)
		}
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     SMTPConfig
		wantErr bool
	}{
		{"defaults", SMTPConfig{Host: "mail.example.com", Port: 587}, false},
		{"credentials, STARTTLS by default", SMTPConfig{Host: "mail.example.com", Port: 587, Username: "a", Password: "b"}, false},
		{"credentials, plain text, remote", SMTPConfig{Host: "mail.example.com", Port: 25, Username: "a", Password: "b", TLS: TLSNone}, true},
		{"credentials, plain text, loopback", SMTPConfig{Host: "127.0.0.1", Port: 25, Username: "a", Password: "b", TLS: TLSNone}, false},
		{"no host", SMTPConfig{Port: 25}, true},
		{"host with a path", SMTPConfig{Host: "mail.example.com/x", Port: 25}, true},
		{"host of colons", SMTPConfig{Host: ":", Port: 25}, true},
		{"IPv6 host", SMTPConfig{Host: "2001:db8::1", Port: 25}, false},
		{"no port", SMTPConfig{Host: "mail.example.com"}, true},
		{"unknown TLS mode", SMTPConfig{Host: "mail.example.com", Port: 25, TLS: "ssl"}, true},
		{"password without user", SMTPConfig{Host: "mail.example.com", Port: 25, Password: "b"}, true},
		{"control character in user", SMTPConfig{Host: "mail.example.com", Port: 25, Username: "a\r\nb", Password: "b"}, true},
		{"negative timeout", SMTPConfig{Host: "mail.example.com", Port: 25, Timeout: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && casedesk.ErrorCode(err) != casedesk.EINVALID {
				t.Errorf("error code %q", casedesk.ErrorCode(err))
			}
			if _, err2 := NewSender(tt.cfg); (err2 != nil) != tt.wantErr {
				t.Errorf("NewSender: %v, want error %v", err2, tt.wantErr)
			}
		})
	}
}

func FuzzParseSMTPURL(f *testing.F) {
	for _, s := range []string{
		"smtps://agent:s3cret@mail.example.com:465",
		"smtp://127.0.0.1:2525?tls=none&timeout=1s&helo=x",
		"smtp://[::1]:25?insecure_skip_verify=false",
		"smtp://a:b@c:1/?tls=opportunistic",
		"smtps://::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseSMTPURL(s)
		if err != nil {
			if casedesk.ErrorCode(err) != casedesk.EINVALID {
				t.Fatalf("error code %q: %v", casedesk.ErrorCode(err), err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed config is invalid: %v", err)
		}
		// String is a URL that parses back to the same config, but for the
		// password it hides.
		again, err := ParseSMTPURL(cfg.String())
		if err != nil {
			t.Fatalf("ParseSMTPURL(%q), from %q: %v", cfg.String(), s, err)
		}
		if cfg.Password != "" {
			again.Password = cfg.Password
		}
		if again != cfg {
			t.Fatalf("round trip of %q:\n%#v\n%#v", s, cfg, again)
		}
		if len(cfg.Password) >= 4 && strings.Contains(cfg.String(), cfg.Password) &&
			!strings.Contains(cfg.Host+cfg.Username+cfg.HELO, cfg.Password) {
			t.Fatalf("String() %q shows the password %q", cfg.String(), cfg.Password)
		}
	})
}
