package notify

import (
	"context"
	"testing"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/ingest"
)

// TestWorkerSandboxMail: a sandbox's mail never reaches the production
// SMTP server. Without a sandbox server it goes nowhere, yet is recorded
// as sent and kept on its case, as in production; with one it goes there.
func TestWorkerSandboxMail(t *testing.T) {
	e := newWorkerEnv(t)
	ctx := context.Background()
	var sb *casedesk.Sandbox
	err := e.db.Update(ctx, func(tx casedesk.Tx) (err error) {
		sb, err = tx.CreateSandbox(ctx, casedesk.NewSandbox{TenantID: e.tenant.ID, Mode: casedesk.SandboxEmpty})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(m inbound) *casedesk.Case {
		t.Helper()
		raw := m.raw()
		e.uid++
		err := e.proc.Process(ctx, []*ingest.Fetched{{TenantID: sb.Tenant.ID, Mailbox: "INBOX", UIDValidity: 1,
			UID: e.uid, Size: int64(len(raw)), Raw: raw}})
		if err != nil {
			t.Fatal(err)
		}
		var c *casedesk.Case
		e.view(func(tx casedesk.Tx) error {
			refs, err := tx.FindMessagesByMessageIDs(ctx, sb.Tenant.ID, []string{m.ID})
			if err != nil || len(refs) != 1 {
				t.Fatalf("message %s: %v, %d stored", m.ID, err, len(refs))
			}
			c, err = tx.FindCase(ctx, sb.Tenant.ID, refs[0].CaseID)
			return err
		})
		return c
	}
	stored := func(c *casedesk.Case) []*casedesk.Message {
		var msgs []*casedesk.Message
		e.view(func(tx casedesk.Tx) (err error) {
			msgs, err = tx.ListMessages(ctx, sb.Tenant.ID, c.ID)
			return err
		})
		return msgs
	}

	c := deliver(opening())
	if stats := e.drain(); stats.Sent != 1 {
		t.Fatalf("stats = %+v, want the sandbox's acknowledgement sent", stats)
	}
	if n := e.smtp.accepted(); n != 0 {
		t.Errorf("the production SMTP server got %d messages of the sandbox", n)
	}
	if msgs := stored(c); len(msgs) != 2 || msgs[1].Direction != casedesk.Outbound {
		t.Errorf("sandbox case has %d messages, want the mail and its acknowledgement", len(msgs))
	}

	// With a sandbox server, the sandbox's mail goes there.
	sandboxSMTP := newTestServer(t, serverOptions{})
	sender, err := NewSender(e.smtp.config())
	if err != nil {
		t.Fatal(err)
	}
	sbSender, err := NewSender(sandboxSMTP.config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close(); sbSender.Close() })
	w := NewWorker(e.db, sender, WorkerOptions{Loop: testLoop, Logger: testLogger(), NoRecover: true, SandboxMailer: sbSender})
	second := opening()
	second.ID, second.From = "second@customer.example", "Dan <dan@customer.example>"
	deliver(second)
	e.deliver(inbound{ID: "prod@customer.example", From: "Eve <eve@customer.example>", To: "support@acme.example",
		Subject: "Production mail"}.raw())
	if stats, err := w.Drain(ctx); err != nil || stats.Sent != 2 {
		t.Fatalf("stats = %+v, %v", stats, err)
	}
	if got := sandboxSMTP.received(); len(got) != 1 || got[0].To[0] != "dan@customer.example" {
		t.Errorf("sandbox SMTP server got %+v", got)
	}
	if got := e.smtp.received(); len(got) != 1 || got[0].To[0] != "eve@customer.example" {
		t.Errorf("production SMTP server got %+v", got)
	}
}
