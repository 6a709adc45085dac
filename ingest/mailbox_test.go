package ingest

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/internal/testcert"
)

func TestParseMailboxURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want MailboxConfig // Name, Security, Disposition, MoveTo, AllowPlainText are compared
		// wantErr is a fragment of the error; "" for success.
		wantErr string
	}{
		{"imaps default port", "imaps://support%40acme.example:pw@mail.acme.example/INBOX",
			MailboxConfig{Addr: "mail.acme.example:993", Username: "support@acme.example", Password: "pw", Folder: "INBOX",
				Security: SecurityTLS, Disposition: DispositionSeen}, ""},
		{"user with a bare @", "imaps://support@acme.example:pw@mail.acme.example:10993/Support/EU",
			MailboxConfig{Addr: "mail.acme.example:10993", Username: "support@acme.example", Password: "pw", Folder: "Support/EU",
				Security: SecurityTLS, Disposition: DispositionSeen}, ""},
		{"imap remote is STARTTLS", "imap://u:Secr3t@mail.acme.example",
			MailboxConfig{Addr: "mail.acme.example:143", Username: "u", Password: "Secr3t", Security: SecuritySTARTTLS, Disposition: DispositionSeen}, ""},
		{"imap loopback is plain", "imap://u:Secr3t@127.0.0.1:1143/INBOX",
			MailboxConfig{Addr: "127.0.0.1:1143", Username: "u", Password: "Secr3t", Folder: "INBOX", Security: SecurityNone, Disposition: DispositionSeen}, ""},
		{"imap localhost is plain", "imap://u:Secr3t@localhost:1143",
			MailboxConfig{Addr: "localhost:1143", Username: "u", Password: "Secr3t", Security: SecurityNone, Disposition: DispositionSeen}, ""},
		{"loopback can insist on STARTTLS", "imap://u:Secr3t@[::1]:1143?tls=starttls",
			MailboxConfig{Addr: "[::1]:1143", Username: "u", Password: "Secr3t", Security: SecuritySTARTTLS, Disposition: DispositionSeen}, ""},
		{"plain text remote by explicit opt-in", "imap://u:Secr3t@mail.acme.example?tls=none",
			MailboxConfig{Addr: "mail.acme.example:143", Username: "u", Password: "Secr3t", Security: SecurityNone,
				AllowPlainText: true, Disposition: DispositionSeen}, ""},
		{"move", "imaps://u:Secr3t@mail.acme.example/INBOX?disposition=move&move_to=Processed",
			MailboxConfig{Addr: "mail.acme.example:993", Username: "u", Password: "Secr3t", Folder: "INBOX", Security: SecurityTLS,
				Disposition: DispositionMove, MoveTo: "Processed"}, ""},
		{"keep", "imaps://u:Secr3t@mail.acme.example?disposition=keep",
			MailboxConfig{Addr: "mail.acme.example:993", Username: "u", Password: "Secr3t", Security: SecurityTLS, Disposition: DispositionKeep}, ""},
		{"move needs a folder", "imaps://u:Secr3t@h?disposition=move", MailboxConfig{}, "move_to"},
		{"move onto itself", "imaps://u:Secr3t@h/INBOX?disposition=move&move_to=INBOX", MailboxConfig{}, "move_to"},
		{"unknown disposition", "imaps://u:Secr3t@h?disposition=delete", MailboxConfig{}, "disposition"},
		{"tls=none on imaps", "imaps://u:Secr3t@h?tls=none", MailboxConfig{}, "contradicts"},
		{"unknown tls", "imap://u:Secr3t@h?tls=maybe", MailboxConfig{}, "tls must be"},
		{"wrong scheme", "pop3://u:Secr3t@h", MailboxConfig{}, "scheme"},
		{"no user", "imaps://mail.acme.example", MailboxConfig{}, "user name"},
		{"no host", "imaps://u:Secr3t@/INBOX", MailboxConfig{}, "host:port"},
		{"garbage", "imaps://u:Secr3t@h:port:x", MailboxConfig{}, "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMailboxURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || casedesk.ErrorCode(err) != casedesk.EINVALID {
					t.Fatalf("err = %v, want EINVALID mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "Secr3t") || strings.Contains(err.Error(), ":pw") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Addr != tt.want.Addr || got.Username != tt.want.Username || got.Password != tt.want.Password ||
				got.Folder != tt.want.Folder || got.Security != tt.want.Security || got.AllowPlainText != tt.want.AllowPlainText ||
				got.Disposition != tt.want.Disposition || got.MoveTo != tt.want.MoveTo {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if strings.Contains(got.Name(), got.Password) {
				t.Errorf("Name %q contains the password", got.Name())
			}
		})
	}
}

func TestValidateRefusesPlainTextToRemoteHosts(t *testing.T) {
	cfg := MailboxConfig{Addr: "mail.acme.example:143", Username: "u", Password: "Secr3t", Security: SecurityNone}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "plain text") {
		t.Errorf("Validate = %v, want a refusal of plain text", err)
	}
	cfg.AllowPlainText = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("with AllowPlainText: %v", err)
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a client
// config that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	server, pool := testcert.New(t)
	return server, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func TestPollerConnectionSecurity(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	_, untrusted := selfSigned(t)
	tests := []struct {
		name      string
		server    imapOptions
		security  Security
		clientTLS *tls.Config
		wantMail  bool
	}{
		{"implicit TLS", imapOptions{implicitTLS: serverTLS}, SecurityTLS, clientTLS, true},
		{"STARTTLS", imapOptions{starttls: serverTLS}, SecuritySTARTTLS, clientTLS, true},
		{"untrusted certificate", imapOptions{implicitTLS: serverTLS}, SecurityTLS, untrusted, false},
		{"STARTTLS required but not offered", imapOptions{}, SecuritySTARTTLS, clientTLS, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPollerEnv(t, tt.server)
			e.imap.appendMessages(t, "INBOX", 0, 3)
			rec := newRecorder()
			cfg := e.config()
			cfg.Security, cfg.TLSConfig = tt.security, tt.clientTLS
			r := e.start(cfg, e.db, rec, fastOptions())
			if tt.wantMail {
				waitFor(t, 10*time.Second, "mail over TLS", func() bool { return rec.storedCount() == 3 })
			} else {
				// It keeps trying (several connections) and never logs in.
				waitFor(t, 10*time.Second, "retries", func() bool { return e.imap.ln.accepted.Load() >= 3 })
			}
			r.stop(t)
			if !tt.wantMail && rec.storedCount() != 0 {
				t.Errorf("read %d messages over an untrusted connection", rec.storedCount())
			}
		})
	}
}
