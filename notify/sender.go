package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
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
	// StageCommit means the caller's commit before the end of data failed
	// (see Sender.SendCommit): the server was left without the end of
	// data and discarded the message.
	StageCommit Stage = "commit"
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
	client *smtp.Client // nil while not connected
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
	return s.SendCommit(ctx, msg, nil)
}

// SendCommit delivers one built message as Send does and, when commit is
// not nil, calls it once the whole message is with the server but before
// the end of data (the final ".") that makes the server take it:
//
//   - If commit fails, the connection is dropped without the end of data,
//     so the server discards the message, and the error is a temporary
//     *SendError at StageCommit wrapping commit's error.
//   - Once commit has returned nil the end of data is sent whatever
//     happens to ctx; only the configured timeout bounds the server's
//     answer. A nil error means the server took the message; an error at
//     StageData means it refused it, or did not answer, after the commit.
//
// When ctx ends before commit is called, commit is not called. A process
// that dies after commit returned has already handed the end of data to
// the kernel, or is a few instructions away from it, so what commit
// records and what the server receives agree.
func (s *Sender) SendCommit(ctx context.Context, msg *mail.Msg, commit func(endData func()) error) error {
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
	err := s.send(ctx, msg, commit, reused)
	var se *SendError
	if reused && errors.As(err, &se) && se.Stage == StageConnect && ctx.Err() == nil {
		// The kept connection failed its check before anything was sent,
		// usually because the server closed it while idle: try a new one.
		if err := s.connect(ctx); err != nil {
			return err
		}
		err = s.send(ctx, msg, commit, false)
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
	err := s.client.UpdateDeadline(s.cfg.timeout())
	if err == nil {
		err = s.client.Quit()
	}
	s.drop()
	if err != nil {
		return fmt.Errorf("smtp quit: %w", err)
	}
	return nil
}

// connect opens a connection and sets s.client. ctx bounds the whole setup,
// not only the dial, so a cancelled worker does not wait for a slow server.
// go-mail does the setup: greeting, EHLO, STARTTLS as the TLS mode says,
// and AUTH with plainOrLogin.
func (s *Sender) connect(ctx context.Context) error {
	s.drop()
	s.conn = &connCutter{}
	mc, err := mail.NewClient(s.cfg.Host, s.clientOptions()...)
	if err != nil {
		return &SendError{Stage: StageConnect, Text: err.Error(), Err: err}
	}
	stop := context.AfterFunc(ctx, s.conn.cut)
	client, err := mc.DialToSMTPClientWithContext(ctx)
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

// send runs one mail transaction on the current connection, with commit
// (if any) before the end of data, and decides whether the connection can
// be kept. Until commit is called, cancelling ctx cuts the connection.
func (s *Sender) send(ctx context.Context, msg *mail.Msg, commit func(endData func()) error, reused bool) error {
	stop := context.AfterFunc(ctx, s.conn.cut)
	data, se := s.transfer(msg, reused)
	if se == nil && commit != nil {
		if !stop() {
			// ctx ended and the connection is cut: the end of data can no
			// longer go out, and nothing may be recorded as sent.
			s.drop()
			err := ctx.Err()
			return &SendError{Stage: StageData, Text: err.Error(), Err: err}
		}
		return s.commitAndEnd(data, commit)
	}
	if se == nil {
		se = s.endData(data)
	}
	if !stop() {
		// ctx was cancelled during the exchange and the connection cut.
		s.drop()
		if se == nil {
			return nil // the server took the message before the cut
		}
		se.Permanent = false
		se.Err = errors.Join(ctx.Err(), se.Err)
		return se
	}
	return s.settle(se)
}

// transfer runs a mail transaction up to the end of data, as go-mail's
// SendWithSMTPClient does (connection check, 8BITMIME check, envelope from
// the message, MAIL, RCPT for every recipient, DATA, the content), and
// returns the data writer with everything written through to the socket
// except the final ".". A kept connection is checked with NOOP first.
func (s *Sender) transfer(msg *mail.Msg, reused bool) (io.WriteCloser, *SendError) {
	c := s.client
	if reused {
		if err := c.Noop(); err != nil {
			return nil, &SendError{Stage: StageConnect, Text: "connection check: " + oneLine(err.Error()), Err: err}
		}
	}
	if err := c.UpdateDeadline(s.cfg.timeout()); err != nil {
		return nil, &SendError{Stage: StageConnect, Text: oneLine(err.Error()), Err: err}
	}
	if msg.Encoding() == mail.NoEncoding.String() {
		if ok, _ := c.Extension("8BITMIME"); !ok {
			err := errors.New("the message is 8bit and the server does not offer 8BITMIME")
			return nil, &SendError{Permanent: true, Stage: StageMessage, Text: err.Error(), Err: err}
		}
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return nil, &SendError{Permanent: true, Stage: StageMessage, Text: err.Error(), Err: err}
	}
	rcpts, err := msg.GetRecipients()
	if err != nil {
		return nil, &SendError{Permanent: true, Stage: StageMessage, Text: err.Error(), Err: err}
	}
	if err := c.Mail(from); err != nil {
		return nil, s.replyError(StageMail, err)
	}
	// Like go-mail, offer every recipient and report the last refusal.
	var rcptErr error
	for _, rcpt := range rcpts {
		if err := c.Rcpt(rcpt); err != nil {
			rcptErr = err
		}
	}
	if rcptErr != nil {
		return nil, s.replyError(StageRcpt, rcptErr)
	}
	data, err := c.Data()
	if err != nil {
		return nil, s.replyError(StageData, err)
	}
	if _, err := msg.WriteTo(data); err != nil {
		return nil, s.replyError(StageData, err)
	}
	// Push the content out now, so that after a commit only the end of
	// data is left to write.
	if err := c.Text.W.Flush(); err != nil {
		return nil, s.replyError(StageData, err)
	}
	return data, nil
}

// commitAndEnd calls commit and ends the data either from inside it (the
// store sends the end of data right behind its COMMIT) or after it
// returned nil: the server takes the message only when commit succeeded,
// or is at least on its way to the database.
func (s *Sender) commitAndEnd(data io.WriteCloser, commit func(endData func()) error) error {
	// The end of data and the answer get the whole timeout, however long
	// the message took.
	if err := s.client.UpdateDeadline(s.cfg.timeout()); err != nil {
		s.drop()
		return &SendError{Stage: StageData, Text: oneLine(err.Error()), Err: err}
	}
	ended := false
	var endErr *SendError
	err := commit(func() {
		if !ended {
			ended = true
			endErr = s.endData(data)
		}
	})
	switch {
	case err != nil && !ended:
		// Without the end of data the server discards the message.
		s.drop()
		return &SendError{Stage: StageCommit, Text: oneLine(err.Error()), Err: err}
	case err != nil:
		// The end of data went out behind a COMMIT that then failed: the
		// server may have the message while the outbox does not say so.
		// The item is sent again later, under the same Message-ID.
		s.settle(endErr)
		return &SendError{Stage: StageCommit, Text: "after the end of data: " + oneLine(err.Error()), Err: err}
	case !ended:
		endErr = s.endData(data)
	}
	return s.settle(endErr)
}

// endData sends the final "." and reads the server's answer to the
// message.
func (s *Sender) endData(data io.WriteCloser) *SendError {
	if err := data.Close(); err != nil {
		return s.replyError(StageData, err)
	}
	return nil
}

// settle decides, after a failure, whether the connection can be kept:
// after a reply it is reset with RSET for the next message; without one
// its state is unknown and it is dropped. It returns se as an error.
func (s *Sender) settle(se *SendError) error {
	switch {
	case se == nil:
		return nil
	case se.Stage == StageMessage:
		// Nothing reached the server; the connection is as it was.
	case se.Stage == StageConnect, se.Code == 0:
		s.drop()
	case s.client.Reset() != nil:
		// Without a clean state the next MAIL FROM would fail too.
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

// replyError classifies a failed command at stage by the server's reply
// code (a timeout or a dropped connection has none, and is temporary),
// with the enhanced status code when the server announced them.
func (s *Sender) replyError(stage Stage, err error) *SendError {
	se := &SendError{Stage: stage, Err: err}
	var te *textproto.Error
	if errors.As(err, &te) {
		se.Code, se.Text = te.Code, oneLine(te.Msg)
		if ok, _ := s.client.Extension("ENHANCEDSTATUSCODES"); ok {
			se.EnhancedCode = enhancedCode(se.Text)
		}
	} else {
		se.Text = oneLine(err.Error())
	}
	se.Permanent = permanent(stage, se.Code)
	return se
}

// enhancedCode returns the RFC 3463 status a reply text starts with
// ("5.1.1 No such user"), or "".
func enhancedCode(text string) string {
	code, _, _ := strings.Cut(text, " ")
	parts := strings.Split(code, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.ContainsAny(parts[0], "245") {
		return ""
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return ""
		}
	}
	return code
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
