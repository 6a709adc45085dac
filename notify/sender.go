package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/casedesk/casedesk"
	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// Stage names the step of the SMTP exchange a send failed in.
type Stage string

// Stages of sending one message.
const (
	// StageConnect is dialing, the greeting, EHLO, STARTTLS and AUTH, and the
	// check that a kept connection still works. A failure here is about the
	// server or the configuration, not the message: the worker should stop
	// the batch rather than spend every message's attempts.
	StageConnect Stage = "connect"
	// StageMessage means the message itself cannot be sent (no sender or no
	// recipients); nothing reached the server.
	StageMessage Stage = "message"
	StageMail    Stage = "mail" // MAIL FROM
	StageRcpt    Stage = "rcpt" // RCPT TO
	StageData    Stage = "data" // DATA, the content and the reply to it
)

// SendError is a failed delivery of one message. Permanent failures (SMTP
// 5xx replies to the message, or a message that cannot be sent at all) will
// fail again and must not be retried; everything else (4xx replies,
// network errors, timeouts, dropped connections, any connect failure) may
// succeed later.
type SendError struct {
	Permanent bool
	Stage     Stage
	// Code is the SMTP reply code, 0 when the server gave none.
	Code int
	// EnhancedCode is the RFC 3463 status ("5.1.1") when the server sent one.
	EnhancedCode string
	// Text is the server's reply text, or what went wrong when there was no
	// reply. It holds no credentials.
	Text string
	// Err is the underlying error.
	Err error
}

// Error implements the error interface.
func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("smtp %s: %d %s (%s)", e.Stage, e.Code, e.Text, kind)
	}
	return fmt.Sprintf("smtp %s: %s (%s)", e.Stage, e.Text, kind)
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err means the message will never be sent
// however often it is retried: a permanent *SendError, or an EINVALID error
// from Build. Any other error, and nil, is not permanent.
func IsPermanent(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Permanent
	}
	return err != nil && casedesk.ErrorCode(err) == casedesk.EINVALID
}

// permanent decides whether a failure at stage with SMTP reply code (0 for
// none) is permanent. Connect failures never are: a wrong password or a
// server that refuses everyone is fixed by the operator, and the mail should
// still be waiting then.
func permanent(stage Stage, code int) bool {
	switch {
	case stage == StageConnect:
		return false
	case code >= 500 && code <= 599:
		return true
	case code >= 400 && code <= 499:
		return false
	case stage == StageMessage:
		return true
	}
	// No reply at all: a network error, a timeout or a dropped connection.
	return false
}

// Sender delivers messages through one SMTP server. It connects on the
// first Send and keeps the connection for the next ones, so a batch costs
// one connection; a connection the server has dropped meanwhile is replaced
// without failing a message. Call Close after a batch. A Sender is safe for
// concurrent use, but sends one message at a time; use several Senders to
// send in parallel.
type Sender struct {
	cfg SMTPConfig

	mu     sync.Mutex
	client *mail.Client // nil while not connected
	conn   *connCutter  // the current connection
}

// NewSender returns a Sender for cfg. It does not connect.
func NewSender(cfg SMTPConfig) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg}, nil
}

// Send delivers one built message, connecting first if needed. A nil error
// means the server accepted the message; otherwise the error is a
// *SendError saying whether the failure is permanent. Cancelling ctx
// abandons the exchange at once (a temporary failure that wraps ctx.Err()).
// Each message's exchange must finish within the configured timeout.
func (s *Sender) Send(ctx context.Context, msg *mail.Msg) error {
	if msg == nil {
		return casedesk.Errorf(casedesk.EINVALID, "no message to send")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return &SendError{Stage: StageConnect, Text: err.Error(), Err: err}
	}
	reused := s.client != nil
	if !reused {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	err := s.send(ctx, msg)
	var se *SendError
	if reused && errors.As(err, &se) && se.Stage == StageConnect && ctx.Err() == nil {
		// The kept connection failed its check before anything was sent,
		// usually because the server closed it while idle: try a new one.
		if err := s.connect(ctx); err != nil {
			return err
		}
		err = s.send(ctx, msg)
	}
	return err
}

// Close ends the connection with QUIT. The connection is closed even when
// QUIT fails, and the next Send connects again.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.drop()
	if err != nil {
		return fmt.Errorf("smtp quit: %w", err)
	}
	return nil
}

// connect opens a connection and sets s.client. ctx bounds the whole setup,
// not only the dial, so a cancelled worker does not wait for a slow server.
func (s *Sender) connect(ctx context.Context) error {
	s.drop()
	s.conn = &connCutter{}
	client, err := mail.NewClient(s.cfg.Host, s.clientOptions()...)
	if err != nil {
		return &SendError{Stage: StageConnect, Text: err.Error(), Err: err}
	}
	stop := context.AfterFunc(ctx, s.conn.cut)
	err = client.DialWithContext(ctx)
	cancelled := !stop()
	if err == nil && !cancelled {
		s.client = client
		return nil
	}
	// go-mail leaves the socket open when the setup fails after the dial.
	s.drop()
	if cancelled {
		err = errors.Join(ctx.Err(), err)
	}
	return connectError(s.cfg, err)
}

// clientOptions configures go-mail for s.cfg. The dial is ours, so that
// cancelling ctx can cut the connection and implicit TLS uses our config.
func (s *Sender) clientOptions() []mail.Option {
	policy := mail.TLSMandatory
	switch s.cfg.tlsMode() {
	case TLSImplicit, TLSNone:
		policy = mail.NoTLS // implicit TLS is done by dial
	case TLSOpportunistic:
		policy = mail.TLSOpportunistic
	}
	opts := []mail.Option{
		mail.WithPort(s.cfg.Port),
		mail.WithTimeout(s.cfg.timeout()),
		mail.WithTLSPolicy(policy),
		mail.WithTLSConfig(s.cfg.tlsConfig()),
		mail.WithDialContextFunc(s.dial),
	}
	if s.cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(s.cfg.HELO))
	}
	if s.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuthCustom(&plainOrLogin{
			user: s.cfg.Username, pass: s.cfg.Password, loopback: isLoopback(s.cfg.Host),
		}))
	}
	return opts
}

// dial connects to the server, with TLS from the start in implicit mode,
// and remembers the connection so that it can be cut.
func (s *Sender) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	if s.cfg.tlsMode() == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: s.cfg.tlsConfig()}).DialContext(ctx, network, addr)
	} else {
		conn, err = d.DialContext(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	s.conn.set(conn)
	return conn, nil
}

// send hands one message to go-mail on the current connection and decides
// whether the connection can be kept.
func (s *Sender) send(ctx context.Context, msg *mail.Msg) error {
	stop := context.AfterFunc(ctx, s.conn.cut)
	err := s.client.Send(msg)
	if !stop() {
		// ctx was cancelled during the exchange and the connection cut.
		s.drop()
		if err == nil {
			return nil
		}
		if se := classify(err); se != nil {
			se.Permanent = false
			se.Err = errors.Join(ctx.Err(), err)
			return se
		}
		return nil // delivered; only the RSET after it was cut
	}
	if err == nil {
		return nil
	}
	se := classify(err)
	switch {
	case se == nil:
		// Delivered; only the RSET after it failed.
		s.drop()
		return nil
	case se.Stage == StageMessage:
		// Nothing reached the server; the connection is as it was.
	case se.Code == 0:
		// No reply: the connection is in an unknown state.
		s.drop()
	case s.client.Reset() != nil:
		// go-mail does not RSET after a failed DATA; without a clean
		// state the next MAIL FROM would fail too.
		s.drop()
	}
	return se
}

// drop abandons the current connection without QUIT.
func (s *Sender) drop() {
	if s.conn != nil {
		s.conn.cut()
	}
	s.client, s.conn = nil, nil
}

// classify turns a go-mail send error into a *SendError, or nil when the
// message was delivered and only the RSET after it failed. go-mail's own
// IsTemp is true only for 4xx replies, so a timeout or a dropped
// connection would look permanent; the reply code decides here instead.
func classify(err error) *SendError {
	var me *mail.SendError
	if !errors.As(err, &me) {
		return &SendError{Stage: StageData, Text: err.Error(), Err: err}
	}
	var stage Stage
	switch me.Reason {
	case mail.ErrSMTPReset:
		return nil
	case mail.ErrConnCheck:
		stage = StageConnect
	case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
		stage = StageMessage
	case mail.ErrSMTPMailFrom:
		stage = StageMail
	case mail.ErrSMTPRcptTo:
		stage = StageRcpt
	default: // DATA, the content, the final reply, or ambiguous
		stage = StageData
	}
	code := me.ErrorCode()
	return &SendError{
		Permanent:    permanent(stage, code),
		Stage:        stage,
		Code:         code,
		EnhancedCode: me.EnhancedStatusCode(),
		Text:         sendErrorText(me, code),
		Err:          err,
	}
}

// sendErrorText digs the server's reply text out of a go-mail SendError,
// which keeps the raw errors unexported and only shows them in Error():
// "<reason>: <code> <text>[, affected recipient(s): ...][, affected
// message ID: ...]", where net/textproto quotes the text since Go 1.26.
func sendErrorText(me *mail.SendError, code int) string {
	s := strings.TrimSpace(strings.TrimPrefix(me.Error(), me.Reason.String()+":"))
	if code != 0 {
		s = strings.TrimSpace(strings.TrimPrefix(s, strconv.Itoa(code)))
		if q, err := strconv.QuotedPrefix(s); err == nil {
			if text, err := strconv.Unquote(q); err == nil {
				return oneLine(text)
			}
		}
	}
	for _, marker := range []string{", affected recipient(s): ", ", affected message ID: "} {
		if i := strings.Index(s, marker); i >= 0 {
			s = s[:i]
		}
	}
	return oneLine(s)
}

// connectError classifies a failure to set up a connection: always
// temporary, with the server's reply code and text when there was one.
func connectError(cfg SMTPConfig, err error) *SendError {
	se := &SendError{Stage: StageConnect, Err: err}
	var te *textproto.Error
	if errors.As(err, &te) {
		se.Code, se.Text = te.Code, oneLine(te.Msg)
	} else {
		se.Text = oneLine(err.Error())
	}
	se.Text = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)) + ": " + se.Text
	return se
}

// oneLine joins the lines of a multi-line reply.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// connCutter holds one connection so that another goroutine (a cancelled
// context) can close it, even before the dial has returned it.
type connCutter struct {
	mu   sync.Mutex
	conn net.Conn
	done bool
}

func (c *connCutter) set(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	if c.done {
		conn.Close()
	}
}

func (c *connCutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.conn != nil {
		c.conn.Close()
	}
}

// plainOrLogin is SMTP AUTH with PLAIN, or LOGIN when the server offers
// only that. It refuses to send the password over a connection that is
// neither encrypted nor to a loopback host, whatever the server offers.
type plainOrLogin struct {
	user, pass string
	loopback   bool
	mech       smtp.Auth
}

// errUnencryptedAuth is the refusal of plainOrLogin.
var errUnencryptedAuth = errors.New("refusing SMTP AUTH over an unencrypted connection to a host that is not loopback")

func (a *plainOrLogin) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !a.loopback {
		return "", nil, errUnencryptedAuth
	}
	switch {
	case slices.Contains(server.Auth, "PLAIN"):
		a.mech = smtp.PlainAuth("", a.user, a.pass, server.Name, true)
	case slices.Contains(server.Auth, "LOGIN"):
		a.mech = smtp.LoginAuth(a.user, a.pass, server.Name, true)
	case len(server.Auth) == 0:
		return "", nil, errors.New("the URL has credentials but the server offers no SMTP AUTH")
	default:
		return "", nil, fmt.Errorf("the server offers SMTP AUTH %s; casedesk supports PLAIN and LOGIN",
			strings.Join(server.Auth, " "))
	}
	return a.mech.Start(server)
}

func (a *plainOrLogin) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.mech.Next(fromServer, more)
}
