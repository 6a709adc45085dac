package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// testOutgoing is an acknowledgement of case 7, message seq.
func testOutgoing(seq int) Outgoing {
	return Outgoing{
		From:       casedesk.Address{Name: "Acme Support", Email: "support@acme.example"},
		To:         []casedesk.Address{{Name: "Jane Customer", Email: "jane@customer.example"}},
		Cc:         []casedesk.Address{{Email: "boss@customer.example"}},
		ReplyTo:    "support+c7-k3f9abcd@acme.example",
		Subject:    "Printer on fire",
		CaseNumber: 7,
		MessageID:  fmt.Sprintf("c7.m%d.k3f9abcd@acme.example", seq),
		InReplyTo:  "original-7@customer.example",
		References: []string{"original-7@customer.example"},
		Date:       time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		Auto:       AutoReplied,
		Loop:       "casedesk@acme.example",
		Text:       "We have your message.\nCase #7.",
		HTML:       "<p>We have your message.</p><p>Case #7.</p>",
	}
}

func testMsg(tb testing.TB, seq int) *mail.Msg {
	tb.Helper()
	m, err := Build(testOutgoing(seq))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func newTestSender(tb testing.TB, cfg SMTPConfig) *Sender {
	tb.Helper()
	s, err := NewSender(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// asSendError returns err as a *SendError or fails the test.
func asSendError(t *testing.T, err error) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *SendError", err, err)
	}
	return se
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		name  string
		stage Stage
		code  int
		want  bool
	}{
		{"mailbox unknown", StageRcpt, 550, true},
		{"rejected content", StageData, 554, true},
		{"sender refused", StageMail, 553, true},
		{"greylisted", StageRcpt, 451, false},
		{"mailbox full for now", StageRcpt, 452, false},
		{"service closing", StageData, 421, false},
		{"timeout, no reply", StageData, 0, false},
		{"connection dropped at MAIL", StageMail, 0, false},
		{"no recipients in the message", StageMessage, 0, true},
		{"bad password", StageConnect, 535, false},
		{"server refuses everyone", StageConnect, 554, false},
		{"connect timeout", StageConnect, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := permanent(tt.stage, tt.code); got != tt.want {
				t.Errorf("permanent(%s, %d) = %v, want %v", tt.stage, tt.code, got, tt.want)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"permanent", &SendError{Permanent: true}, true},
		{"temporary", &SendError{}, false},
		{"wrapped permanent", fmt.Errorf("case 7: %w", &SendError{Permanent: true}), true},
		{"unbuildable message", casedesk.Errorf(casedesk.EINVALID, "no recipient"), true},
		{"other error", errors.New("boom"), false},
		{"unavailable", casedesk.Errorf(casedesk.EUNAVAILABLE, "db down"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestSendReusesConnection(t *testing.T) {
	srv := newTestServer(t, serverOptions{})
	s := newTestSender(t, srv.config())
	var raws [][]byte
	for i := 1; i <= 3; i++ {
		m := testMsg(t, i)
		raw, err := Raw(m) // what the worker stores on the case
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		if err := s.Send(t.Context(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if got := srv.connections(); got != 1 {
		t.Errorf("connections = %d, want 1", got)
	}
	got := srv.received()
	if len(got) != 3 {
		t.Fatalf("server received %d messages, want 3", len(got))
	}
	for i, r := range got {
		if r.From != "support@acme.example" {
			t.Errorf("message %d: MAIL FROM %q", i, r.From)
		}
		if want := "jane@customer.example boss@customer.example"; strings.Join(r.To, " ") != want {
			t.Errorf("message %d: RCPT TO %q, want %q", i, r.To, want)
		}
		if !bytes.Equal(r.Raw, raws[i]) {
			t.Errorf("message %d: sent bytes differ from Raw before sending:\n%s\n---\n%s", i, r.Raw, raws[i])
		}
	}
}

func TestSendClassifiesReplies(t *testing.T) {
	tests := []struct {
		name      string
		cmd       string
		fault     fault
		wantStage Stage
		wantPerm  bool
	}{
		{"greylisted at MAIL", "mail", fault{code: 451, enhanced: gosmtp.EnhancedCode{4, 7, 1}, text: "Greylisted, come back later"}, StageMail, false},
		{"sender refused", "mail", fault{code: 553, enhanced: gosmtp.EnhancedCode{5, 7, 1}, text: "Sender not owned by user"}, StageMail, true},
		{"mailbox busy", "rcpt", fault{code: 450, enhanced: gosmtp.EnhancedCode{4, 2, 1}, text: "Mailbox busy"}, StageRcpt, false},
		{"no such user", "rcpt", fault{code: 550, enhanced: gosmtp.EnhancedCode{5, 1, 1}, text: "No such user here"}, StageRcpt, true},
		{"content rejected", "data", fault{code: 554, enhanced: gosmtp.EnhancedCode{5, 7, 1}, text: "Message looks like spam"}, StageData, true},
		{"queue full", "data", fault{code: 452, enhanced: gosmtp.EnhancedCode{4, 3, 1}, text: "Insufficient system storage"}, StageData, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, serverOptions{})
			s := newTestSender(t, srv.config())
			srv.failNext(tt.cmd, 1, tt.fault)
			err := s.Send(t.Context(), testMsg(t, 1))
			se := asSendError(t, err)
			if se.Permanent != tt.wantPerm || IsPermanent(err) != tt.wantPerm {
				t.Errorf("Permanent = %v, IsPermanent = %v, want %v (%v)", se.Permanent, IsPermanent(err), tt.wantPerm, err)
			}
			wantEnhanced := fmt.Sprintf("%d.%d.%d", tt.fault.enhanced[0], tt.fault.enhanced[1], tt.fault.enhanced[2])
			if se.Stage != tt.wantStage || se.Code != tt.fault.code || se.EnhancedCode != wantEnhanced {
				t.Errorf("stage, code, enhanced = %s, %d, %q; want %s, %d, %q",
					se.Stage, se.Code, se.EnhancedCode, tt.wantStage, tt.fault.code, wantEnhanced)
			}
			if wantText := wantEnhanced + " " + tt.fault.text; se.Text != wantText {
				t.Errorf("Text = %q, want %q", se.Text, wantText)
			}
			// The server's reply, which the classification relies on.
			var te *textproto.Error
			if !errors.As(err, &te) || te.Code != tt.fault.code {
				t.Errorf("no reply %d in %v", tt.fault.code, err)
			}
			// The connection survives a rejection: the next message goes
			// through on it.
			if err := s.Send(t.Context(), testMsg(t, 2)); err != nil {
				t.Fatalf("send after the rejection: %v", err)
			}
			if got := srv.connections(); got != 1 {
				t.Errorf("connections = %d, want 1", got)
			}
			if got := len(srv.received()); got != 1 {
				t.Errorf("server accepted %d messages, want 1", got)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	srv := newTestServer(t, serverOptions{})
	cfg := srv.config()
	cfg.Timeout = 300 * time.Millisecond
	s := newTestSender(t, cfg)
	srv.failNext("data", 1, fault{hang: true})

	start := time.Now()
	err := s.Send(t.Context(), testMsg(t, 1))
	elapsed := time.Since(start)
	se := asSendError(t, err)
	if se.Permanent || IsPermanent(err) || se.Stage != StageData || se.Code != 0 {
		t.Errorf("got %+v, want a temporary data failure without a code", se)
	}
	var ne net.Error
	if !errors.As(err, &ne) && !strings.Contains(se.Text, "timeout") {
		t.Errorf("Text = %q, want it to say timeout", se.Text)
	}
	if elapsed < cfg.Timeout/2 || elapsed > cfg.Timeout+2*time.Second {
		t.Errorf("gave up after %v with a timeout of %v", elapsed, cfg.Timeout)
	}

	// The hung connection is abandoned; the next message gets a new one.
	if err := s.Send(t.Context(), testMsg(t, 2)); err != nil {
		t.Fatalf("send after the timeout: %v", err)
	}
	if got := srv.connections(); got != 2 {
		t.Errorf("connections = %d, want 2", got)
	}
}

func TestSendCancelled(t *testing.T) {
	srv := newTestServer(t, serverOptions{})
	cfg := srv.config()
	cfg.Timeout = time.Minute
	s := newTestSender(t, cfg)
	srv.failNext("data", 1, fault{hang: true})

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, testMsg(t, 1))
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Send returned %v after ctx was done", elapsed)
	}
	se := asSendError(t, err)
	if se.Permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a temporary failure wrapping context.DeadlineExceeded", err)
	}

	// A done context stops before connecting.
	err = s.Send(ctx, testMsg(t, 2))
	if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Errorf("send with a done ctx: %v", err)
	}
	if err := s.Send(t.Context(), testMsg(t, 3)); err != nil {
		t.Fatalf("send with a live ctx: %v", err)
	}
}

func TestSendReconnects(t *testing.T) {
	t.Run("connection closed between messages", func(t *testing.T) {
		srv := newTestServer(t, serverOptions{})
		s := newTestSender(t, srv.config())
		if err := s.Send(t.Context(), testMsg(t, 1)); err != nil {
			t.Fatal(err)
		}
		srv.closeConnections()
		// The kept connection fails its check before anything is sent, so
		// the message goes out on a new one without an error.
		if err := s.Send(t.Context(), testMsg(t, 2)); err != nil {
			t.Fatalf("send after the server closed the connection: %v", err)
		}
		if got, want := srv.connections(), 2; got != want {
			t.Errorf("connections = %d, want %d", got, want)
		}
		if got := len(srv.received()); got != 2 {
			t.Errorf("server accepted %d messages, want 2", got)
		}
	})
	t.Run("connection dropped mid-batch", func(t *testing.T) {
		srv := newTestServer(t, serverOptions{})
		s := newTestSender(t, srv.config())
		if err := s.Send(t.Context(), testMsg(t, 1)); err != nil {
			t.Fatal(err)
		}
		srv.failNext("mail", 1, fault{drop: true})
		err := s.Send(t.Context(), testMsg(t, 2))
		se := asSendError(t, err)
		if se.Permanent || se.Stage != StageMail || se.Code != 0 {
			t.Errorf("got %+v, want a temporary mail failure without a code", se)
		}
		if err := s.Send(t.Context(), testMsg(t, 3)); err != nil {
			t.Fatalf("send after the drop: %v", err)
		}
		if got, want := srv.connections(), 2; got != want {
			t.Errorf("connections = %d, want %d", got, want)
		}
		if got := len(srv.received()); got != 2 {
			t.Errorf("server accepted %d messages, want 2", got)
		}
	})
	t.Run("closed sender connects again", func(t *testing.T) {
		srv := newTestServer(t, serverOptions{})
		s := newTestSender(t, srv.config())
		for i := range 2 {
			if err := s.Send(t.Context(), testMsg(t, i)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := srv.connections(), 2; got != want {
			t.Errorf("connections = %d, want %d", got, want)
		}
	})
}

func TestSendConnectFailures(t *testing.T) {
	refused := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}()
	tests := []struct {
		name     string
		opts     serverOptions
		cfg      func(SMTPConfig) SMTPConfig
		wantCode int
		wantText string
	}{
		{
			name:     "STARTTLS required but not offered",
			cfg:      func(c SMTPConfig) SMTPConfig { c.TLS = TLSStartTLS; return c },
			wantText: "does not support STARTTLS",
		},
		{
			name:     "certificate not trusted",
			opts:     serverOptions{startTLS: true},
			cfg:      func(c SMTPConfig) SMTPConfig { c.TLS, c.RootCAs = TLSStartTLS, nil; return c },
			wantText: "certificate",
		},
		{
			name: "wrong password",
			opts: serverOptions{startTLS: true, mechs: []string{"PLAIN"}, users: map[string]string{"agent": "right"}},
			cfg: func(c SMTPConfig) SMTPConfig {
				c.TLS, c.Username, c.Password = TLSStartTLS, "agent", "wrong-s3cret"
				return c
			},
			wantCode: 535,
			wantText: "Authentication failed",
		},
		{
			name: "no supported AUTH mechanism",
			opts: serverOptions{startTLS: true, mechs: []string{"CRAM-MD5"}},
			cfg: func(c SMTPConfig) SMTPConfig {
				c.TLS, c.Username, c.Password = TLSStartTLS, "agent", "s3cret"
				return c
			},
			wantText: "PLAIN and LOGIN",
		},
		{
			name:     "connection refused",
			cfg:      func(c SMTPConfig) SMTPConfig { c.Port = refused; return c },
			wantText: "refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.opts)
			s := newTestSender(t, tt.cfg(srv.config()))
			err := s.Send(t.Context(), testMsg(t, 1))
			se := asSendError(t, err)
			if se.Permanent || se.Stage != StageConnect || se.Code != tt.wantCode {
				t.Errorf("got %+v, want a temporary connect failure with code %d", se, tt.wantCode)
			}
			if !strings.Contains(se.Text, tt.wantText) {
				t.Errorf("Text = %q, want it to contain %q", se.Text, tt.wantText)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %v", err)
			}
			if n := len(srv.received()); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
		})
	}
}

func TestSendTLSAndAuth(t *testing.T) {
	users := map[string]string{"agent": "s3cret"}
	tests := []struct {
		name     string
		opts     serverOptions
		tls      TLSMode
		user     string
		wantMech string
	}{
		{"STARTTLS required", serverOptions{startTLS: true}, TLSStartTLS, "", ""},
		{"STARTTLS opportunistic", serverOptions{startTLS: true}, TLSOpportunistic, "", ""},
		{"plain text to loopback", serverOptions{}, "", "", ""},
		{"implicit TLS", serverOptions{implicitTLS: true}, TLSImplicit, "", ""},
		{"AUTH PLAIN over STARTTLS", serverOptions{startTLS: true, mechs: []string{"LOGIN", "PLAIN"}, users: users}, TLSStartTLS, "agent", "PLAIN"},
		{"AUTH LOGIN over STARTTLS", serverOptions{startTLS: true, mechs: []string{"LOGIN"}, users: users}, TLSStartTLS, "agent", "LOGIN"},
		{"AUTH PLAIN over implicit TLS", serverOptions{implicitTLS: true, mechs: []string{"PLAIN"}, users: users}, TLSImplicit, "agent", "PLAIN"},
		{"AUTH in plain text to loopback", serverOptions{insecureAuth: true, mechs: []string{"PLAIN"}, users: users}, TLSNone, "agent", "PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.opts)
			cfg := srv.config()
			cfg.TLS = tt.tls
			if tt.user != "" {
				cfg.Username, cfg.Password = tt.user, users[tt.user]
			}
			s := newTestSender(t, cfg)
			for i := range 2 {
				if err := s.Send(t.Context(), testMsg(t, i)); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			got := srv.received()
			if len(got) != 2 || got[0].User != tt.user {
				t.Fatalf("received %d messages as %q, want 2 as %q", len(got), got[0].User, tt.user)
			}
			if tt.wantMech != "" && strings.Join(srv.mechanisms(), " ") != tt.wantMech {
				t.Errorf("mechanisms used = %q, want %q once", srv.mechanisms(), tt.wantMech)
			}
			if srv.connections() != 1 {
				t.Errorf("connections = %d, want 1", srv.connections())
			}
		})
	}
}

func TestPlainOrLoginRefusesPlainText(t *testing.T) {
	tests := []struct {
		name     string
		tls      bool
		loopback bool
		mechs    []string
		wantMech string // "" for a refusal
	}{
		{"TLS, PLAIN offered", true, false, []string{"LOGIN", "PLAIN"}, "PLAIN"},
		{"TLS, only LOGIN offered", true, false, []string{"LOGIN"}, "LOGIN"},
		{"no TLS to a remote host", false, false, []string{"PLAIN", "LOGIN"}, ""},
		{"no TLS to loopback", false, true, []string{"PLAIN"}, "PLAIN"},
		{"TLS, only CRAM-MD5", true, false, []string{"CRAM-MD5"}, ""},
		{"TLS, no AUTH at all", true, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &plainOrLogin{user: "agent", pass: "s3cret", loopback: tt.loopback}
			mech, resp, err := a.Start(&smtp.ServerInfo{Name: "mail.example.com", TLS: tt.tls, Auth: tt.mechs})
			if tt.wantMech == "" {
				if err == nil || resp != nil {
					t.Fatalf("Start = %q, %q, %v; want a refusal", mech, resp, err)
				}
				if !tt.tls && !errors.Is(err, errUnencryptedAuth) {
					t.Errorf("err = %v, want errUnencryptedAuth", err)
				}
				return
			}
			if err != nil || mech != tt.wantMech {
				t.Errorf("Start = %q, %v; want %q", mech, err, tt.wantMech)
			}
		})
	}
}
