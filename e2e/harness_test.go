package e2e

// Tests of the harness itself: each part starts, does what the scenarios
// will rely on, reports failures readably and leaves nothing behind.

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"
)

func TestDovecotDeliver(t *testing.T) {
	t.Parallel()
	d := startDovecot(t)
	d.Deliver(t, "support", rawMessage("Alice <alice@example.com>", "support@example.com", "Printer on fire", "Help!", 0))

	// Several deliveries at once, as several MTA processes would make.
	const n = 5
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- d.DeliverErr("support", rawMessage("bob@example.com", "support@example.com", fmt.Sprintf("Parallel %d", i), "Hi", i))
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}

	msgs := d.Messages(t, "support")
	if got, want := len(msgs), 1+n; got != want {
		t.Fatalf("INBOX holds %d messages, want %d", got, want)
	}
	first := msgs[0]
	if got, want := first.Header("Subject"), "Printer on fire"; got != want {
		t.Errorf("first Subject = %q, want %q", got, want)
	}
	if first.Seen() || first.UID == 0 || !strings.Contains(string(first.Raw), "\r\n\r\nHelp!") {
		t.Errorf("first message = UID %d, flags %v, raw %q; want a UID, no \\Seen, the body", first.UID, first.Flags, first.Raw)
	}
	if got := d.Messages(t, "alice"); len(got) != 0 {
		t.Errorf("alice's INBOX holds %d messages, want none: each user has a mailbox", len(got))
	}
}

func TestDovecotDeliverMany(t *testing.T) {
	t.Parallel()
	d := startDovecot(t)
	raws := make([][]byte, 100)
	for i := range raws {
		raws[i] = rawMessage("bulk@example.com", "support@example.com", fmt.Sprintf("Bulk %03d", i), "Bulk body", i)
	}
	// One large message too: above 4 KiB the client waits for the server's
	// continuation, which must not upset the pipeline.
	raws = append(raws, rawMessage("big@example.com", "support@example.com", "Big", strings.Repeat("0123456789abcdef\n", 1000), 100))
	d.DeliverMany(t, "support", raws)

	msgs := d.Messages(t, "support")
	if got, want := len(msgs), len(raws); got != want {
		t.Fatalf("INBOX holds %d messages, want %d", got, want)
	}
	for i, m := range msgs[:100] {
		if got, want := m.Header("Subject"), fmt.Sprintf("Bulk %03d", i); got != want {
			t.Fatalf("message %d (UID %d) Subject = %q, want %q: order lost", i, m.UID, got, want)
		}
	}
	if total, unseen := d.Status(t, "support"); total != len(raws) || unseen != len(raws) {
		t.Errorf("Status = %d total, %d unseen; want %d, %d", total, unseen, len(raws), len(raws))
	}
}

// TestDovecotSeen marks a message \Seen the way the engine does, through
// the URL it would be given, and checks that Messages and Status see it.
func TestDovecotSeen(t *testing.T) {
	t.Parallel()
	d := startDovecot(t)
	d.DeliverMany(t, "support", [][]byte{
		rawMessage("a@example.com", "support@example.com", "One", "1", 1),
		rawMessage("b@example.com", "support@example.com", "Two", "2", 2),
	})
	u, err := url.Parse(d.URL("support"))
	if err != nil || u.Scheme != "imap" || u.Host != d.Addr() || u.Path != "/INBOX" {
		t.Fatalf("URL = %q (%v), want imap://support:...@%s/INBOX", d.URL("support"), err, d.Addr())
	}
	pass, _ := u.User.Password()
	c, err := d.login(u.User.Username())
	if err != nil || pass != imapPassword {
		t.Fatalf("log in as the URL's user: %v (password %q)", err, pass)
	}
	defer logout(c)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}, Silent: true}
	if err := c.Store(imap.UIDSetNum(2), store, nil).Close(); err != nil {
		t.Fatal(err)
	}

	msgs := d.Messages(t, "support")
	if len(msgs) != 2 || msgs[0].Seen() || !msgs[1].Seen() {
		t.Fatalf("messages = %+v, want UID 1 unseen and UID 2 seen", msgs)
	}
	if total, unseen := d.Status(t, "support"); total != 2 || unseen != 1 {
		t.Errorf("Status = %d total, %d unseen; want 2, 1", total, unseen)
	}
}

func TestSMTPSinkRecords(t *testing.T) {
	t.Parallel()
	sink := startSMTPSink(t)
	body := "Grüße: your case #42 is open. " + strings.Repeat("A long line that quoted-printable must wrap. ", 4)
	msg := gomail.NewMsg()
	if err := errors.Join(msg.From("casedesk@example.com"), msg.To("customer@example.com", "cc@example.com")); err != nil {
		t.Fatal(err)
	}
	msg.Subject("Case #42 – received")
	msg.SetBodyString(gomail.TypeTextPlain, body)
	msg.AddAlternativeString(gomail.TypeTextHTML, "<p>"+body+"</p>")
	client, err := gomail.NewClient("127.0.0.1", gomail.WithPort(port(t, sink.Addr())), gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername("casedesk"), gomail.WithPassword("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DialAndSend(msg); err != nil {
		t.Fatal(err)
	}

	got := sink.WaitFor(t, 5*time.Second, func(r []Received) bool { return len(r) == 1 })[0]
	if got.MailFrom != "casedesk@example.com" || strings.Join(got.Rcpt, ",") != "customer@example.com,cc@example.com" || got.User != "casedesk" {
		t.Errorf("envelope = from %q to %v as %q, want casedesk@example.com to customer and cc as casedesk", got.MailFrom, got.Rcpt, got.User)
	}
	if got, want := got.Header("Subject"), "Case #42 – received"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if text := strings.TrimSpace(got.Text(t)); text != strings.TrimSpace(body) {
		t.Errorf("text body = %q, want %q", text, body)
	}
	if sink.URL() != "smtp://"+sink.Addr() || sink.Count() != 1 {
		t.Errorf("URL = %q, Count = %d", sink.URL(), sink.Count())
	}
}

// TestSMTPSinkConcurrent sends over several connections at once, several
// messages per connection, without AUTH.
func TestSMTPSinkConcurrent(t *testing.T) {
	t.Parallel()
	sink := startSMTPSink(t)
	const conns, perConn = 4, 50
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			if err := sendMany(sink.Addr(), c, perConn); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	msgs := sink.WaitFor(t, 5*time.Second, func(r []Received) bool { return len(r) == conns*perConn })
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.Header("Subject")] = true
		if m.User != "" || len(m.Rcpt) != 1 {
			t.Fatalf("message %q: user %q, rcpt %v; want no AUTH, one recipient", m.Header("Subject"), m.User, m.Rcpt)
		}
	}
	if len(seen) != conns*perConn {
		t.Errorf("%d distinct subjects, want %d", len(seen), conns*perConn)
	}
}

// sendMany sends n messages over one SMTP connection with go-smtp's client.
func sendMany(addr string, conn, n int) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range n {
		raw := rawMessage("casedesk@example.com", "x@example.com", fmt.Sprintf("c%d-m%d", conn, i), "hi", i)
		if err := c.SendMail("casedesk@example.com", []string{fmt.Sprintf("c%d@example.com", conn)}, strings.NewReader(string(raw))); err != nil {
			return fmt.Errorf("connection %d, message %d: %w", conn, i, err)
		}
	}
	return c.Quit()
}

func TestSMTPSinkWaitForTimeout(t *testing.T) {
	t.Parallel()
	sink := startSMTPSink(t)
	if err := sendMany(sink.Addr(), 0, 1); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	msgs, err := sink.waitFor(200*time.Millisecond, func(r []Received) bool { return len(r) >= 2 })
	if err == nil {
		t.Fatal("waitFor for two messages when one came: no error")
	}
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("waitFor gave up after %v, want about 200ms", elapsed)
	}
	for _, want := range []string{"timed out after 200ms", "1 message(s) arrived", "<casedesk@example.com>", "[c0@example.com]", `Subject "c0-m0"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(msgs) != 1 {
		t.Errorf("waitFor returned %d messages, want the 1 that arrived", len(msgs))
	}
	_, err = startSMTPSink(t).waitFor(10*time.Millisecond, func(r []Received) bool { return false })
	if err == nil || !strings.Contains(err.Error(), "no message arrived") {
		t.Errorf("waitFor on an empty sink: error %v, want one saying no message arrived", err)
	}
}

func TestEngineVersion(t *testing.T) {
	t.Parallel()
	out, err := runCommand(t, nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "casedesk dev\n") {
		t.Errorf("version printed %q, want it to start with \"casedesk dev\"", out)
	}

	e := startEngine(t, nil, "version")
	if err := e.Wait(); err != nil {
		t.Fatalf("casedesk version: %v\n%s", err, e.Log())
	}
	if !strings.HasPrefix(e.Log(), "casedesk dev\n") {
		t.Errorf("log = %q, want the version", e.Log())
	}
	if kb := e.PeakRSSKB(); kb <= 0 {
		t.Errorf("PeakRSSKB after exit = %d, want > 0", kb)
	}
}

func TestEngineMigrate(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CASEDESK_DATABASE_URL": newDatabase(t)}
	out, err := runCommand(t, env, "migrate")
	if err != nil {
		t.Fatal(err)
	}
	// One "applied" line per migration, then the version.
	m := regexp.MustCompile(`(?m)^schema at version (\d+)\n\z`).FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(out, "applied ") {
		t.Fatalf("first migrate printed %q, want applied lines then \"schema at version N\"", out)
	}
	out, err = runCommand(t, env, "migrate")
	if err != nil {
		t.Fatal(err)
	}
	if want := "no pending migrations; schema at version " + m[1] + "\n"; out != want {
		t.Errorf("second migrate printed %q, want %q", out, want)
	}
	if _, err := runCommand(t, nil, "migrate"); err == nil || !strings.Contains(err.Error(), "CASEDESK_DATABASE_URL") {
		t.Errorf("migrate without a database: error %v, want one naming CASEDESK_DATABASE_URL (the env must not leak)", err)
	}
}

// TestEngineStopAndKill runs sleep through the engine runner, since
// casedesk has no long-running command yet.
func TestEngineStopAndKill(t *testing.T) {
	t.Parallel()
	e := startProcess(t, "/bin/sleep", nil, "60")
	if kb := e.PeakRSSKB(); kb <= 0 {
		t.Errorf("live PeakRSSKB = %d, want > 0 from VmHWM", kb)
	}
	if err := e.Stop(t); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("Stop: exit error %v, want terminated by SIGTERM", err)
	}

	// A program that ignores SIGTERM is killed.
	e = startProcess(t, "/bin/sh", nil, "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
	if err := poll(5*time.Second, func() error {
		if !strings.Contains(e.Log(), "ready") {
			return errors.New("no ready line yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if killed, _ := e.proc.stop(100 * time.Millisecond); !killed {
		t.Error("a process ignoring SIGTERM was not killed")
	}
	e = startProcess(t, "/bin/sleep", nil, "60")
	e.Kill(t)
	if err := e.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("after Kill: exit error %v, want killed", err)
	}
}

func TestWaitHTTP(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	waitHTTP(t, srv.URL, 5*time.Second)
	if got := calls.Load(); got != 3 {
		t.Errorf("%d requests, want 3 (two 503s, then 200)", got)
	}

	err := pollHTTP("http://127.0.0.1:"+freePort(t)+"/healthz", 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("pollHTTP to a closed port: %v, want a timeout naming the refused connection", err)
	}
}

// port returns the port number of addr, host:port.
func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err := errors.Join(err, err2); err != nil {
		t.Fatalf("port of %q: %v", addr, err)
	}
	return n
}

// BenchmarkDeliverMany measures bulk delivery of small messages into one
// INBOX. For the figure in the report: -bench DeliverMany -benchtime 10000x.
func BenchmarkDeliverMany(b *testing.B) {
	d := startDovecot(b)
	raws := make([][]byte, b.N)
	for i := range raws {
		raws[i] = rawMessage("bulk@example.com", "support@example.com", fmt.Sprintf("Bulk %d", i), "A short question about my invoice.", i)
	}
	b.ResetTimer()
	start := time.Now()
	d.DeliverMany(b, "support", raws)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.StopTimer()
	if total, _ := d.Status(b, "support"); total != b.N {
		b.Fatalf("INBOX holds %d messages, want %d", total, b.N)
	}
}

// BenchmarkSMTPSink measures how fast the sink takes messages over four
// connections at once.
func BenchmarkSMTPSink(b *testing.B) {
	sink := startSMTPSink(b)
	const conns = 4
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			if err := sendMany(sink.Addr(), c, (b.N+conns-1)/conns); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(sink.Count())/time.Since(start).Seconds(), "msgs/s")
}
