package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/casestore"
	"github.com/casedesk/casedesk/casestore/casestoretest"
	"github.com/casedesk/casedesk/threading"
)

// procEnv is a tenant (support@acme.example, agent alex@acme.example) with
// the StoreProcessor writing into PostgreSQL.
type procEnv struct {
	t      *testing.T
	db     *casestore.DB
	tenant *casedesk.Tenant
	tokens threading.Tokens
	proc   *StoreProcessor
	uid    uint32
}

func newProcEnv(t *testing.T) *procEnv {
	t.Helper()
	db := casestoretest.Open(t)
	e := &procEnv{t: t, db: db}
	err := db.Update(context.Background(), func(tx casedesk.Tx) (err error) {
		e.tenant, err = tx.CreateTenant(context.Background(), casedesk.NewTenant{
			Slug: fmt.Sprintf("s-%d", time.Now().UnixNano()), Name: "Acme", SupportAddress: "support@acme.example"})
		if err != nil {
			return err
		}
		if _, err := tx.CreateAccount(context.Background(), casedesk.NewAccount{TenantID: e.tenant.ID, Name: "Customer Inc",
			Domains: []string{"customer.example"}}); err != nil {
			return err
		}
		_, err = tx.CreateUser(context.Background(), casedesk.NewUser{TenantID: e.tenant.ID, Name: "Alex Agent",
			Email: "alex@acme.example", RoleName: "support"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.tokens = threading.NewTokens(e.tenant.ID, e.tenant.TokenSecret)
	e.proc = NewStoreProcessor(db, ProcessorOptions{Logger: testLogger(),
		Classifier: ClassifierConfig{LoopValue: "casedesk@acme.example", ErrorReportHeader: "X-Casedesk-Report", ErrorReportValue: "error"}})
	return e
}

// deliver hands the mails to the processor as one batch.
func (e *procEnv) deliver(mails ...[]byte) error {
	batch := make([]*Fetched, len(mails))
	for i, raw := range mails {
		e.uid++
		batch[i] = &Fetched{TenantID: e.tenant.ID, Mailbox: "support@acme.example@imap:993/INBOX", UIDValidity: 1,
			UID: e.uid, Size: int64(len(raw)), Raw: raw}
	}
	return e.proc.Process(context.Background(), batch)
}

func (e *procEnv) mustDeliver(mails ...[]byte) {
	e.t.Helper()
	if err := e.deliver(mails...); err != nil {
		e.t.Fatal(err)
	}
}

// view runs reads and fails the test on error.
func (e *procEnv) view(fn func(tx casedesk.Tx) error) {
	e.t.Helper()
	if err := e.db.View(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

// caseOf returns the case a stored Message-ID is on, nil if not stored.
func (e *procEnv) caseOf(messageID string) *casedesk.Case {
	e.t.Helper()
	var c *casedesk.Case
	e.view(func(tx casedesk.Tx) error {
		refs, err := tx.FindMessagesByMessageIDs(context.Background(), e.tenant.ID, []string{messageID})
		if err != nil || len(refs) == 0 {
			return err
		}
		c, err = tx.FindCase(context.Background(), e.tenant.ID, refs[0].CaseID)
		return err
	})
	return c
}

func (e *procEnv) caseCount() int {
	e.t.Helper()
	var n int
	e.view(func(tx casedesk.Tx) error {
		page, err := tx.ListCases(context.Background(), e.tenant.ID, casedesk.CaseFilter{Limit: 200})
		if err == nil {
			n = len(page.Cases)
		}
		return err
	})
	return n
}

// outbox counts queued mail of a kind to an address.
func (e *procEnv) outbox(kind casedesk.OutboxKind, to string) int {
	e.t.Helper()
	var n int
	e.view(func(tx casedesk.Tx) (err error) {
		n, err = tx.CountOutbox(context.Background(), e.tenant.ID, kind, to, time.Now().Add(-24*time.Hour))
		return err
	})
	return n
}

func (e *procEnv) setStatus(c *casedesk.Case, path ...casedesk.Status) {
	e.t.Helper()
	err := e.db.Update(context.Background(), func(tx casedesk.Tx) error {
		for _, s := range path {
			if _, err := tx.ChangeStatus(context.Background(), e.tenant.ID, c.ID, s, casedesk.SystemActor); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// email builds realistic RFC 5322 mail.
type email struct {
	ID, From, To, Cc, Subject, InReplyTo, References, Body string
	Headers                                                []string
}

func (m email) raw() []byte {
	var b strings.Builder
	if m.ID != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", m.ID)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", m.From, m.To)
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
	for _, h := range m.Headers {
		b.WriteString(h + "\r\n")
	}
	body := m.Body
	if body == "" {
		body = "Hello,\r\n\r\nthe printer on the 3rd floor is on fire again.\r\n\r\nCara"
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", body)
	return []byte(b.String())
}

func brackets(ids ...string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "<" + id + ">"
	}
	return strings.Join(out, " ")
}

const (
	caraAddr = "Cara Customer <cara@customer.example>"
	supAddr  = "Acme Support <support@acme.example>"
)

// opening is Cara's first mail, which every scenario starts from.
func opening() email {
	return email{ID: "CAF+orig@mail.gmail.com", From: caraAddr, To: supAddr, Subject: "Printer on fire",
		Cc: "Dan <dan@customer.example>"}
}

func bounceOf(originalID, rcpt string) []byte {
	return []byte("Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\n" +
		"To: support@acme.example\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n" +
		"Message-ID: <dsn-" + originalID + "@mx.customer.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n" +
		"--B1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n" +
		"--B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n" +
		"Final-Recipient: rfc822; " + rcpt + "\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n" +
		"--B1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: Acme Support <support@acme.example>\r\nTo: " + rcpt +
		"\r\nSubject: [Case #1] We received your request\r\nMessage-ID: <" + originalID + ">\r\n\r\n--B1--\r\n")
}

// scenario is a conversation: mails delivered in turn (with state changes
// in between), then checks on what the last mail did.
type scenario struct {
	name string
	// before runs after the opening mail was processed; it may change the
	// case and returns the mails to deliver next, the last one under test.
	before func(e *procEnv, c *casedesk.Case) [][]byte
	check  func(t *testing.T, e *procEnv, opened *casedesk.Case)
}

// lastCase is the case of the newest mail with this Message-ID.
func wantOn(t *testing.T, e *procEnv, id string, want *casedesk.Case) *casedesk.Case {
	t.Helper()
	got := e.caseOf(id)
	switch {
	case got == nil:
		t.Fatalf("%s was not stored", id)
	case want != nil && got.ID != want.ID:
		t.Fatalf("%s landed on case #%d, want #%d", id, got.Number, want.Number)
	}
	return got
}

func wantNewCase(t *testing.T, e *procEnv, id string, not *casedesk.Case) *casedesk.Case {
	t.Helper()
	got := e.caseOf(id)
	switch {
	case got == nil:
		t.Fatalf("%s was not stored", id)
	case got.ID == not.ID:
		t.Fatalf("%s landed on case #%d, want a new case", id, got.Number)
	}
	return got
}

func wantStatus(t *testing.T, e *procEnv, c *casedesk.Case, want casedesk.Status) {
	t.Helper()
	var got *casedesk.Case
	e.view(func(tx casedesk.Tx) (err error) {
		got, err = tx.FindCase(context.Background(), e.tenant.ID, c.ID)
		return err
	})
	if got.Status != want {
		t.Errorf("case #%d is %s, want %s", c.Number, got.Status, want)
	}
}

func wantAcks(t *testing.T, e *procEnv, to string, acks, followUps int) {
	t.Helper()
	if got := e.outbox(casedesk.OutboxAck, to); got != acks {
		t.Errorf("%d acknowledgements to %s, want %d", got, to, acks)
	}
	if got := e.outbox(casedesk.OutboxFollowUpAck, to); got != followUps {
		t.Errorf("%d follow-up acknowledgements to %s, want %d", got, to, followUps)
	}
}

func participants(t *testing.T, e *procEnv, c *casedesk.Case) []string {
	t.Helper()
	var out []string
	e.view(func(tx casedesk.Tx) error {
		list, err := tx.ListParticipants(context.Background(), e.tenant.ID, c.ID)
		for _, p := range list {
			out = append(out, strings.ToLower(p.Email))
		}
		return err
	})
	return out
}

func events(t *testing.T, e *procEnv, c *casedesk.Case) []string {
	t.Helper()
	var out []string
	e.view(func(tx casedesk.Tx) error {
		list, err := tx.ListEvents(context.Background(), e.tenant.ID, c.ID)
		for _, ev := range list {
			out = append(out, ev.Kind)
		}
		return err
	})
	return out
}

func messages(t *testing.T, e *procEnv, c *casedesk.Case) []*casedesk.Message {
	t.Helper()
	var out []*casedesk.Message
	e.view(func(tx casedesk.Tx) (err error) {
		out, err = tx.ListMessages(context.Background(), e.tenant.ID, c.ID)
		return err
	})
	return out
}

func TestProcessorOpensCaseWithAck(t *testing.T) {
	e := newProcEnv(t)
	e.mustDeliver(opening().raw())
	c := wantOn(t, e, "CAF+orig@mail.gmail.com", nil)
	if c.Number != 1 || c.Subject != "Printer on fire" || c.Status != casedesk.StatusNew {
		t.Errorf("case = #%d %q %s", c.Number, c.Subject, c.Status)
	}
	wantAcks(t, e, "cara@customer.example", 1, 0)
	if p := participants(t, e, c); !slices.Contains(p, "cara@customer.example") || !slices.Contains(p, "dan@customer.example") {
		t.Errorf("participants = %v, want Cara and Dan (Cc)", p)
	}
	msgs := messages(t, e, c)
	if len(msgs) != 1 || msgs[0].AuthorKind != casedesk.AuthorCustomer || msgs[0].Direction != casedesk.Inbound || msgs[0].RawSize == 0 {
		t.Fatalf("messages = %+v", msgs)
	}
	var raw []byte
	e.view(func(tx casedesk.Tx) (err error) {
		raw, err = tx.RawMessage(context.Background(), e.tenant.ID, msgs[0].ID)
		return err
	})
	if string(raw) != string(opening().raw()) {
		t.Error("raw bytes not kept exactly")
	}
	if ev := events(t, e, c); !slices.Contains(ev, casedesk.EventCreated) {
		t.Errorf("events = %v, want created", ev)
	}
}

func TestProcessorAckLimit(t *testing.T) {
	// 20 new mails from one address within the hour, in batches as the
	// poller hands them over: the limit holds across batches and within one.
	for _, perBatch := range []int{5, 20} {
		t.Run(fmt.Sprintf("batches of %d", perBatch), func(t *testing.T) {
			e := newProcEnv(t)
			for b := range 20 / perBatch {
				var batch [][]byte
				for i := range perBatch {
					n := b*perBatch + i
					batch = append(batch, email{ID: fmt.Sprintf("n%d@customer.example", n), From: caraAddr, To: supAddr,
						Subject: fmt.Sprintf("Question %d", n)}.raw())
				}
				e.mustDeliver(batch...)
			}
			if n := e.caseCount(); n != 20 {
				t.Errorf("%d cases, want 20", n)
			}
			wantAcks(t, e, "cara@customer.example", 5, 0)
		})
	}
}

func TestProcessorDuplicateDelivery(t *testing.T) {
	e := newProcEnv(t)
	e.mustDeliver(opening().raw())
	e.mustDeliver(opening().raw())                  // fetched again after a crash
	e.mustDeliver(opening().raw(), opening().raw()) // twice in one batch
	if n := e.caseCount(); n != 1 {
		t.Errorf("%d cases, want 1", n)
	}
	wantAcks(t, e, "cara@customer.example", 1, 0)
	// Mail without a Message-ID is recognised by its bytes.
	noID := email{From: caraAddr, To: supAddr, Subject: "No id"}.raw()
	e.mustDeliver(noID)
	e.mustDeliver(noID)
	if n := e.caseCount(); n != 2 {
		t.Errorf("%d cases after a message without Message-ID twice, want 2", n)
	}
}

func TestProcessorThreadsWithinOneBatch(t *testing.T) {
	e := newProcEnv(t)
	first := opening()
	reply := email{ID: "CAF+second@mail.gmail.com", From: caraAddr, To: supAddr, Subject: "Re: Printer on fire",
		InReplyTo: first.ID, References: brackets(first.ID), Body: "Forgot to say: it's the blue one."}
	e.mustDeliver(first.raw(), reply.raw())
	c := wantOn(t, e, first.ID, nil)
	wantOn(t, e, reply.ID, c)
	if n := e.caseCount(); n != 1 {
		t.Errorf("%d cases, want 1", n)
	}
	wantAcks(t, e, "cara@customer.example", 1, 0)
}

func TestProcessorBadMessageIsNamed(t *testing.T) {
	e := newProcEnv(t)
	e.proc.parser = NewParser(2 << 10)
	big := email{ID: "big@customer.example", From: caraAddr, To: supAddr, Subject: "logs", Body: strings.Repeat("x", 4<<10)}.raw()
	err := e.deliver(opening().raw(), big)
	var me *MessageError
	if !errors.As(err, &me) || me.UID != e.uid || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want a MessageError naming the oversize message", err)
	}
	if e.caseCount() != 0 {
		t.Error("a failed batch left cases behind")
	}
}
