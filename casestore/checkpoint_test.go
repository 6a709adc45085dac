package casestore_test

import (
	"testing"

	"github.com/casedesk/casedesk"
)

func TestCheckpointMovesForwardOnly(t *testing.T) {
	f := newFixture(t)
	read := func() *casedesk.MailboxCheckpoint {
		var cp *casedesk.MailboxCheckpoint
		update(t, f.db, func(tx casedesk.Tx) (err error) {
			cp, err = tx.Checkpoint(ctx(), f.tenant.ID, "INBOX")
			return err
		})
		return cp
	}
	err := f.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.Checkpoint(ctx(), f.tenant.ID, "INBOX")
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)

	steps := []struct {
		validity, uid uint32
		wantValidity  uint32
		wantUID       uint32
	}{
		{7, 100, 7, 100},
		{7, 150, 7, 150},
		{7, 120, 7, 150}, // a slower transaction cannot move it back
		{8, 3, 8, 3},     // the server renumbered the mailbox
		{8, 4294967295, 8, 4294967295},
	}
	for _, s := range steps {
		update(t, f.db, func(tx casedesk.Tx) error {
			return tx.SaveCheckpoint(ctx(), casedesk.MailboxCheckpoint{TenantID: f.tenant.ID, Mailbox: "INBOX", UIDValidity: s.validity, LastUID: s.uid})
		})
		cp := read()
		if cp.UIDValidity != s.wantValidity || cp.LastUID != s.wantUID {
			t.Fatalf("after saving %d/%d: checkpoint %d/%d, want %d/%d", s.validity, s.uid, cp.UIDValidity, cp.LastUID, s.wantValidity, s.wantUID)
		}
	}
}

func TestCheckpointCommitsWithMessage(t *testing.T) {
	f := newFixture(t)
	c := f.newCase(t, "atomic")
	err := f.db.Update(ctx(), func(tx casedesk.Tx) error {
		if _, _, err := tx.AppendMessage(ctx(), f.inbound(c.ID, "atomic@x")); err != nil {
			return err
		}
		if err := tx.SaveCheckpoint(ctx(), casedesk.MailboxCheckpoint{TenantID: f.tenant.ID, Mailbox: "INBOX", UIDValidity: 1, LastUID: 9}); err != nil {
			return err
		}
		// A failure after both writes must undo both.
		_, err := tx.ChangeStatus(ctx(), f.tenant.ID, c.ID, casedesk.StatusClosed, casedesk.SystemActor)
		return err
	})
	wantCode(t, err, casedesk.EINVALID)
	if n := f.messageCount(t, c.ID); n != 0 {
		t.Fatalf("%d messages after rollback", n)
	}
	err = f.db.View(ctx(), func(tx casedesk.Tx) error {
		_, err := tx.Checkpoint(ctx(), f.tenant.ID, "INBOX")
		return err
	})
	wantCode(t, err, casedesk.ENOTFOUND)
}
