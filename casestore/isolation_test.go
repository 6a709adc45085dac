package casestore_test

import (
	"fmt"
	"testing"

	"github.com/casedesk/casedesk"
)

// objects are one of everything a tenant owns.
type objects struct {
	tenantID   int64
	contact    *casedesk.Contact
	account    *casedesk.Account
	user       *casedesk.User
	kase       *casedesk.Case
	message    *casedesk.Message
	outbox     *casedesk.OutboxItem
	attachSHA  []byte
	quarantine *casedesk.QuarantinedMessage
}

func populate(t *testing.T, f *fixture, tag string) objects {
	t.Helper()
	o := objects{tenantID: f.tenant.ID, contact: f.requester}
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		if o.account, err = tx.CreateAccount(ctx(), casedesk.NewAccount{TenantID: f.tenant.ID, Name: "Acct " + tag, Domains: []string{tag + ".example"}}); err != nil {
			return err
		}
		if o.user, err = tx.CreateUser(ctx(), casedesk.NewUser{TenantID: f.tenant.ID, Email: "agent@" + tag + ".example", Name: "Agent", RoleName: casedesk.RoleSupport}); err != nil {
			return err
		}
		if o.kase, err = tx.CreateCase(ctx(), casedesk.NewCase{TenantID: f.tenant.ID, Subject: "secret of " + tag, RequesterID: f.requester.ID, AccountID: o.account.ID}); err != nil {
			return err
		}
		n := f.inbound(o.kase.ID, "msg@"+tag+".example")
		n.Attachments = []casedesk.NewAttachment{{Name: "a.txt", Content: []byte("attachment of " + tag)}}
		if o.message, _, err = tx.AppendMessage(ctx(), n); err != nil {
			return err
		}
		o.attachSHA = o.message.Attachments[0].SHA256
		if o.outbox, err = tx.EnqueueOutbox(ctx(), casedesk.NewOutboxItem{TenantID: f.tenant.ID, CaseID: o.kase.ID,
			Kind: casedesk.OutboxAck, To: f.requester.Email, MessageID: "ack@" + tag + ".example"}); err != nil {
			return err
		}
		if _, err = tx.AppendAudit(ctx(), casedesk.AuditEntry{TenantID: f.tenant.ID, Action: "case.read", TargetKind: "case", TargetID: "1"}); err != nil {
			return err
		}
		if o.quarantine, err = tx.QuarantineMessage(ctx(), casedesk.QuarantinedMessage{TenantID: f.tenant.ID,
			Mailbox: "INBOX", Error: "bad", Raw: []byte("broken mail of " + tag)}); err != nil {
			return err
		}
		return tx.SaveCheckpoint(ctx(), casedesk.MailboxCheckpoint{TenantID: f.tenant.ID, Mailbox: "INBOX", UIDValidity: 1, LastUID: 5})
	})
	return o
}

// TestTenantIsolation calls every tenant-scoped read with tenant A's ID and
// tenant B's objects: each must find nothing. The same call with B's own ID
// must find the object, so a read that always finds nothing cannot pass.
func TestTenantIsolation(t *testing.T) {
	fa, fb := newFixture(t), newFixture(t)
	populate(t, fa, "a"+randHex(3))
	b := populate(t, fb, "b"+randHex(3))

	// Each read returns how many of B's objects it saw.
	reads := []struct {
		name string
		read func(tx casedesk.Tx, tenantID int64) (int, error)
	}{
		{"FindAccount", func(tx casedesk.Tx, id int64) (int, error) { return one(tx.FindAccount(ctx(), id, b.account.ID)) }},
		{"FindContact", func(tx casedesk.Tx, id int64) (int, error) { return one(tx.FindContact(ctx(), id, b.contact.ID)) }},
		{"FindContactByEmail", func(tx casedesk.Tx, id int64) (int, error) {
			c, err := tx.FindContactByEmail(ctx(), id, b.contact.Email)
			if err == nil && c.ID != b.contact.ID {
				return 0, nil // A has its own contact with the same address
			}
			return one(c, err)
		}},
		{"FindUserByEmail", func(tx casedesk.Tx, id int64) (int, error) { return one(tx.FindUserByEmail(ctx(), id, b.user.Email)) }},
		{"FindCase", func(tx casedesk.Tx, id int64) (int, error) { return one(tx.FindCase(ctx(), id, b.kase.ID)) }},
		{"FindCaseByNumber", func(tx casedesk.Tx, id int64) (int, error) {
			c, err := tx.FindCaseByNumber(ctx(), id, b.kase.Number)
			if err == nil && c.ID != b.kase.ID {
				return 0, nil // A's own case with the same number
			}
			return one(c, err)
		}},
		{"ListCases", func(tx casedesk.Tx, id int64) (int, error) {
			p, err := tx.ListCases(ctx(), id, casedesk.CaseFilter{})
			return countIf(p.Cases, func(c *casedesk.Case) bool { return c.ID == b.kase.ID }), err
		}},
		{"ListParticipants", func(tx casedesk.Tx, id int64) (int, error) {
			ps, err := tx.ListParticipants(ctx(), id, b.kase.ID)
			return len(ps), err
		}},
		{"ListEvents", func(tx casedesk.Tx, id int64) (int, error) {
			es, err := tx.ListEvents(ctx(), id, b.kase.ID)
			return len(es), err
		}},
		{"ListMessages", func(tx casedesk.Tx, id int64) (int, error) {
			ms, err := tx.ListMessages(ctx(), id, b.kase.ID)
			return len(ms), err
		}},
		{"FindMessagesByMessageIDs", func(tx casedesk.Tx, id int64) (int, error) {
			rs, err := tx.FindMessagesByMessageIDs(ctx(), id, []string{b.message.MessageID})
			return len(rs), err
		}},
		{"RawMessage", func(tx casedesk.Tx, id int64) (int, error) {
			raw, err := tx.RawMessage(ctx(), id, b.message.ID)
			return notFoundIsZero(len(raw), err)
		}},
		{"AttachmentContent", func(tx casedesk.Tx, id int64) (int, error) {
			data, err := tx.AttachmentContent(ctx(), id, b.attachSHA)
			return notFoundIsZero(len(data), err)
		}},
		{"FindOutboxItem", func(tx casedesk.Tx, id int64) (int, error) { return one(tx.FindOutboxItem(ctx(), id, b.outbox.ID)) }},
		{"CountOutbox", func(tx casedesk.Tx, id int64) (int, error) {
			return tx.CountOutbox(ctx(), id, casedesk.OutboxAck, b.contact.Email, b.kase.CreatedAt.Add(-1))
		}},
		{"Checkpoint", func(tx casedesk.Tx, id int64) (int, error) {
			cp, err := tx.Checkpoint(ctx(), id, "INBOX")
			if err == nil && cp.TenantID != b.tenantID {
				return 0, nil
			}
			return one(cp, err)
		}},
		{"ListQuarantine", func(tx casedesk.Tx, id int64) (int, error) {
			qs, err := tx.ListQuarantine(ctx(), id, 100, 0)
			return countIf(qs, func(q *casedesk.QuarantinedMessage) bool { return q.ID == b.quarantine.ID }), err
		}},
		{"QuarantinedRaw", func(tx casedesk.Tx, id int64) (int, error) { return one(tx.QuarantinedRaw(ctx(), id, b.quarantine.ID)) }},
		{"ListAudit", func(tx casedesk.Tx, id int64) (int, error) {
			es, err := tx.ListAudit(ctx(), id, casedesk.AuditFilter{})
			return countIf(es, func(e *casedesk.AuditEntry) bool { return e.TenantID == b.tenantID }), err
		}},
	}
	for _, r := range reads {
		t.Run(r.name, func(t *testing.T) {
			err := fa.db.View(ctx(), func(tx casedesk.Tx) error {
				own, err := r.read(tx, b.tenantID)
				if err != nil || own == 0 {
					return fmt.Errorf("with B's own tenant: saw %d, err %v; the check is broken", own, err)
				}
				leaked, err := r.read(tx, fa.tenant.ID)
				if err != nil {
					return err
				}
				if leaked != 0 {
					return fmt.Errorf("tenant A saw %d of tenant B's objects", leaked)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// one counts a found object; ENOTFOUND is zero, other errors fail.
func one[T any](v *T, err error) (int, error) {
	if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return 1, nil
}

func notFoundIsZero(n int, err error) (int, error) {
	if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
		return 0, nil
	}
	return n, err
}

func countIf[T any](xs []T, pred func(T) bool) int {
	n := 0
	for _, x := range xs {
		if pred(x) {
			n++
		}
	}
	return n
}
