package notify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/casedesk/casedesk/internal/testcert"
	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// serverOptions configure a testServer.
type serverOptions struct {
	startTLS    bool     // offer STARTTLS, with a self-signed certificate
	implicitTLS bool     // speak TLS from the first byte, like port 465
	mechs       []string // AUTH mechanisms to offer: PLAIN, LOGIN
	// insecureAuth offers AUTH on connections without TLS.
	insecureAuth bool
	users        map[string]string // user name -> password
	discard      bool              // count messages but keep no bytes nor count them as they come (benchmarks)
}

// fault is an injected answer to one command.
type fault struct {
	code     int // a 4xx or 5xx reply ...
	enhanced gosmtp.EnhancedCode
	text     string
	hang     bool // ... or no answer until the test ends
	drop     bool // ... or the connection closed without an answer
}

// received is one message the test server accepted.
type received struct {
	From string
	To   []string
	Raw  []byte
	User string // the authenticated user, if any
}

// testServer is an in-process SMTP server (go-smtp) on 127.0.0.1 that
// records every accepted message, counts connections, and answers the
// next commands with injected faults. It is closed when the test ends.
type testServer struct {
	opts  serverOptions
	srv   *gosmtp.Server
	port  int
	pool  *x509.CertPool // trusts the server's certificate
	conns atomic.Int32
	// dataRead counts the content bytes of the DATA under way read so
	// far; dataBegun and dataEnded count DATA commands that began and
	// that ended, with the message taken or not.
	dataRead  atomic.Int64
	dataBegun atomic.Int32
	dataEnded atomic.Int32
	// release ends every hang when the test is over.
	release chan struct{}

	mu       sync.Mutex
	msgs     []received
	count    int
	faults   map[string][]fault // by command: mail, rcpt, data
	sessions []*gosmtp.Conn
	mechUsed []string
}

func newTestServer(tb testing.TB, opts serverOptions) *testServer {
	tb.Helper()
	s := &testServer{opts: opts, release: make(chan struct{}), faults: map[string][]fault{}}
	s.srv = gosmtp.NewServer(gosmtp.BackendFunc(s.newSession))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = opts.insecureAuth
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	var tlsConfig *tls.Config
	if opts.startTLS || opts.implicitTLS {
		tlsConfig, s.pool = testcert.New(tb)
	}
	if opts.startTLS {
		s.srv.TLSConfig = tlsConfig
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	var l net.Listener = countingListener{Listener: ln, n: &s.conns}
	if opts.implicitTLS {
		l = tls.NewListener(l, tlsConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(l)
	}()
	tb.Cleanup(func() {
		close(s.release)
		s.srv.Close()
		// Close only closes the listeners Serve has registered, which it
		// may not have done yet.
		ln.Close()
		<-done
	})
	return s
}

// config returns a Sender config for this server: loopback, so
// opportunistic TLS by default, trusting the server's certificate, and a
// short timeout.
func (s *testServer) config() SMTPConfig {
	c := SMTPConfig{Host: "127.0.0.1", Port: s.port, RootCAs: s.pool, Timeout: 5 * time.Second}
	if s.opts.implicitTLS {
		c.TLS = TLSImplicit
	}
	return c
}

// failNext answers the next n commands cmd ("mail", "rcpt" or "data")
// with f.
func (s *testServer) failNext(cmd string, n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[cmd] = append(s.faults[cmd], f)
	}
}

// received returns the accepted messages so far.
func (s *testServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// accepted returns how many messages were accepted.
func (s *testServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// connections returns how many connections were accepted.
func (s *testServer) connections() int { return int(s.conns.Load()) }

// mechanisms returns the AUTH mechanisms clients used.
func (s *testServer) mechanisms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mechUsed...)
}

// closeConnections closes every open connection without a word, as a
// server that times out idle clients does.
func (s *testServer) closeConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sessions {
		c.Conn().Close()
	}
	s.sessions = nil
}

func (s *testServer) take(cmd string) (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[cmd]
	if len(q) == 0 {
		return fault{}, false
	}
	s.faults[cmd] = q[1:]
	return q[0], true
}

func (s *testServer) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = append(s.sessions, c)
	return &testSession{s: s, conn: c}, nil
}

// errDropped is returned after a session closed its own connection.
var errDropped = errors.New("connection dropped by the test")

// testSession is one SMTP session of a testServer.
type testSession struct {
	s    *testServer
	conn *gosmtp.Conn
	user string
	from string
	to   []string
}

// inject applies the next fault for cmd, if any.
func (se *testSession) inject(cmd string) error {
	f, ok := se.s.take(cmd)
	if !ok {
		return nil
	}
	return se.apply(f)
}

// apply answers with f: a reply, a hang until the test ends, or a closed
// connection.
func (se *testSession) apply(f fault) error {
	switch {
	case f.hang:
		<-se.s.release
		return errDropped
	case f.drop:
		se.conn.Conn().Close()
		return errDropped
	}
	return &gosmtp.SMTPError{Code: f.code, EnhancedCode: f.enhanced, Message: f.text}
}

func (se *testSession) AuthMechanisms() []string { return se.s.opts.mechs }

func (se *testSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := se.s.opts.users[user]; !ok || want != pass {
			return gosmtp.ErrAuthFailed
		}
		se.user = user
		se.s.mu.Lock()
		se.s.mechUsed = append(se.s.mechUsed, mech)
		se.s.mu.Unlock()
		return nil
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case "LOGIN":
		return &loginServer{check: check}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (se *testSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if len(se.s.opts.mechs) > 0 && se.user == "" {
		return gosmtp.ErrAuthRequired
	}
	if err := se.inject("mail"); err != nil {
		return err
	}
	se.from = from
	return nil
}

func (se *testSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if err := se.inject("rcpt"); err != nil {
		return err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *testSession) Data(r io.Reader) error {
	se.s.dataRead.Store(0)
	se.s.dataBegun.Add(1)
	defer se.s.dataEnded.Add(1)
	if !se.s.opts.discard {
		r = countingReader{r: r, n: &se.s.dataRead}
	}
	if f, ok := se.s.take("data"); ok {
		if !f.hang && !f.drop {
			// A rejection after the content, as a content filter gives.
			io.Copy(io.Discard, r)
		}
		return se.apply(f)
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	se.s.count++
	if !se.s.opts.discard {
		se.s.msgs = append(se.s.msgs, received{From: se.from, To: se.to, Raw: raw, User: se.user})
	}
	return nil
}

func (se *testSession) Reset() { se.from, se.to = "", nil }

func (se *testSession) Logout() error { return nil }

// loginServer is the server side of SASL LOGIN, which go-sasl lacks:
// "Username:", "Password:", each answered in turn.
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(response)
		return []byte("Password:"), false, nil
	}
	return nil, true, l.check(l.user, string(response))
}

// contentRead returns how many content bytes of the DATA under way (or
// the last one) the server has read: go-smtp hands the content over as it
// arrives, and the message is taken only after the final ".".
func (s *testServer) contentRead() int64 { return s.dataRead.Load() }

// dataStarted returns how many DATA commands began.
func (s *testServer) dataStarted() int { return int(s.dataBegun.Load()) }

// dataDone returns how many DATA commands ended, with the message taken
// or not (refused, or the connection lost before the final ".").
func (s *testServer) dataDone() int { return int(s.dataEnded.Load()) }

// countingReader counts the bytes read through it. It reads one byte at
// a time: go-smtp's data reader returns only once it has filled the
// buffer, so a larger one would hide the bytes that arrived.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}
