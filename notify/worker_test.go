package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jhillyerd/enmime/v2"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/ingest"
	"github.com/casedesk/casedesk/internal/testlog"
	"github.com/casedesk/casedesk/templates"
	"github.com/casedesk/casedesk/threading"
)

// The worker tests keep cases and the outbox in a real PostgreSQL database
// of their own.
func TestMain(m *testing.M) { casestoretest.Main(m) }

func testLogger() *slog.Logger { return testlog.New() }

const testLoop = "casedesk@acme.example"

// testClock is the store's clock, moved by the tests.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// workerEnv is a tenant (support@acme.example, agent Alex Agent, account
// Customer Inc) whose inbound mail goes through the ingest processor and
// whose outbox a Worker sends to an in-process SMTP server.
type workerEnv struct {
	t      *testing.T
	clock  *testClock
	db     *casestore.DB
	tenant *casedesk.Tenant
	agent  *casedesk.User
	tokens threading.Tokens
	proc   *ingest.StoreProcessor
	smtp   *testServer
	worker *Worker
	uid    uint32
}

func newWorkerEnv(t *testing.T) *workerEnv {
	t.Helper()
	e := &workerEnv{t: t, clock: &testClock{}}
	e.clock.ns.Store(time.Now().Truncate(time.Second).UnixNano())
	e.db = casestoretest.Open(t, casestore.WithClock(e.clock.Now))
	ctx := context.Background()
	err := e.db.Update(ctx, func(tx casedesk.Tx) (err error) {
		e.tenant, err = tx.CreateTenant(ctx, casedesk.NewTenant{Slug: fmt.Sprintf("w-%d", time.Now().UnixNano()),
			Name: "Acme Support", SupportAddress: "support@acme.example"})
		if err != nil {
			return err
		}
		if _, err := tx.CreateAccount(ctx, casedesk.NewAccount{TenantID: e.tenant.ID, Name: "Customer Inc",
			Domains: []string{"customer.example"}}); err != nil {
			return err
		}
		e.agent, err = tx.CreateUser(ctx, casedesk.NewUser{TenantID: e.tenant.ID, Name: "Alex Agent",
			Email: "alex@acme.example", RoleName: "support"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Workers claim due items of every tenant, and the tests share one
	// database: nothing of this test may stay due for the next.
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, casestoretest.URL(t))
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `UPDATE outbox SET state = 'failed'
			WHERE tenant_id = $1 AND state IN ('pending', 'sending')`, e.tenant.ID); err != nil {
			t.Error(err)
		}
	})
	e.tokens = threading.NewTokens(e.tenant.ID, e.tenant.TokenSecret)
	e.proc = ingest.NewStoreProcessor(e.db, ingest.ProcessorOptions{Logger: testLogger(),
		Classifier: ingest.ClassifierConfig{LoopValue: testLoop}})
	e.smtp = newTestServer(t, serverOptions{})
	e.worker = e.newWorker()
	return e
}

// newWorker returns a worker with its own connection to the test server.
func (e *workerEnv) newWorker() *Worker {
	e.t.Helper()
	sender, err := NewSender(e.smtp.config())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sender.Close() })
	return NewWorker(e.db, sender, WorkerOptions{Loop: testLoop, Logger: testLogger(), NoRecover: true,
		Jitter: func() float64 { return 0.5 }})
}

// deliver hands raw mail to the processor as one batch.
func (e *workerEnv) deliver(mails ...[]byte) {
	e.t.Helper()
	batch := make([]*ingest.Fetched, len(mails))
	for i, raw := range mails {
		e.uid++
		batch[i] = &ingest.Fetched{TenantID: e.tenant.ID, Mailbox: "INBOX", UIDValidity: 1, UID: e.uid,
			Size: int64(len(raw)), Raw: raw}
	}
	if err := e.proc.Process(context.Background(), batch); err != nil {
		e.t.Fatal(err)
	}
}

// drain runs one batch and fails the test on error.
func (e *workerEnv) drain() Stats {
	e.t.Helper()
	stats, err := e.worker.Drain(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return stats
}

func (e *workerEnv) view(fn func(tx casedesk.Tx) error) {
	e.t.Helper()
	if err := e.db.View(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

// outbox returns the tenant's outbox items, oldest first.
func (e *workerEnv) outbox() []*casedesk.OutboxItem {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, casestoretest.URL(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT id FROM outbox WHERE tenant_id = $1 ORDER BY id`, e.tenant.ID)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		e.t.Fatal(err)
	}
	items := make([]*casedesk.OutboxItem, len(ids))
	for i, id := range ids {
		items[i] = e.item(id)
	}
	return items
}

// item re-reads one outbox item.
func (e *workerEnv) item(id int64) *casedesk.OutboxItem {
	e.t.Helper()
	var it *casedesk.OutboxItem
	e.view(func(tx casedesk.Tx) (err error) {
		it, err = tx.FindOutboxItem(context.Background(), e.tenant.ID, id)
		return err
	})
	return it
}

// caseOf returns the case holding the stored message with this Message-ID.
func (e *workerEnv) caseOf(messageID string) *casedesk.Case {
	e.t.Helper()
	var c *casedesk.Case
	e.view(func(tx casedesk.Tx) error {
		refs, err := tx.FindMessagesByMessageIDs(context.Background(), e.tenant.ID, []string{messageID})
		if err != nil {
			return err
		}
		if len(refs) != 1 {
			return fmt.Errorf("message %s stored %d times", messageID, len(refs))
		}
		c, err = tx.FindCase(context.Background(), e.tenant.ID, refs[0].CaseID)
		return err
	})
	return c
}

func (e *workerEnv) messages(c *casedesk.Case) []*casedesk.Message {
	e.t.Helper()
	var msgs []*casedesk.Message
	e.view(func(tx casedesk.Tx) (err error) {
		msgs, err = tx.ListMessages(context.Background(), e.tenant.ID, c.ID)
		return err
	})
	return msgs
}

func (e *workerEnv) events(c *casedesk.Case, kind string) []*casedesk.Event {
	e.t.Helper()
	var out []*casedesk.Event
	e.view(func(tx casedesk.Tx) error {
		evs, err := tx.ListEvents(context.Background(), e.tenant.ID, c.ID)
		for _, ev := range evs {
			if ev.Kind == kind {
				out = append(out, ev)
			}
		}
		return err
	})
	return out
}

// captured parses the i-th message the SMTP server accepted.
func (e *workerEnv) captured(i int) (*enmime.Envelope, received) {
	e.t.Helper()
	got := e.smtp.received()
	if len(got) <= i {
		e.t.Fatalf("SMTP server has %d messages, want message %d", len(got), i+1)
	}
	env, err := enmime.ReadEnvelope(bytes.NewReader(got[i].Raw))
	if err != nil {
		e.t.Fatalf("enmime: %v\n%s", err, got[i].Raw)
	}
	for _, perr := range env.Errors {
		e.t.Errorf("enmime: %v", perr)
	}
	return env, got[i]
}

// inbound is customer or agent mail for the processor.
type inbound struct {
	ID, From, To, Cc, Subject, InReplyTo, References, Body string
}

func (m inbound) raw() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nFrom: %s\r\nTo: %s\r\n", m.ID, m.From, m.To)
	if m.Cc != "" {
		fmt.Fprintf(&b, "Cc: %s\r\n", m.Cc)
	}
	fmt.Fprintf(&b, "Subject: %s\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n", m.Subject)
	if m.InReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\n", m.InReplyTo)
	}
	if m.References != "" {
		fmt.Fprintf(&b, "References: %s\r\n", m.References)
	}
	body := m.Body
	if body == "" {
		body = "Hello,\r\n\r\nthe printer on the 3rd floor is on fire again.\r\n\r\nCara"
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", body)
	return []byte(b.String())
}

func opening() inbound {
	return inbound{ID: "CAF+orig@mail.gmail.com", From: "Cara Customer <cara@customer.example>",
		To: "Acme Support <support@acme.example>", Cc: "Dan <dan@customer.example>",
		Subject: "Printer <b>on</b> fire & smoking"}
}

func unbracket(s string) string { return strings.Trim(strings.TrimSpace(s), "<>") }

func refsOf(env *enmime.Envelope) []string {
	var out []string
	for _, r := range strings.Fields(env.GetHeader("References")) {
		out = append(out, unbracket(r))
	}
	return out
}

// TestWorkerSendsAckWithEveryHeader: the acknowledgement of a new case
// reaches the SMTP server with every header threading and loop prevention
// need, and the customer's answer to it, built from the captured mail,
// lands in the same case without a second acknowledgement.
func TestWorkerSendsAckWithEveryHeader(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")

	stats := e.drain()
	if stats != (Stats{Claimed: 1, Sent: 1}) {
		t.Fatalf("stats = %+v, want one sent", stats)
	}
	env, rec := e.captured(0)
	if !slices.Equal(rec.To, []string{"cara@customer.example"}) || rec.From != "support@acme.example" {
		t.Errorf("envelope from %q to %q", rec.From, rec.To)
	}
	tag := fmt.Sprintf("[Case #%d]", c.Number)
	wantHeaders := map[string]string{
		"From":                     `"Acme Support" <support@acme.example>`,
		"To":                       `"Cara Customer" <cara@customer.example>`,
		"Reply-To":                 "<" + e.tokens.ReplyAddress("support@acme.example", c.Number) + ">",
		"Subject":                  tag + " We have received your request: Printer <b>on</b> fire & smoking",
		"In-Reply-To":              "<CAF+orig@mail.gmail.com>",
		"References":               "<CAF+orig@mail.gmail.com>",
		"Auto-Submitted":           "auto-replied",
		"X-Auto-Response-Suppress": "All",
		"X-Loop":                   testLoop,
	}
	for k, want := range wantHeaders {
		if got := env.GetHeader(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if n := strings.Count(env.GetHeader("Subject"), "[Case #"); n != 1 {
		t.Errorf("subject has %d tags: %q", n, env.GetHeader("Subject"))
	}
	msgID := unbracket(env.GetHeader("Message-Id"))
	if n, ok := e.tokens.CaseFromMessageID(msgID); !ok || n != c.Number {
		t.Errorf("Message-ID %q carries case %d, %v; want %d", msgID, n, ok, c.Number)
	}
	if d, err := env.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date = %v, %v", d, err)
	}
	if ct := env.Root.ContentType; ct != "multipart/alternative" {
		t.Errorf("Content-Type = %q, want multipart/alternative", ct)
	}
	num := fmt.Sprint(c.Number)
	if !strings.Contains(env.Text, "#"+num) || !strings.Contains(env.HTML, "#"+num) {
		t.Errorf("body does not name case #%s:\n%s\n%s", num, env.Text, env.HTML)
	}
	// The customer's subject holds HTML: text as it is, escaped in HTML.
	if !strings.Contains(env.Text, "Printer <b>on</b> fire & smoking") {
		t.Errorf("text part lost the subject:\n%s", env.Text)
	}
	if strings.Contains(env.HTML, "<b>on</b>") || !strings.Contains(env.HTML, "&lt;b&gt;on&lt;/b&gt;") {
		t.Errorf("subject not escaped in the HTML part:\n%s", env.HTML)
	}

	// Kept on the case as outbound mail, byte for byte what was sent.
	msgs := e.messages(c)
	if len(msgs) != 2 {
		t.Fatalf("case has %d messages, want 2", len(msgs))
	}
	out := msgs[1]
	if out.Direction != casedesk.Outbound || out.AuthorKind != casedesk.AuthorSystem || out.MessageID != msgID ||
		out.InReplyTo != "CAF+orig@mail.gmail.com" || out.Subject != env.GetHeader("Subject") {
		t.Errorf("stored ack = %+v", out)
	}
	var raw []byte
	e.view(func(tx casedesk.Tx) (err error) {
		raw, err = tx.RawMessage(context.Background(), e.tenant.ID, out.ID)
		return err
	})
	if !bytes.Equal(raw, rec.Raw) {
		t.Errorf("stored bytes differ from the sent ones")
	}
	items := e.outbox()
	if len(items) != 1 || items[0].State != casedesk.OutboxSent || items[0].Attempts != 1 || items[0].SentAt.IsZero() {
		t.Errorf("outbox = %+v", items[0])
	}

	// Cara answers from a client that drops References and edits the
	// subject: In-Reply-To alone finds the case.
	e.deliver(inbound{ID: "CAF+answer@mail.gmail.com", From: "Cara Customer <cara@customer.example>",
		To: "Acme Support <support@acme.example>", Subject: "AW: printer still smoking",
		InReplyTo: msgID, Body: "It is still smoking."}.raw())
	if got := e.caseOf("CAF+answer@mail.gmail.com"); got.ID != c.ID {
		t.Fatalf("the answer opened case #%d, want #%d", got.Number, c.Number)
	}
	if stats := e.drain(); stats.Claimed != 0 {
		t.Errorf("the answer was acknowledged again: %+v", stats)
	}
}

// TestWorkerRelaysAgentReply: an agent's in-thread reply goes to the
// requester with the other participants in copy, from "Agent via
// Support", threaded under the customer's mail, without the agent's
// command line or Auto-Submitted, with the agent's attachment.
func TestWorkerRelaysAgentReply(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	e.drain()
	ack, _ := e.captured(0)
	ackID := unbracket(ack.GetHeader("Message-Id"))

	agentMail := "Message-ID: <agent-1@acme.example>\r\nFrom: Alex Agent <alex@acme.example>\r\n" +
		"To: " + e.tokens.ReplyAddress("support@acme.example", c.Number) + "\r\n" +
		"Subject: Re: " + ack.GetHeader("Subject") + "\r\nDate: Mon, 23 Nov 2026 11:00:00 +0000\r\n" +
		"In-Reply-To: <" + ackID + ">\r\nReferences: <CAF+orig@mail.gmail.com> <" + ackID + ">\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#pending\r\n\r\nPlease run the attached fix.\r\n\r\nAlex\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=fix.sh\r\n\r\necho fixed\r\n" +
		"--b1--\r\n"
	e.deliver([]byte(agentMail))
	if stats := e.drain(); stats.Sent != 1 {
		t.Fatalf("stats = %+v, want the relay sent", stats)
	}
	env, rec := e.captured(1)
	if !slices.Equal(rec.To, []string{"cara@customer.example", "dan@customer.example"}) {
		t.Errorf("envelope recipients %q", rec.To)
	}
	for k, want := range map[string]string{
		"From":        `"Alex Agent via Acme Support" <support@acme.example>`,
		"To":          `"Cara Customer" <cara@customer.example>`,
		"Cc":          `"Dan" <dan@customer.example>`,
		"In-Reply-To": "<" + ackID + ">",
		"References":  "<CAF+orig@mail.gmail.com> <" + ackID + ">",
		"Reply-To":    "<" + e.tokens.ReplyAddress("support@acme.example", c.Number) + ">",
		"X-Loop":      testLoop,
	} {
		if got := env.GetHeader(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"Auto-Submitted", "X-Auto-Response-Suppress"} {
		if v := env.GetHeader(k); v != "" {
			t.Errorf("a human's reply carries %s: %q", k, v)
		}
	}
	if n := strings.Count(env.GetHeader("Subject"), "[Case #"); n != 1 {
		t.Errorf("subject has %d tags: %q", n, env.GetHeader("Subject"))
	}
	if strings.Contains(env.Text, "#pending") || !strings.Contains(env.Text, "Please run the attached fix.") ||
		!strings.Contains(env.Text, "Alex Agent") {
		t.Errorf("relayed text:\n%s", env.Text)
	}
	if len(env.Attachments) != 1 || env.Attachments[0].FileName != "fix.sh" ||
		strings.TrimSpace(string(env.Attachments[0].Content)) != "echo fixed" {
		t.Errorf("attachments = %v", env.Attachments)
	}
	msgs := e.messages(c)
	last := msgs[len(msgs)-1]
	if last.Direction != casedesk.Outbound || last.AuthorKind != casedesk.AuthorAgent || last.UserID != e.agent.ID ||
		len(last.Attachments) != 1 {
		t.Errorf("stored relay = %+v", last)
	}

	// Dan answers the relay: same case.
	relayID := unbracket(env.GetHeader("Message-Id"))
	e.deliver(inbound{ID: "dan-1@customer.example", From: "Dan <dan@customer.example>", To: "support@acme.example",
		Subject: "Re: fix", InReplyTo: relayID, Body: "Done."}.raw())
	if got := e.caseOf("dan-1@customer.example"); got.ID != c.ID {
		t.Errorf("Dan's answer opened case #%d, want #%d", got.Number, c.Number)
	}
}

// TestWorkerRetriesTemporaryFailures: a server answering 4xx for the first
// attempts gets the mail once it recovers; each attempt is counted and
// spaced by the backoff.
func TestWorkerRetriesTemporaryFailures(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	e.smtp.failNext("mail", 3, fault{code: 451, enhanced: [3]int{4, 3, 0}, text: "try again later"})
	b := casedesk.DefaultBackoff
	for attempt := 1; attempt <= 3; attempt++ {
		if stats := e.drain(); stats != (Stats{Claimed: 1, Retried: 1}) {
			t.Fatalf("attempt %d: stats = %+v", attempt, stats)
		}
		it := e.outbox()[0]
		wantDue := e.clock.Now().Add(b.Delay(attempt, 0.5))
		if it.State != casedesk.OutboxPending || it.Attempts != attempt || !it.NextAttemptAt.Equal(wantDue) ||
			!strings.Contains(it.LastError, "451") || !strings.Contains(it.LastError, "try again later") {
			t.Fatalf("attempt %d: item = %+v, want pending due %v", attempt, it, wantDue)
		}
		// Not due yet: nothing is claimed.
		if stats := e.drain(); stats.Claimed != 0 {
			t.Fatalf("claimed before it was due: %+v", stats)
		}
		e.clock.Add(b.Delay(attempt, 0.5))
	}
	if stats := e.drain(); stats != (Stats{Claimed: 1, Sent: 1}) {
		t.Fatalf("after recovery: stats = %+v", stats)
	}
	it := e.outbox()[0]
	if it.State != casedesk.OutboxSent || it.Attempts != 4 || it.LastError != "" {
		t.Errorf("item = %+v, want sent on attempt 4", it)
	}
	if n := e.smtp.accepted(); n != 1 {
		t.Errorf("server accepted %d messages, want 1", n)
	}
}

// TestWorkerPermanentFailure: a 5xx fails the item at once with the
// server's text and an event on the case; it is never tried again.
func TestWorkerPermanentFailure(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	e.smtp.failNext("rcpt", 1, fault{code: 550, enhanced: [3]int{5, 1, 1}, text: "no such user here"})
	if stats := e.drain(); stats != (Stats{Claimed: 1, Failed: 1}) {
		t.Fatalf("stats = %+v", stats)
	}
	it := e.outbox()[0]
	if it.State != casedesk.OutboxFailed || !strings.Contains(it.LastError, "550") ||
		!strings.Contains(it.LastError, "no such user here") {
		t.Errorf("item = %+v", it)
	}
	evs := e.events(c, casedesk.EventDeliveryFail)
	if len(evs) != 1 || !strings.Contains(string(evs[0].Data), "no such user here") {
		t.Fatalf("delivery_failed events = %v", evs)
	}
	e.clock.Add(48 * time.Hour)
	if stats := e.drain(); stats.Claimed != 0 {
		t.Errorf("a failed item was claimed again: %+v", stats)
	}
	if n := e.smtp.accepted(); n != 0 {
		t.Errorf("server accepted %d messages", n)
	}
	if msgs := e.messages(c); len(msgs) != 1 {
		t.Errorf("case has %d messages; a failed mail must not be kept as sent", len(msgs))
	}
}

// TestWorkerGivesUp: temporary failures for longer than the backoff's
// limit end in a failed item and an event.
func TestWorkerGivesUp(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	e.smtp.failNext("mail", 1000, fault{code: 421, text: "overloaded"})
	attempts := 0
	for {
		stats := e.drain()
		if stats.Claimed == 0 {
			e.clock.Add(time.Hour)
			continue
		}
		attempts++
		if stats.Failed == 1 {
			break
		}
		if attempts > 40 {
			t.Fatal("never gave up")
		}
	}
	it := e.outbox()[0]
	age := e.clock.Now().Sub(it.CreatedAt)
	if it.State != casedesk.OutboxFailed || !strings.Contains(it.LastError, "gave up") || age < 24*time.Hour || age > 25*time.Hour {
		t.Errorf("item = %+v after %v", it, age)
	}
	if len(e.events(c, casedesk.EventDeliveryFail)) != 1 {
		t.Error("no delivery_failed event")
	}
	// 1m, 2m, 4m, ... 1h: about 30 attempts in 24 hours.
	if attempts < 20 || attempts > 35 {
		t.Errorf("%d attempts in 24 hours", attempts)
	}
}

// TestWorkerUnreachableServer: when the server cannot be reached the batch
// stops at the first item and every item is due again later.
func TestWorkerUnreachableServer(t *testing.T) {
	e := newWorkerEnv(t)
	for i := range 3 {
		m := opening()
		m.ID, m.From, m.Cc = fmt.Sprintf("u%d@customer.example", i), fmt.Sprintf("u%d@customer.example", i), ""
		e.deliver(m.raw())
	}
	sender, err := NewSender(SMTPConfig{Host: "127.0.0.1", Port: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.worker = NewWorker(e.db, sender, WorkerOptions{Loop: testLoop, Logger: testLogger(), NoRecover: true})
	stats := e.drain()
	if !stats.Unreachable || stats.Retried != 3 || stats.Sent+stats.Failed != 0 {
		t.Fatalf("stats = %+v", stats)
	}
	for _, it := range e.outbox() {
		if it.State != casedesk.OutboxPending || !it.NextAttemptAt.After(e.clock.Now()) || it.LastError == "" {
			t.Errorf("item = %+v", it)
		}
	}
}

// TestWorkersSendEachItemOnce: three workers, each with its own
// connection, drain 300 items together; the server receives each exactly
// once.
func TestWorkersSendEachItemOnce(t *testing.T) {
	e := newWorkerEnv(t)
	const n = 300
	ctx := context.Background()
	e.queueAcks(t, n)
	workers := []*Worker{e.newWorker(), e.newWorker(), e.newWorker()}
	var wg sync.WaitGroup
	var claimed [3]int
	errs := make(chan error, 3)
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				stats, err := w.Drain(ctx)
				if err != nil {
					errs <- err
					return
				}
				if stats.Claimed == 0 {
					return
				}
				claimed[i] += stats.Claimed
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range e.smtp.received() {
		env, err := enmime.ReadEnvelope(bytes.NewReader(r.Raw))
		if err != nil {
			t.Fatal(err)
		}
		seen[env.GetHeader("Message-Id")]++
	}
	if len(seen) != n || e.smtp.accepted() != n {
		t.Errorf("server got %d messages with %d Message-IDs, want %d each", e.smtp.accepted(), len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s received %d times", id, k)
		}
	}
	for i, k := range claimed {
		if k == 0 {
			t.Logf("worker %d claimed nothing (claims: %v)", i, claimed)
		}
	}
	if claimed[0]+claimed[1]+claimed[2] != n {
		t.Errorf("claims %v do not add up to %d", claimed, n)
	}
	sent := 0
	for _, it := range e.outbox() {
		if it.State == casedesk.OutboxSent && it.Attempts == 1 {
			sent++
		}
	}
	if sent != n {
		t.Errorf("%d items sent on the first attempt, want %d", sent, n)
	}
}

// TestWorkerUsesTenantTemplates: a tenant's valid override shapes its
// mail, escaping the customer's HTML in the HTML part; an override that no
// longer compiles falls back to the defaults rather than stop the mail.
func TestWorkerUsesTenantTemplates(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	err := e.db.Update(ctx, func(tx casedesk.Tx) error {
		_, err := templates.Save(ctx, tx, casedesk.TemplateOverride{TenantID: e.tenant.ID, Name: "ack", Lang: "en",
			Subject: "Ticket opened: {{.Subject}}",
			Text:    "Hi {{.RequesterName}}, ticket {{.CaseNumber}} is open.",
			HTML:    "<p>Hi {{.RequesterName}}, ticket {{.CaseNumber}} about {{.Subject}} is open.</p>"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.deliver(opening().raw())
	e.drain()
	env, _ := e.captured(0)
	c := e.caseOf("CAF+orig@mail.gmail.com")
	if want := fmt.Sprintf("[Case #%d] Ticket opened: Printer <b>on</b> fire & smoking", c.Number); env.GetHeader("Subject") != want {
		t.Errorf("Subject = %q, want %q", env.GetHeader("Subject"), want)
	}
	if want := fmt.Sprintf("Hi Cara Customer, ticket %d is open.", c.Number); strings.TrimSpace(env.Text) != want {
		t.Errorf("Text = %q, want %q", env.Text, want)
	}
	if !strings.Contains(env.HTML, "about Printer &lt;b&gt;on&lt;/b&gt; fire &amp; smoking is open") {
		t.Errorf("HTML = %q", env.HTML)
	}

	// An override stored without validation that does not compile.
	err = e.db.Update(ctx, func(tx casedesk.Tx) error {
		_, err := tx.SaveTemplateOverride(ctx, casedesk.TemplateOverride{TenantID: e.tenant.ID, Name: "ack", Lang: "en",
			Text: "Hi {{.Nope", HTML: "<p>x</p>"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m := opening()
	m.ID, m.From, m.Cc = "second@customer.example", "bob@customer.example", ""
	e.deliver(m.raw())
	if stats := e.drain(); stats.Sent != 1 {
		t.Fatalf("stats = %+v", stats)
	}
	env, _ = e.captured(1)
	if !strings.Contains(env.GetHeader("Subject"), "We have received your request") {
		t.Errorf("default template not used: Subject = %q", env.GetHeader("Subject"))
	}
}

// TestWorkerHeaderInjection: CR and LF in a case subject or an agent's
// name cannot add a header to the mail sent.
func TestWorkerHeaderInjection(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	var c *casedesk.Case
	err := e.db.Update(ctx, func(tx casedesk.Tx) error {
		requester, err := tx.UpsertContact(ctx, e.tenant.ID, casedesk.Address{Name: "Eve\r\nBcc: x@evil.example",
			Email: "eve@customer.example"})
		if err != nil {
			return err
		}
		c, err = tx.CreateCase(ctx, casedesk.NewCase{TenantID: e.tenant.ID, RequesterID: requester.ID,
			Subject: "hi\r\nBcc: victim@evil.example\r\nX-Injected: yes", Priority: casedesk.PriorityNormal,
			Category: casedesk.CategoryEmail})
		if err != nil {
			return err
		}
		agent, err := tx.CreateUser(ctx, casedesk.NewUser{TenantID: e.tenant.ID, Name: "Mallory\nX-Injected: yes",
			Email: "mallory@acme.example", RoleName: "support"})
		if err != nil {
			return err
		}
		_, err = tx.EnqueueOutboxItems(ctx, []casedesk.NewOutboxItem{
			{TenantID: e.tenant.ID, CaseID: c.ID, Kind: casedesk.OutboxAck, To: "eve@customer.example",
				MessageID: e.tokens.MessageID(c.Number, 1, "acme.example"), Payload: json.RawMessage(`{}`)},
			{TenantID: e.tenant.ID, CaseID: c.ID, Kind: casedesk.OutboxRelay, To: "eve@customer.example",
				MessageID: e.tokens.MessageID(c.Number, 2, "acme.example"),
				Payload:   json.RawMessage(fmt.Sprintf(`{"text": "hello", "agent_user_id": %d}`, agent.ID))},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats := e.drain(); stats.Sent != 2 {
		t.Fatalf("stats = %+v", stats)
	}
	for i := range 2 {
		env, rec := e.captured(i)
		if len(rec.To) != 1 || rec.To[0] != "eve@customer.example" {
			t.Errorf("message %d went to %q", i, rec.To)
		}
		for _, k := range []string{"Bcc", "X-Injected"} {
			if v := env.GetHeader(k); v != "" {
				t.Errorf("message %d: injected %s: %q", i, k, v)
			}
		}
		// The name is in the body too, where a line break is only text.
		head, _, _ := bytes.Cut(rec.Raw, []byte("\r\n\r\n"))
		checkNoInjection(t, head)
	}
}

// TestWorkerKeepsBrokenItemsOut: an item that can never be sent (its
// relayed message is gone, or an unknown kind) fails with an event, and
// does not hold up the others in its batch.
func TestWorkerKeepsBrokenItemsOut(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	ctx := context.Background()
	err := e.db.Update(ctx, func(tx casedesk.Tx) error {
		_, err := tx.EnqueueOutboxItems(ctx, []casedesk.NewOutboxItem{
			{TenantID: e.tenant.ID, CaseID: c.ID, Kind: casedesk.OutboxRelay, To: "cara@customer.example",
				MessageID: e.tokens.MessageID(c.Number, 7, "acme.example"), Payload: json.RawMessage(`{"message_id": 999999999}`)},
			{TenantID: e.tenant.ID, CaseID: c.ID, Kind: "fax", To: "cara@customer.example",
				MessageID: e.tokens.MessageID(c.Number, 8, "acme.example")},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats := e.drain(); stats != (Stats{Claimed: 3, Sent: 1, Failed: 2}) {
		t.Fatalf("stats = %+v", stats)
	}
	if n := len(e.events(c, casedesk.EventDeliveryFail)); n != 2 {
		t.Errorf("%d delivery_failed events, want 2", n)
	}
}

// TestWorkerRunStopsCleanly: Run sends what is queued, wakes on Wake, and
// returns when its context ends.
func TestWorkerRunStopsCleanly(t *testing.T) {
	e := newWorkerEnv(t)
	e.worker.opts.PollInterval = time.Hour // only Wake can start a batch
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.worker.Run(ctx) }()
	e.deliver(opening().raw())
	e.worker.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for e.smtp.accepted() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if e.smtp.accepted() != 1 {
		t.Fatalf("server accepted %d messages, want 1", e.smtp.accepted())
	}
	if it := e.outbox()[0]; it.State != casedesk.OutboxSent {
		t.Errorf("item = %+v", it)
	}
}

// failingRecord is a store whose transactions after the first n fail, as
// if the worker lost the database (or crashed) after sending.
type failingRecord struct {
	casedesk.Store
	n     int
	calls atomic.Int32
}

func (s *failingRecord) Update(ctx context.Context, fn func(tx casedesk.Tx) error) error {
	if int(s.calls.Add(1)) > s.n {
		return casedesk.Errorf(casedesk.EUNAVAILABLE, "database gone")
	}
	return s.Store.Update(ctx, fn)
}

// TestWorkerStoreLostBeforeEndOfData: a worker that loses the database
// after claiming cannot record the message as sent before its end of data,
// so the server never takes it and the item stays claimed; the sweep hands
// it out again once the claim is old, and it is sent once and kept on its
// case once.
func TestWorkerStoreLostBeforeEndOfData(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	sender, err := NewSender(e.smtp.config())
	if err != nil {
		t.Fatal(err)
	}
	crashing := NewWorker(&failingRecord{Store: e.db, n: 1}, sender, WorkerOptions{Loop: testLoop, Logger: testLogger()})
	if _, err := crashing.Drain(context.Background()); casedesk.ErrorCode(err) != casedesk.EUNAVAILABLE {
		t.Fatalf("Drain = %v, want the record to fail", err)
	}
	sender.Close()
	waitFor(t, "the server to see the data end", func() bool { return e.smtp.dataDone() == 1 })
	if e.smtp.accepted() != 0 || e.outbox()[0].State != casedesk.OutboxSending {
		t.Fatalf("accepted %d, item %+v; want nothing sent and the item still claimed", e.smtp.accepted(), e.outbox()[0])
	}

	// A young claim belongs to a worker that may still finish it.
	e.clock.Add(10 * time.Minute)
	if n, err := e.worker.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want nothing requeued yet", n, err)
	}
	e.clock.Add(6 * time.Minute)
	if n, err := e.worker.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want the stuck item requeued", n, err)
	}
	if stats := e.drain(); stats.Sent != 1 {
		t.Fatalf("stats = %+v", stats)
	}
	if n := e.smtp.accepted(); n != 1 {
		t.Errorf("server accepted %d messages, want 1", n)
	}
	if it := e.outbox()[0]; it.State != casedesk.OutboxSent || it.Attempts != 2 {
		t.Errorf("item = %+v, want sent on attempt 2", it)
	}
	if msgs := e.messages(c); len(msgs) != 2 {
		t.Errorf("case has %d messages, want the customer's and one acknowledgement", len(msgs))
	}
}

// TestWorkerRemindersAndNotices: automatic mail on a case is marked
// auto-generated and threads under the last mail the customer saw.
func TestWorkerRemindersAndNotices(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	e.drain()
	ack, _ := e.captured(0)
	ackID := unbracket(ack.GetHeader("Message-Id"))
	ctx := context.Background()
	err := e.db.Update(ctx, func(tx casedesk.Tx) error {
		_, err := tx.EnqueueOutboxItems(ctx, []casedesk.NewOutboxItem{
			{TenantID: e.tenant.ID, CaseID: c.ID, Kind: casedesk.OutboxReminder, To: "cara@customer.example",
				MessageID: e.tokens.MessageID(c.Number, 11, "acme.example"), Payload: json.RawMessage(`{"solve_in_days": 4}`)},
			{TenantID: e.tenant.ID, CaseID: c.ID, Kind: casedesk.OutboxSolved, To: "cara@customer.example",
				MessageID: e.tokens.MessageID(c.Number, 12, "acme.example")},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats := e.drain(); stats.Sent != 2 {
		t.Fatalf("stats = %+v", stats)
	}
	reminder, _ := e.captured(1)
	notice, _ := e.captured(2)
	// Both were due at the same instant: either may go first.
	if !strings.Contains(reminder.GetHeader("Subject"), "Waiting for your reply") {
		reminder, notice = notice, reminder
	}
	for _, tt := range []struct {
		env        *enmime.Envelope
		inReplyTo  string
		refs       []string
		bodyNeedle string
	}{
		{reminder, ackID, []string{"CAF+orig@mail.gmail.com", ackID}, "4 days"},
		// The notice was built in the same batch as the reminder: both
		// answer the last mail stored before the batch.
		{notice, ackID, []string{"CAF+orig@mail.gmail.com", ackID}, "14 days"},
	} {
		env := tt.env
		if env.GetHeader("Auto-Submitted") != "auto-generated" || env.GetHeader("X-Auto-Response-Suppress") != "All" {
			t.Errorf("%s: Auto-Submitted %q", env.GetHeader("Subject"), env.GetHeader("Auto-Submitted"))
		}
		if got := unbracket(env.GetHeader("In-Reply-To")); got != tt.inReplyTo {
			t.Errorf("%s: In-Reply-To %q, want %q", env.GetHeader("Subject"), got, tt.inReplyTo)
		}
		if got := refsOf(env); !slices.Equal(got, tt.refs) {
			t.Errorf("%s: References %q, want %q", env.GetHeader("Subject"), got, tt.refs)
		}
		if !strings.HasPrefix(env.GetHeader("Subject"), fmt.Sprintf("[Case #%d] ", c.Number)) {
			t.Errorf("Subject %q", env.GetHeader("Subject"))
		}
		if !strings.Contains(env.Text, tt.bodyNeedle) {
			t.Errorf("%s: text lacks %q:\n%s", env.GetHeader("Subject"), tt.bodyNeedle, env.Text)
		}
	}
}

// TestWorkerSendsInvoice: mail about no case (an invoice) carries its
// stored attachment, is not tagged, and is kept on no case; a missing
// attachment fails the item rather than send it without.
func TestWorkerSendsInvoice(t *testing.T) {
	e := newWorkerEnv(t)
	pdf := "%PDF-1.4 invoice INV-7"
	withPDF := "Message-ID: <pdf-1@customer.example>\r\nFrom: cara@customer.example\r\nTo: support@acme.example\r\n" +
		"Subject: our PO\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nPO attached\r\n" +
		"--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=po.pdf\r\n\r\n" + pdf + "\r\n--b1--\r\n"
	e.deliver([]byte(withPDF))
	c := e.caseOf("pdf-1@customer.example")
	e.drain() // the acknowledgement
	var sum string
	for _, m := range e.messages(c) {
		for _, a := range m.Attachments {
			sum = fmt.Sprintf("%x", a.SHA256)
		}
	}
	if sum == "" {
		t.Fatal("no stored attachment")
	}
	ctx := context.Background()
	invoice := func(seq int64, sha string) casedesk.NewOutboxItem {
		return casedesk.NewOutboxItem{TenantID: e.tenant.ID, Kind: casedesk.OutboxInvoice, To: "bea@customer.example",
			MessageID: fmt.Sprintf("inv-%d@acme.example", seq), Payload: json.RawMessage(fmt.Sprintf(`{
				"invoice_number": "INV-7", "account_name": "Customer Inc", "recipient_name": "Bea Billing",
				"period_start": "2026-10-01T00:00:00Z", "period_end": "2026-10-31T00:00:00Z", "due_date": "2026-11-30T00:00:00Z",
				"amount_minor": 123456, "currency": "EUR",
				"attachments": [{"name": "INV-7.pdf", "content_type": "application/pdf", "sha256": %q}]}`, sha))}
	}
	err := e.db.Update(ctx, func(tx casedesk.Tx) error {
		_, err := tx.EnqueueOutboxItems(ctx, []casedesk.NewOutboxItem{invoice(1, sum), invoice(2, strings.Repeat("ab", 32))})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats := e.drain(); stats != (Stats{Claimed: 2, Sent: 1, Failed: 1}) {
		t.Fatalf("stats = %+v", stats)
	}
	env, rec := e.captured(1)
	if !slices.Equal(rec.To, []string{"bea@customer.example"}) {
		t.Errorf("sent to %q", rec.To)
	}
	if s := env.GetHeader("Subject"); strings.Contains(s, "[Case") || !strings.Contains(s, "INV-7") {
		t.Errorf("Subject = %q", s)
	}
	if env.GetHeader("Auto-Submitted") != "auto-generated" || env.GetHeader("Reply-To") != "" {
		t.Errorf("Auto-Submitted %q, Reply-To %q", env.GetHeader("Auto-Submitted"), env.GetHeader("Reply-To"))
	}
	if !strings.Contains(env.Text, "Bea Billing") || !strings.Contains(env.Text, "1,234.56") {
		t.Errorf("text:\n%s", env.Text)
	}
	if len(env.Attachments) != 1 || env.Attachments[0].FileName != "INV-7.pdf" ||
		strings.TrimSpace(string(env.Attachments[0].Content)) != pdf {
		t.Errorf("attachments = %+v", env.Attachments)
	}
	items := e.outbox()
	last := items[len(items)-1]
	if last.State != casedesk.OutboxFailed || !strings.Contains(last.LastError, "not found") {
		t.Errorf("invoice with a missing attachment = %+v", last)
	}
}

// TestWorkerServerHangs: a server that stops answering costs one timeout;
// the item is due again later and the next batch, on a new connection,
// delivers it.
func TestWorkerServerHangs(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	cfg := e.smtp.config()
	cfg.Timeout = 300 * time.Millisecond
	sender, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.worker = NewWorker(e.db, sender, WorkerOptions{Loop: testLoop, Logger: testLogger(), NoRecover: true})
	e.smtp.failNext("mail", 1, fault{hang: true})
	if stats := e.drain(); stats.Retried != 1 || stats.Sent != 0 {
		t.Fatalf("stats = %+v, want a retry after the timeout", stats)
	}
	it := e.outbox()[0]
	if it.State != casedesk.OutboxPending || !strings.Contains(it.LastError, "timeout") && !strings.Contains(it.LastError, "deadline") {
		t.Fatalf("item = %+v", it)
	}
	e.clock.Add(time.Hour)
	if stats := e.drain(); stats.Sent != 1 {
		t.Fatalf("stats = %+v, want sent after the server recovered", stats)
	}
}

// TestWorkerRelaysSanitisedHTML: an agent's HTML reply from the admin API
// goes out with its formatting in the HTML part and without anything
// active; the text part is the agent's text.
func TestWorkerRelaysSanitisedHTML(t *testing.T) {
	e := newWorkerEnv(t)
	e.deliver(opening().raw())
	c := e.caseOf("CAF+orig@mail.gmail.com")
	e.drain()
	ctx := context.Background()
	html := `<p>Please <b>restart</b> the <a href="https://acme.example/kb/1">spooler</a>.</p>` +
		`<script>alert(1)</script><img src="x" onerror="steal()"><a href="javascript:evil()">click</a>` +
		`<form action="https://evil.example"><input name="password"></form>`
	payload, _ := json.Marshal(map[string]any{"case_number": c.Number, "text": "Please restart the spooler.",
		"html": html, "agent_user_id": e.agent.ID})
	err := e.db.Update(ctx, func(tx casedesk.Tx) error {
		_, err := tx.EnqueueOutbox(ctx, casedesk.NewOutboxItem{TenantID: e.tenant.ID, CaseID: c.ID,
			Kind: casedesk.OutboxRelay, To: "cara@customer.example",
			MessageID: e.tokens.MessageID(c.Number, 99, "acme.example"), Payload: payload})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if stats := e.drain(); stats.Sent != 1 {
		t.Fatalf("stats = %+v", stats)
	}
	env, _ := e.captured(1)
	for _, want := range []string{"<b>restart</b>", `href="https://acme.example/kb/1"`} {
		if !strings.Contains(env.HTML, want) {
			t.Errorf("html part lacks %s:\n%s", want, env.HTML)
		}
	}
	for _, bad := range []string{"<script", "alert(1)", "onerror", "javascript:", "<form", "<input"} {
		if strings.Contains(env.HTML, bad) {
			t.Errorf("html part holds %s:\n%s", bad, env.HTML)
		}
	}
	if !strings.Contains(env.Text, "Please restart the spooler.") || strings.Contains(env.Text, "<b>") {
		t.Errorf("text part:\n%s", env.Text)
	}
}
