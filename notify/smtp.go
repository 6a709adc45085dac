package notify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/casedesk/casedesk"
)

// TLSMode says how the connection to the SMTP server is encrypted.
type TLSMode string

// TLS modes. Only TLSImplicit and TLSStartTLS keep the mail and the password
// from anyone on the network path.
const (
	// TLSImplicit speaks TLS from the first byte (smtps://, port 465).
	TLSImplicit TLSMode = "implicit"
	// TLSStartTLS requires STARTTLS; a server that does not offer it gets no
	// mail. The default for smtp:// URLs.
	TLSStartTLS TLSMode = "starttls"
	// TLSOpportunistic uses STARTTLS when the server offers it and plain
	// text otherwise, so anyone who can strip the offer reads the mail.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSNone never encrypts.
	TLSNone TLSMode = "none"
)

// Defaults of an SMTPConfig.
const (
	// DefaultSMTPTimeout bounds connecting (dial, greeting, EHLO, STARTTLS,
	// AUTH) and, separately, the whole exchange of each message.
	DefaultSMTPTimeout = 30 * time.Second
	// maxSMTPTimeout keeps a typo ("timeout=10h") from stalling a worker.
	maxSMTPTimeout = 10 * time.Minute
	portImplicit   = 465
	portSubmission = 587
	// redacted stands for the password wherever a config is shown.
	redacted = "xxxxx"
)

// SMTPConfig says how to reach the SMTP server that sends outbound mail. It
// is usually parsed from CASEDESK_SMTP_URL by ParseSMTPURL. String, GoString
// and LogValue never show the password.
type SMTPConfig struct {
	Host string
	Port int
	// Username and Password, when set, are sent with SMTP AUTH (PLAIN, or
	// LOGIN when the server offers only that), and only over an encrypted
	// connection or to a loopback host.
	Username string
	Password string
	// TLS is empty for the default: TLSStartTLS, or TLSOpportunistic when
	// Host is a loopback address.
	TLS TLSMode
	// InsecureSkipVerify accepts any server certificate. It is for tests
	// only: with it anyone on the network path can read and change the mail
	// and learn the password.
	InsecureSkipVerify bool
	// RootCAs, when set, replaces the system roots for verifying the server
	// (a private CA, or a test server's certificate). Not set by URLs.
	RootCAs *x509.CertPool
	// Timeout is DefaultSMTPTimeout when zero.
	Timeout time.Duration
	// HELO is the name given in EHLO; the machine's host name when empty.
	HELO string
}

// ParseSMTPURL parses an SMTP server URL:
//
//	smtps://user:pass@host:465          implicit TLS (port 465 by default)
//	smtp://user:pass@host:587           STARTTLS required (port 587 by default)
//	smtp://host:25?tls=opportunistic    STARTTLS when offered, else plain text
//	smtp://host:25?tls=none             plain text, never STARTTLS
//	smtp://127.0.0.1:2525               loopback: opportunistic by default
//
// Other parameters: timeout=10s (see DefaultSMTPTimeout), helo=name, and
// insecure_skip_verify=true, which accepts any certificate and is for tests
// only. Credentials are refused with tls=none to a host that is not
// loopback. Every problem is an EINVALID error that never shows the password.
func ParseSMTPURL(s string) (SMTPConfig, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return SMTPConfig{}, urlParseError(s, err)
	}
	var c SMTPConfig
	switch u.Scheme {
	case "smtps":
		c.TLS, c.Port = TLSImplicit, portImplicit
	case "smtp":
		c.Port = portSubmission
	case "":
		return SMTPConfig{}, invalidURL("missing scheme: want smtp:// or smtps://")
	default:
		return SMTPConfig{}, invalidURL("unsupported scheme %q: want smtp or smtps", u.Scheme)
	}
	if err := c.setAuthority(u); err != nil {
		return SMTPConfig{}, err
	}
	if err := c.setParams(u.RawQuery); err != nil {
		return SMTPConfig{}, err
	}
	c.TLS = c.tlsMode()
	if err := c.Validate(); err != nil {
		return SMTPConfig{}, err
	}
	return c, nil
}

// urlParseError reports a URL that url.Parse rejected. Its errors can quote
// parts of the input, so they are only shown when the input holds no
// credentials.
func urlParseError(s string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && !strings.Contains(s, "@") {
		return invalidURL("%v", ue.Err)
	}
	return invalidURL("malformed URL")
}

// setAuthority reads the host, port and credentials of u, and rejects the
// parts an SMTP URL does not have.
func (c *SMTPConfig) setAuthority(u *url.URL) error {
	if u.Opaque != "" || u.Host == "" {
		return invalidURL("missing host: want %s://host[:port]", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return invalidURL("unexpected path %q", u.Path)
	}
	if u.Fragment != "" {
		return invalidURL("unexpected fragment")
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return invalidURL("invalid port %q", p)
		}
		c.Port = n
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	return nil
}

// setParams applies the query parameters. Unknown and repeated ones are
// errors, so a typo does not silently weaken the connection.
func (c *SMTPConfig) setParams(rawQuery string) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return invalidURL("malformed query: %v", err)
	}
	for key, vals := range q {
		if len(vals) != 1 {
			return invalidURL("parameter %q given %d times", key, len(vals))
		}
		if err := c.setParam(key, vals[0]); err != nil {
			return err
		}
	}
	return nil
}

func (c *SMTPConfig) setParam(key, val string) error {
	switch key {
	case "tls":
		if c.TLS == TLSImplicit {
			return invalidURL("tls=%s: smtps:// always uses implicit TLS; tls= is for smtp:// URLs", val)
		}
		switch m := TLSMode(strings.ToLower(val)); m {
		case TLSStartTLS, TLSOpportunistic, TLSNone:
			c.TLS = m
		default:
			return invalidURL("tls=%q: want starttls, opportunistic or none", val)
		}
	case "insecure_skip_verify":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return invalidURL("insecure_skip_verify=%q: want true or false", val)
		}
		c.InsecureSkipVerify = b
	case "timeout":
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return invalidURL("timeout=%q: want a positive duration such as 10s", val)
		}
		c.Timeout = d
	case "helo":
		c.HELO = val
	default:
		return invalidURL("unknown parameter %q: want tls, timeout, helo or insecure_skip_verify", key)
	}
	return nil
}

// Validate reports the first problem of a config as EINVALID. It is called
// by ParseSMTPURL and NewSender, so a config built by hand is held to the
// same rules as a URL.
func (c SMTPConfig) Validate() error {
	switch {
	case !validHost(c.Host):
		return invalidURL("invalid host %q", c.Host)
	case c.Port < 1 || c.Port > 65535:
		return invalidURL("invalid port %d", c.Port)
	case c.Timeout < 0 || c.Timeout > maxSMTPTimeout:
		return invalidURL("timeout %s outside (0, %s]", c.Timeout, maxSMTPTimeout)
	case c.HELO != "" && !validHELO(c.HELO):
		return invalidURL("invalid helo name %q", c.HELO)
	case c.Username == "" && c.Password != "":
		return invalidURL("password without a user name")
	case c.Username != "" && c.Password == "":
		return invalidURL("user %q has no password", c.Username)
	case strings.ContainsFunc(c.Username+c.Password, isControl):
		return invalidURL("control character in the credentials")
	}
	mode := c.tlsMode()
	switch mode {
	case TLSImplicit, TLSStartTLS, TLSOpportunistic, TLSNone:
	default:
		return invalidURL("unknown tls mode %q", c.TLS)
	}
	if mode == TLSNone && c.InsecureSkipVerify {
		return invalidURL("insecure_skip_verify has no effect with tls=none")
	}
	if mode == TLSNone && c.Username != "" && !isLoopback(c.Host) {
		return invalidURL("refusing to send the password in plain text to %s: use STARTTLS or smtps://", c.Host)
	}
	return nil
}

// tlsMode is the mode in effect: c.TLS, or the default for c.Host.
func (c SMTPConfig) tlsMode() TLSMode {
	if c.TLS != "" {
		return c.TLS
	}
	return defaultTLS(c.Host)
}

// defaultTLS is the mode of an smtp:// URL without tls=: STARTTLS
// required, except to a loopback host, where mail never crosses a network
// and test or local relays often have no certificate.
func defaultTLS(host string) TLSMode {
	if isLoopback(host) {
		return TLSOpportunistic
	}
	return TLSStartTLS
}

// timeout is the timeout in effect.
func (c SMTPConfig) timeout() time.Duration {
	if c.Timeout == 0 {
		return DefaultSMTPTimeout
	}
	return c.Timeout
}

// tlsConfig verifies the server as c.Host, with TLS 1.2 at least.
func (c SMTPConfig) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         c.Host,
		MinVersion:         tls.VersionTLS12,
		RootCAs:            c.RootCAs,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // documented as tests only
	}
}

// String returns the config as a URL with the password replaced by xxxxx.
func (c SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	q := url.Values{}
	switch mode := c.tlsMode(); mode {
	case TLSImplicit:
		u.Scheme = "smtps"
	case defaultTLS(c.Host):
	default:
		q.Set("tls", string(mode))
	}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, redacted)
	}
	if c.InsecureSkipVerify {
		q.Set("insecure_skip_verify", "true")
	}
	if c.Timeout != 0 {
		q.Set("timeout", c.Timeout.String())
	}
	if c.HELO != "" {
		q.Set("helo", c.HELO)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// GoString keeps %#v from printing the password.
func (c SMTPConfig) GoString() string { return "notify.SMTPConfig(" + c.String() + ")" }

// LogValue keeps log/slog, text and JSON alike, from printing the password.
func (c SMTPConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// isLoopback reports whether host is localhost or a loopback address
// (127.0.0.0/8, ::1): mail to it never crosses a network.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHELO reports whether name can follow EHLO: a domain name or an
// address literal, printable ASCII without spaces.
func validHELO(name string) bool {
	if len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		ok := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			strings.IndexByte("-.[]:_", b) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validHost reports whether host is an IP address or a DNS name in ASCII
// (punycode for international names).
func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	if host == "" || len(host) > 253 || host[0] == '-' || host[0] == '.' {
		return false
	}
	for i := 0; i < len(host); i++ {
		b := host[i]
		ok := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '-' || b == '.' || b == '_'
		if !ok {
			return false
		}
	}
	return true
}

func invalidURL(format string, args ...any) error {
	return casedesk.Errorf(casedesk.EINVALID, "smtp url: %s", fmt.Sprintf(format, args...))
}
