package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jhillyerd/enmime/v2"
)

// sinkMaxMessageBytes bounds one message, far above anything the engine
// sends, so an oversized message is a visible failure rather than a hang.
const sinkMaxMessageBytes = 64 << 20

// Received is one message the SMTP sink accepted. Do not modify Data: it
// is shared by every copy that Messages returns.
type Received struct {
	MailFrom string   // the MAIL FROM address ("" for a bounce)
	Rcpt     []string // the RCPT TO addresses, in order
	Data     []byte   // the message as sent, dot-unstuffed
	User     string   // the AUTH PLAIN user name, or "" without AUTH
	Received time.Time
}

// Header returns the first value of the message's header field key, RFC
// 2047 words decoded, or "" when there is none.
func (r Received) Header(key string) string { return headerOf(r.Data, key) }

// Envelope parses the message with enmime, failing the test if it cannot.
func (r Received) Envelope(t testing.TB) *enmime.Envelope {
	t.Helper()
	env, err := enmime.ReadEnvelope(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("parse message to %v: %v", r.Rcpt, err)
	}
	return env
}

// Text returns the message's text body, transfer encoding (such as
// quoted-printable) and charset decoded; for multipart/alternative, the
// text/plain part.
func (r Received) Text(t testing.TB) string {
	t.Helper()
	return r.Envelope(t).Text
}

// SMTPSink is an SMTP server on a loopback port that accepts every message,
// with or without AUTH PLAIN (any password), over plain text, and keeps
// what it receives in memory.
type SMTPSink struct {
	srv  *smtp.Server
	addr string

	mu   sync.Mutex
	msgs []Received
}

// startSMTPSink starts an SMTP sink for the test and closes it when the
// test ends.
func startSMTPSink(t testing.TB) *SMTPSink {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtp sink: %v", err)
	}
	s := &SMTPSink{addr: l.Addr().String()}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &sinkSession{sink: s}, nil
	}))
	s.srv.Domain = "sink.localhost"
	s.srv.AllowInsecureAuth = true // loopback, and the engine may send a password
	s.srv.MaxMessageBytes = sinkMaxMessageBytes
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	// Connection errors would be logged after the test when it is closed.
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(l) }()
	t.Cleanup(func() {
		s.srv.Close()
		if err := <-served; err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Errorf("smtp sink: %v", err)
		}
	})
	return s
}

// Addr returns the listener's address, 127.0.0.1:port.
func (s *SMTPSink) Addr() string { return s.addr }

// URL returns the engine's SMTP URL for the sink. The engine speaks plain
// text to a loopback host that offers no STARTTLS.
func (s *SMTPSink) URL() string { return "smtp://" + s.addr }

// Messages returns a copy of the list of messages received so far, oldest
// first.
func (s *SMTPSink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Count returns how many messages the sink has received.
func (s *SMTPSink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *SMTPSink) record(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, r)
}

// WaitFor waits up to timeout for cond to hold on the messages received so
// far, and returns them. If it does not, the test fails with a summary of
// what did arrive.
func (s *SMTPSink) WaitFor(t testing.TB, timeout time.Duration, cond func([]Received) bool) []Received {
	t.Helper()
	msgs, err := s.waitFor(timeout, cond)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// waitFor is WaitFor returning an error instead of failing the test. cond
// is evaluated again only when a message has arrived.
func (s *SMTPSink) waitFor(timeout time.Duration, cond func([]Received) bool) ([]Received, error) {
	var msgs []Received
	checked := -1
	err := poll(timeout, func() error {
		if s.Count() == checked {
			return errors.New("condition not met")
		}
		msgs = s.Messages()
		checked = len(msgs)
		if !cond(msgs) {
			return errors.New("condition not met")
		}
		return nil
	})
	if err != nil {
		return msgs, fmt.Errorf("smtp sink: %w; %s", err, summarize(msgs))
	}
	return msgs, nil
}

// summaryLimit is how many messages a failure lists one by one.
const summaryLimit = 20

// summarize describes msgs for a failure message, one line each.
func summarize(msgs []Received) string {
	if len(msgs) == 0 {
		return "no message arrived"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d message(s) arrived:", len(msgs))
	for i, m := range msgs {
		if i == summaryLimit {
			fmt.Fprintf(&b, "\n  ... and %d more", len(msgs)-summaryLimit)
			break
		}
		fmt.Fprintf(&b, "\n  %d. %s from <%s> to %v, Subject %q, %d bytes",
			i+1, m.Received.Format("15:04:05.000"), m.MailFrom, m.Rcpt, m.Header("Subject"), len(m.Data))
	}
	return b.String()
}

// sinkSession is one SMTP connection to the sink. go-smtp calls its
// methods from the connection's goroutine only.
type sinkSession struct {
	sink *SMTPSink
	user string
	from string
	rcpt []string
}

var _ smtp.AuthSession = (*sinkSession)(nil)

// AuthMechanisms offers PLAIN, for clients that log in whenever they can.
func (s *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth accepts any PLAIN user name and password and remembers the name.
func (s *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, _ string) error {
		s.user = username
		return nil
	}), nil
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpt = append(s.rcpt, to)
	return nil
}

// Data keeps the message and ends the transaction; the connection may
// carry more.
func (s *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.record(Received{MailFrom: s.from, Rcpt: s.rcpt, Data: data, User: s.user, Received: time.Now()})
	s.rcpt = nil // recorded: the next transaction starts a new list
	return nil
}

func (s *sinkSession) Reset() {
	s.from, s.rcpt = "", nil
}

func (s *sinkSession) Logout() error { return nil }
