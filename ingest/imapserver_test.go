package ingest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
)

const (
	testUser     = "support@acme.example"
	testPassword = "s3cret"
)

// testIMAP is an in-process IMAP server (go-imap's own server with its
// in-memory backend) on a loopback port, with injectable connection cuts.
type testIMAP struct {
	user *imapmemserver.User
	addr string
	ln   *cuttingListener
	// onIdle, if set, runs as each IDLE begins: after the server has
	// answered "+ idling" and before it reports any change.
	onIdle atomic.Pointer[func()]
}

type imapOptions struct {
	caps imap.CapSet // IMAP4rev1 with MOVE and UIDPLUS when nil
	// implicitTLS serves TLS from the first byte; starttls offers STARTTLS.
	implicitTLS, starttls *tls.Config
}

func newTestIMAP(t testing.TB, o imapOptions) *testIMAP {
	t.Helper()
	user := imapmemserver.NewUser(testUser, testPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	caps := o.caps
	if caps == nil {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}
	}
	s := &testIMAP{user: user}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &testSession{UserSession: imapmemserver.NewUserSession(user), srv: s}, nil, nil
		},
		Caps:         caps,
		TLSConfig:    o.starttls,
		InsecureAuth: o.starttls == nil,
		Logger:       log.New(io.Discard, "", 0),
	})
	var inner net.Listener
	var err error
	if o.implicitTLS != nil {
		inner, err = tls.Listen("tcp", "127.0.0.1:0", o.implicitTLS)
	} else {
		inner, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	s.ln, s.addr = &cuttingListener{Listener: inner}, inner.Addr().String()
	go srv.Serve(s.ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// idleCheck is how often an idling testSession looks for changes that its
// tracker did not signal.
const idleCheck = 20 * time.Millisecond

// testSession is the in-memory backend's session with IDLE made to report
// every change, as Dovecot's does. go-imap's tracker (v2.0.0-beta.8,
// imapserver/tracker.go SessionTracker.Idle) only signals changes queued
// after it starts listening, which is after "+ idling" went out; a message
// that arrives after the last command's poll and before that would wait
// for the client's next command. Dovecot listens, then checks at once
// (src/imap/cmd-idle.c: "if they came before we added mailbox-notifier,
// we wouldn't see them otherwise"), and again every
// mailbox_idle_check_interval. The backend offers no way to listen before
// checking, so this checks first and then every idleCheck.
type testSession struct {
	*imapmemserver.UserSession // its Login accepts only the one user
	srv                        *testIMAP
}

// Idle writes mailbox updates until stop is closed.
func (s *testSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if f := s.srv.onIdle.Load(); f != nil {
		(*f)()
	}
	for {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		again := make(chan struct{})
		go func() {
			t := time.NewTimer(idleCheck)
			defer t.Stop()
			select {
			case <-stop:
			case <-t.C:
			}
			close(again)
		}()
		if err := s.UserSession.Idle(w, again); err != nil {
			return err
		}
		<-again // Idle returns at once without a selected mailbox
		select {
		case <-stop:
			return nil
		default:
		}
	}
}

// cuttingListener counts connections and can cut the next one after the
// server has written a number of bytes to it.
type cuttingListener struct {
	net.Listener
	accepted atomic.Int32
	cutAfter atomic.Int64 // for the next connection; 0: never
}

func (l *cuttingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	if n := l.cutAfter.Swap(0); n > 0 {
		return &cutConn{Conn: c, left: n}, nil
	}
	return c, nil
}

// cutConn drops the connection once left bytes have been written.
type cutConn struct {
	net.Conn
	mu   sync.Mutex
	left int64
}

func (c *cutConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(b)) < c.left {
		c.left -= int64(len(b))
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:c.left])
	c.left = 0
	c.Conn.Close()
	return n, net.ErrClosed
}

// literal is a message body for Append.
type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// appendMessages adds messages first..first+n-1 to folder and returns
// their Message-IDs (without brackets).
func (s *testIMAP) appendMessages(t testing.TB, folder string, first, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := first; i < first+n; i++ {
		id, raw := testMessage(i)
		if _, err := s.user.Append(folder, literal{bytes.NewReader(raw)}, &imap.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// appendRaw adds one message as given.
func (s *testIMAP) appendRaw(t testing.TB, folder string, raw []byte, flags ...imap.Flag) {
	t.Helper()
	if _, err := s.user.Append(folder, literal{bytes.NewReader(raw)}, &imap.AppendOptions{Flags: flags}); err != nil {
		t.Fatal(err)
	}
}

// testMessage is support mail number i: a customer writing in, 1-3 KB.
func testMessage(i int) (id string, raw []byte) {
	id = fmt.Sprintf("m%d.poller@customer.example", i)
	body := strings.Repeat(fmt.Sprintf("Line %d of the report about the printer that does not print.\r\n", i), 15+i%30)
	return id, fmt.Appendf(nil, "Message-ID: <%s>\r\nFrom: Cara Customer <cara%d@customer.example>\r\n"+
		"To: support@acme.example\r\nSubject: Printer problem %d\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s", id, i%7, i, body)
}

// mailbox returns, for every message in folder, whether it is \Seen, by
// Message-ID, as a second client sees it.
func (s *testIMAP) mailbox(t testing.TB, folder string) map[string]bool {
	t.Helper()
	c, err := imapclient.DialInsecure(s.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	if sel.NumMessages == 0 {
		return out
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		id := strings.Trim(m.Envelope.MessageID, "<>")
		seen := false
		for _, f := range m.Flags {
			seen = seen || f == imap.FlagSeen
		}
		out[id] = seen
	}
	return out
}

// recorder is a Processor that stores into memory what the real one stores
// into PostgreSQL: each Message-ID once, whatever it is handed.
type recorder struct {
	parser *Parser
	mu     sync.Mutex
	handed map[string]int // Message-ID -> times handed
	stored []string       // Message-IDs stored, in order
	have   map[string]bool
	// fail, if set, is asked first about each message.
	fail func(m *Fetched, id string) error
	// after, if set, runs after each committed batch.
	after func(storedSoFar int)
}

func newRecorder() *recorder {
	return &recorder{parser: NewParser(0), handed: map[string]int{}, have: map[string]bool{}}
}

func (r *recorder) Process(ctx context.Context, batch []*Fetched) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range batch {
		msg, err := r.parser.Parse(m.Raw)
		if err != nil {
			return &MessageError{UID: m.UID, Err: err}
		}
		r.handed[msg.MessageID]++
		if r.fail != nil {
			if err := r.fail(m, msg.MessageID); err != nil {
				return err
			}
		}
		if !r.have[msg.MessageID] {
			r.have[msg.MessageID] = true
			r.stored = append(r.stored, msg.MessageID)
		}
	}
	if r.after != nil {
		r.after(len(r.stored))
	}
	return nil
}

func (r *recorder) storedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.stored)
}

func (r *recorder) storedSet() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.stored))
	for _, id := range r.stored {
		out[id] = true
	}
	return out
}

func (r *recorder) timesHanded(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handed[id]
}

// pollerEnv is a tenant in the package database plus an IMAP server.
type pollerEnv struct {
	t      testing.TB
	db     *casestore.DB
	tenant *casedesk.Tenant
	imap   *testIMAP
}

func newPollerEnv(t testing.TB, o imapOptions) *pollerEnv {
	t.Helper()
	db := casestoretest.Open(t, casestore.WithLockCheck(100*time.Millisecond))
	var tenant *casedesk.Tenant
	err := db.Update(context.Background(), func(tx casedesk.Tx) (err error) {
		tenant, err = tx.CreateTenant(context.Background(), casedesk.NewTenant{
			Slug: fmt.Sprintf("p-%d", time.Now().UnixNano()), Name: "Acme", SupportAddress: testUser})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return &pollerEnv{t: t, db: db, tenant: tenant, imap: newTestIMAP(t, o)}
}

func (e *pollerEnv) config() MailboxConfig {
	return MailboxConfig{TenantID: e.tenant.ID, Addr: e.imap.addr, Security: SecurityNone,
		Username: testUser, Password: testPassword}
}

// fastOptions keep retries and waits short so tests run quickly.
func fastOptions() PollerOptions {
	return PollerOptions{BatchSize: 50, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		LockRetry: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond, ShutdownGrace: 2 * time.Second,
		Logger: testLogger()}
}

// running is a poller started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func (e *pollerEnv) start(cfg MailboxConfig, store casedesk.Store, proc Processor, opts PollerOptions) *running {
	e.t.Helper()
	return e.startWith(context.Background(), cfg, store, proc, opts)
}

// startWith starts a poller under parent. The store is also the lock
// service when it can be.
func (e *pollerEnv) startWith(parent context.Context, cfg MailboxConfig, store casedesk.Store, proc Processor, opts PollerOptions) *running {
	e.t.Helper()
	locker, ok := store.(casedesk.Locker)
	if !ok {
		locker = e.db
	}
	p, err := NewPoller(cfg, store, locker, proc, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(parent)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop cancels the poller and waits for Run to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run returned %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("poller did not stop within 10 s of cancel")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *pollerEnv) checkpoint(name string) *casedesk.MailboxCheckpoint {
	e.t.Helper()
	var cp *casedesk.MailboxCheckpoint
	err := e.db.View(context.Background(), func(tx casedesk.Tx) (err error) {
		cp, err = tx.Checkpoint(context.Background(), e.tenant.ID, name)
		return err
	})
	if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return cp
}

func (e *pollerEnv) quarantined() []*casedesk.QuarantinedMessage {
	e.t.Helper()
	var out []*casedesk.QuarantinedMessage
	err := e.db.View(context.Background(), func(tx casedesk.Tx) error {
		list, err := tx.ListQuarantine(context.Background(), e.tenant.ID, 100, 0)
		for _, q := range list {
			full, err := tx.QuarantinedRaw(context.Background(), e.tenant.ID, q.ID)
			if err != nil {
				return err
			}
			out = append(out, full)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}
