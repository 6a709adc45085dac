package casestore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

const quarantineColumns = `tenant_id, id, mailbox, uid, error, size, received_at, resolved_at`

func scanQuarantine(r pgx.Row, extra ...any) (*casedesk.QuarantinedMessage, error) {
	var q casedesk.QuarantinedMessage
	var uid int64
	var resolved *time.Time
	dest := []any{&q.TenantID, &q.ID, &q.Mailbox, &uid, &q.Error, &q.Size, &q.ReceivedAt, &resolved}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	q.UID, q.ResolvedAt = uint32(uid), timeOf(resolved)
	return &q, nil
}

// QuarantineMessage stores raw mail with the error that stopped it.
func (t *tx) QuarantineMessage(ctx context.Context, q casedesk.QuarantinedMessage) (*casedesk.QuarantinedMessage, error) {
	if q.TenantID == 0 || len(q.Raw) == 0 || q.Error == "" {
		return nil, casedesk.Errorf(casedesk.EINVALID, "quarantine needs a tenant, the raw bytes and the error")
	}
	sum := casedesk.RawDigest(q.Raw)
	method, data := t.db.compress(q.Raw)
	stored, err := scanQuarantine(t.tx.QueryRow(ctx, `
		INSERT INTO quarantine (tenant_id, mailbox, uid, error, size, raw_sha256, compression, raw, received_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (tenant_id, raw_sha256) DO NOTHING
		RETURNING `+quarantineColumns,
		q.TenantID, clip(q.Mailbox, maxHeaderBytes), int64(q.UID), clip(q.Error, maxHeaderBytes),
		len(q.Raw), sum, method, data, t.now))
	if errors.Is(err, pgx.ErrNoRows) {
		stored, err = scanQuarantine(t.tx.QueryRow(ctx, `SELECT `+quarantineColumns+`
			FROM quarantine WHERE tenant_id = $1 AND raw_sha256 = $2`, q.TenantID, sum))
	}
	if err != nil {
		return nil, wrap(err, "quarantine message")
	}
	return stored, nil
}

// ListQuarantine returns unresolved entries, newest first.
func (t *tx) ListQuarantine(ctx context.Context, tenantID int64, limit int, beforeID int64) ([]*casedesk.QuarantinedMessage, error) {
	if beforeID <= 0 {
		beforeID = 1<<63 - 1
	}
	rows, err := t.tx.Query(ctx, `SELECT `+quarantineColumns+` FROM quarantine
		WHERE tenant_id = $1 AND resolved_at IS NULL AND id < $2 ORDER BY id DESC LIMIT $3`,
		tenantID, beforeID, casedesk.PageSize(limit))
	if err != nil {
		return nil, wrap(err, "list quarantine")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.QuarantinedMessage, error) {
		return scanQuarantine(r)
	})
	return out, wrap(err, "list quarantine")
}

// QuarantinedRaw returns an entry with its raw bytes.
func (t *tx) QuarantinedRaw(ctx context.Context, tenantID, id int64) (*casedesk.QuarantinedMessage, error) {
	var method string
	var data []byte
	q, err := scanQuarantine(t.tx.QueryRow(ctx, `SELECT `+quarantineColumns+`, compression, raw
		FROM quarantine WHERE tenant_id = $1 AND id = $2`, tenantID, id), &method, &data)
	if err != nil {
		return nil, notFound(err, "quarantined message %d not found", id)
	}
	if q.Raw, err = t.db.decompress(method, data); err != nil {
		return nil, err
	}
	return q, nil
}

// ResolveQuarantine marks an entry done; resolving it again is a no-op.
func (t *tx) ResolveQuarantine(ctx context.Context, tenantID, id int64) error {
	tag, err := t.tx.Exec(ctx, `UPDATE quarantine SET resolved_at = coalesce(resolved_at, $3)
		WHERE tenant_id = $1 AND id = $2`, tenantID, id, t.now)
	if err != nil {
		return wrap(err, "resolve quarantine")
	}
	if tag.RowsAffected() == 0 {
		return casedesk.Errorf(casedesk.ENOTFOUND, "quarantined message %d not found", id)
	}
	return nil
}
