package ingest

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/casedesk/casedesk"
)

// Security is how a poller protects its IMAP connection.
type Security string

// Connection security modes.
const (
	// SecurityTLS is implicit TLS from the first byte (imaps, port 993).
	SecurityTLS Security = "tls"
	// SecuritySTARTTLS upgrades a plain connection before login (port 143);
	// a server that does not offer STARTTLS is refused.
	SecuritySTARTTLS Security = "starttls"
	// SecurityNone sends the password in plain text: allowed to a loopback
	// address, or anywhere with AllowPlainText.
	SecurityNone Security = "none"
)

// Disposition is what the poller does on the server with a message once its
// data is committed.
type Disposition string

// Dispositions.
const (
	// DispositionSeen flags the message \Seen (the default).
	DispositionSeen Disposition = "seen"
	// DispositionMove moves it to MailboxConfig.MoveTo, with MOVE or with
	// UIDPLUS (COPY, then expunge of exactly those UIDs) so that no other
	// message is ever expunged.
	DispositionMove Disposition = "move"
	// DispositionKeep leaves it untouched; the checkpoint alone records it.
	DispositionKeep Disposition = "keep"
)

// MailboxConfig says which IMAP mailbox to read and what to do with mail
// read from it.
type MailboxConfig struct {
	TenantID int64
	// Addr is host:port.
	Addr     string
	Security Security
	// AllowPlainText permits SecurityNone to a host that is not loopback.
	AllowPlainText bool
	Username       string
	Password       string
	// Folder is the mailbox to read, INBOX when empty.
	Folder      string
	Disposition Disposition
	// MoveTo is the folder for DispositionMove; it is created if missing.
	MoveTo string
	// TLSConfig overrides the TLS settings (nil: system roots, server name
	// from Addr).
	TLSConfig *tls.Config
}

// ParseMailboxURL reads a mailbox from a URL:
//
//	imaps://user:pass@host[:993]/Folder    implicit TLS
//	imap://user:pass@host[:143]/Folder     STARTTLS; plain text on loopback
//
// Query parameters: tls=none (plain text anywhere, explicitly), tls=starttls
// (STARTTLS even on loopback), disposition=seen|move|keep, move_to=Folder.
// The user name may hold an @ (support@example.com), escaped or not.
func ParseMailboxURL(raw string) (MailboxConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return MailboxConfig{}, casedesk.Errorf(casedesk.EINVALID, "mailbox URL does not parse")
	}
	var cfg MailboxConfig
	var port string
	switch u.Scheme {
	case "imaps":
		cfg.Security, port = SecurityTLS, "993"
	case "imap":
		cfg.Security, port = SecuritySTARTTLS, "143"
		if isLoopback(u.Hostname()) {
			cfg.Security = SecurityNone
		}
	default:
		return cfg, casedesk.Errorf(casedesk.EINVALID, "mailbox URL scheme must be imaps or imap, not %q", u.Scheme)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	cfg.Addr = net.JoinHostPort(u.Hostname(), port)
	cfg.Username = u.User.Username()
	cfg.Password, _ = u.User.Password()
	cfg.Folder = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	switch q.Get("tls") {
	case "":
	case "none":
		if u.Scheme == "imaps" {
			return cfg, casedesk.Errorf(casedesk.EINVALID, "tls=none contradicts imaps://")
		}
		cfg.Security, cfg.AllowPlainText = SecurityNone, true
	case "starttls":
		cfg.Security = SecuritySTARTTLS
	default:
		return cfg, casedesk.Errorf(casedesk.EINVALID, "tls must be none or starttls, not %q", q.Get("tls"))
	}
	cfg.Disposition = Disposition(q.Get("disposition"))
	cfg.MoveTo = q.Get("move_to")
	err = cfg.Validate()
	return cfg, err
}

// Validate reports a configuration that cannot work or would be unsafe.
func (c *MailboxConfig) Validate() error {
	host, _, err := net.SplitHostPort(c.Addr)
	switch {
	case err != nil || host == "":
		return casedesk.Errorf(casedesk.EINVALID, "mailbox address %q is not host:port", c.Addr)
	case c.Username == "":
		return casedesk.Errorf(casedesk.EINVALID, "mailbox %s needs a user name", c.Addr)
	case c.Security != SecurityTLS && c.Security != SecuritySTARTTLS && c.Security != SecurityNone:
		return casedesk.Errorf(casedesk.EINVALID, "unknown connection security %q", c.Security)
	case c.Security == SecurityNone && !isLoopback(host) && !c.AllowPlainText:
		return casedesk.Errorf(casedesk.EINVALID,
			"refusing to send the password for %s in plain text to a non-loopback host; use imaps://, STARTTLS, or opt in with tls=none", c.Addr)
	}
	switch c.Disposition {
	case "":
		c.Disposition = DispositionSeen
	case DispositionSeen, DispositionKeep:
	case DispositionMove:
		if c.MoveTo == "" || c.MoveTo == c.folder() {
			return casedesk.Errorf(casedesk.EINVALID, "disposition move needs move_to, a folder other than %s", c.folder())
		}
	default:
		return casedesk.Errorf(casedesk.EINVALID, "disposition must be seen, move or keep, not %q", c.Disposition)
	}
	return nil
}

func (c *MailboxConfig) folder() string {
	if c.Folder == "" {
		return "INBOX"
	}
	return c.Folder
}

// Name identifies the mailbox in checkpoints, locks and logs:
// user@host:port/folder. It never contains the password.
func (c *MailboxConfig) Name() string {
	return fmt.Sprintf("%s@%s/%s", c.Username, c.Addr, c.folder())
}

// isLoopback reports a host name or address that cannot leave the machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
