package casestore

import (
	"context"

	"github.com/casedesk/casedesk"
)

// Checkpoint returns how far a mailbox has been read.
func (t *tx) Checkpoint(ctx context.Context, tenantID int64, mailbox string) (*casedesk.MailboxCheckpoint, error) {
	cp := casedesk.MailboxCheckpoint{TenantID: tenantID, Mailbox: mailbox}
	var validity, last int64
	err := t.tx.QueryRow(ctx, `SELECT uidvalidity, last_uid, updated_at FROM mailbox_checkpoints
		WHERE tenant_id = $1 AND mailbox = $2`, tenantID, clean(mailbox)).Scan(&validity, &last, &cp.UpdatedAt)
	if err != nil {
		return nil, notFound(err, "no checkpoint for mailbox %q", clip(mailbox, 200))
	}
	cp.UIDValidity, cp.LastUID = uint32(validity), uint32(last)
	return &cp, nil
}

// SaveCheckpoint stores a checkpoint. Within one UIDVALIDITY the last UID
// never moves backwards, so a slow transaction cannot undo a faster one; a
// new UIDVALIDITY (the server renumbered the mailbox) replaces it.
func (t *tx) SaveCheckpoint(ctx context.Context, cp casedesk.MailboxCheckpoint) error {
	if cp.TenantID == 0 || cp.Mailbox == "" {
		return casedesk.Errorf(casedesk.EINVALID, "checkpoint needs a tenant and a mailbox")
	}
	_, err := t.tx.Exec(ctx, `
		INSERT INTO mailbox_checkpoints AS mc (tenant_id, mailbox, uidvalidity, last_uid, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, mailbox) DO UPDATE SET
			last_uid = CASE WHEN mc.uidvalidity = excluded.uidvalidity
				THEN greatest(mc.last_uid, excluded.last_uid) ELSE excluded.last_uid END,
			uidvalidity = excluded.uidvalidity,
			updated_at = excluded.updated_at`,
		cp.TenantID, clip(cp.Mailbox, maxHeaderBytes), int64(cp.UIDValidity), int64(cp.LastUID), t.now)
	return wrap(err, "save checkpoint")
}
