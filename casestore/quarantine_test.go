package casestore_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/casedesk/casedesk"
)

func TestQuarantine(t *testing.T) {
	f := newFixture(t)
	raw := []byte("Subject: broken\r\nContent-Type: multipart/mixed\r\n\r\n" + strings.Repeat("garbage ", 500))
	var first, again *casedesk.QuarantinedMessage
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		first, err = tx.QuarantineMessage(ctx(), casedesk.QuarantinedMessage{TenantID: f.tenant.ID, Mailbox: "INBOX", UID: 42, Error: "parse mime: no boundary", Raw: raw})
		return err
	})
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		// The poller fetched the same mail again after a crash.
		again, err = tx.QuarantineMessage(ctx(), casedesk.QuarantinedMessage{TenantID: f.tenant.ID, Mailbox: "INBOX", UID: 42, Error: "other text", Raw: raw})
		return err
	})
	if again.ID != first.ID || again.Error != "parse mime: no boundary" || first.Size != len(raw) || first.UID != 42 {
		t.Fatalf("first %+v, again %+v: want one entry", first, again)
	}
	var other *casedesk.QuarantinedMessage
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		other, err = tx.QuarantineMessage(ctx(), casedesk.QuarantinedMessage{TenantID: f.tenant.ID, Mailbox: "INBOX", Error: "too large", Raw: []byte("x")})
		return err
	})
	var list []*casedesk.QuarantinedMessage
	var withRaw *casedesk.QuarantinedMessage
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		if list, err = tx.ListQuarantine(ctx(), f.tenant.ID, 10, 0); err != nil {
			return err
		}
		withRaw, err = tx.QuarantinedRaw(ctx(), f.tenant.ID, first.ID)
		return err
	})
	if len(list) != 2 || list[0].ID != other.ID || list[1].ID != first.ID || list[0].Raw != nil {
		t.Fatalf("list = %+v, want both, newest first, without raw bytes", list)
	}
	if !bytes.Equal(withRaw.Raw, raw) {
		t.Fatal("raw bytes changed in quarantine")
	}
	update(t, f.db, func(tx casedesk.Tx) error { return tx.ResolveQuarantine(ctx(), f.tenant.ID, first.ID) })
	update(t, f.db, func(tx casedesk.Tx) (err error) {
		list, err = tx.ListQuarantine(ctx(), f.tenant.ID, 10, 0)
		return err
	})
	if len(list) != 1 || list[0].ID != other.ID {
		t.Fatalf("after resolving: %+v", list)
	}
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error { return tx.ResolveQuarantine(ctx(), f.tenant.ID, 99999999) })
	wantCode(t, err, casedesk.ENOTFOUND)
	err = f.db.Update(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.QuarantineMessage(ctx(), casedesk.QuarantinedMessage{TenantID: f.tenant.ID, Error: "x"})
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
}
