package casestore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// maxLookupIDs bounds one Message-ID lookup. A References header with more
// ids than this is cut by the caller; the newest ids are the useful ones.
const maxLookupIDs = 1000

// appendMessageSQL inserts the message, its raw bytes and the case counters
// in one round trip. ON CONFLICT covers both dedup indexes (Message-ID, and
// raw sha256 for mail without one); when it fires, m is empty and nothing
// else is written either.
const appendMessageSQL = `
WITH m AS (
	INSERT INTO messages (tenant_id, case_id, message_id, raw_sha256, in_reply_to, refs,
		direction, author_kind, contact_id, user_id, from_addr, to_addrs, cc_addrs, subject,
		text_body, html_body, class, mailbox, raw_size, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
	ON CONFLICT DO NOTHING
	RETURNING id
), raw AS (
	INSERT INTO message_raw (tenant_id, message_id, compression, data)
	SELECT $1, id, $21, $22 FROM m WHERE $22::bytea IS NOT NULL
), c AS (
	UPDATE cases SET message_count = message_count + 1, updated_at = $20,
		last_agent_reply_at = CASE WHEN $23 THEN $20 ELSE last_agent_reply_at END,
		first_response_at = CASE WHEN $23 THEN coalesce(first_response_at, $20) ELSE first_response_at END
	WHERE tenant_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM m)
)
SELECT id FROM m`

// AppendMessage stores a message with its raw bytes and attachments, or
// reports the stored duplicate; see casedesk.MessageOps.
func (t *tx) AppendMessage(ctx context.Context, n casedesk.NewMessage) (*casedesk.Message, bool, error) {
	res, err := t.AppendMessages(ctx, []casedesk.NewMessage{n})
	if err != nil {
		return nil, false, err
	}
	return res[0].Message, res[0].Duplicate, nil
}

// AppendMessages appends messages with two round trips in all (messages,
// then attachments) however many there are; see casedesk.MessageOps.
func (t *tx) AppendMessages(ctx context.Context, ns []casedesk.NewMessage) ([]casedesk.Appended, error) {
	out := make([]casedesk.Appended, len(ns))
	b := &pgx.Batch{}
	for i := range ns {
		n := &ns[i]
		if err := n.Validate(); err != nil {
			return nil, err
		}
		m, args, err := t.appendArgs(n)
		if err != nil {
			return nil, err
		}
		out[i].Message = m
		b.Queue(appendMessageSQL, args...)
	}
	if err := t.sendAppends(ctx, b, out); err != nil {
		return nil, err
	}
	atts := &pgx.Batch{}
	for i, r := range out {
		if r.Duplicate {
			m, err := t.findDuplicate(ctx, ns[i].TenantID, ns[i].MessageID, r.Message.RawSHA256)
			if err != nil {
				return nil, err
			}
			out[i].Message = m
			continue
		}
		r.Message.Attachments = t.queueAttachments(atts, r.Message, ns[i].Attachments)
	}
	if atts.Len() == 0 {
		return out, nil
	}
	res, err := t.batch(ctx, atts)
	if err != nil {
		return nil, err
	}
	return out, wrap(res.Close(), "store attachments")
}

// sendAppends runs the queued inserts and records each message's ID, or
// marks it a duplicate when the insert did nothing.
func (t *tx) sendAppends(ctx context.Context, b *pgx.Batch, out []casedesk.Appended) error {
	res, err := t.batch(ctx, b)
	if err != nil {
		return err
	}
	for i := range out {
		err := res.QueryRow().Scan(&out[i].Message.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			out[i].Duplicate = true
		} else if err != nil {
			res.Close()
			return wrap(err, "append message")
		}
	}
	return wrap(res.Close(), "append message")
}

// appendArgs cleans a new message into the stored form and the arguments
// of appendMessageSQL.
func (t *tx) appendArgs(n *casedesk.NewMessage) (*casedesk.Message, []any, error) {
	m := &casedesk.Message{
		TenantID: n.TenantID, CaseID: n.CaseID, MessageID: clean(n.MessageID),
		InReplyTo: clip(n.InReplyTo, maxHeaderBytes), References: cleanAll(n.References),
		Direction: n.Direction, AuthorKind: n.AuthorKind, ContactID: n.ContactID, UserID: n.UserID,
		From: cleanAddr(n.From), To: cleanAddrs(n.To), Cc: cleanAddrs(n.Cc),
		Subject: clip(n.Subject, maxSubjectBytes), Text: clean(n.Text), HTML: clean(n.HTML),
		Class: clip(n.Class, maxNameBytes), Mailbox: clip(n.Mailbox, maxHeaderBytes),
		RawSize: len(n.Raw), CreatedAt: t.now,
	}
	var msgID *string
	if m.MessageID != "" {
		msgID = &m.MessageID
	}
	var rawData []byte
	compression := compressionNone
	if len(n.Raw) > 0 {
		m.RawSHA256 = casedesk.RawDigest(n.Raw)
		compression, rawData = t.db.compress(n.Raw)
	}
	from, err := json.Marshal(m.From)
	to, err2 := json.Marshal(m.To)
	cc, err3 := json.Marshal(m.Cc)
	if err := errors.Join(err, err2, err3); err != nil {
		return nil, nil, fmt.Errorf("encode addresses: %w", err)
	}
	return m, []any{m.TenantID, m.CaseID, msgID, m.RawSHA256, m.InReplyTo, m.References,
		m.Direction, m.AuthorKind, nullID(m.ContactID), nullID(m.UserID), from, to, cc,
		m.Subject, m.Text, m.HTML, m.Class, m.Mailbox, m.RawSize, t.now,
		compression, rawData, n.CustomerVisible && n.AuthorKind == casedesk.AuthorAgent}, nil
}

func cleanAddr(a casedesk.Address) casedesk.Address {
	return casedesk.Address{Name: clip(a.Name, maxNameBytes), Email: clip(a.Email, maxHeaderBytes)}
}

func cleanAddrs(in []casedesk.Address) []casedesk.Address {
	out := make([]casedesk.Address, len(in))
	for i, a := range in {
		out[i] = cleanAddr(a)
	}
	return out
}

func cleanAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = clip(s, maxHeaderBytes); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// queueAttachments queues, for each attachment, storing its content once
// per tenant (by sha256) and linking it to the message.
func (t *tx) queueAttachments(b *pgx.Batch, m *casedesk.Message, in []casedesk.NewAttachment) []casedesk.Attachment {
	if len(in) == 0 {
		return nil
	}
	out := make([]casedesk.Attachment, len(in))
	for i, a := range in {
		sum := sha256.Sum256(a.Content)
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[i] = casedesk.Attachment{Name: clip(a.Name, maxHeaderBytes), ContentType: clip(ct, maxNameBytes),
			Size: int64(len(a.Content)), SHA256: sum[:], ContentID: clip(a.ContentID, maxHeaderBytes), Inline: a.Inline}
		method, data := t.db.compress(a.Content)
		b.Queue(`INSERT INTO blobs (tenant_id, sha256, size, compression, data, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			m.TenantID, out[i].SHA256, out[i].Size, method, data, t.now)
		b.Queue(`INSERT INTO attachments (tenant_id, message_id, position, sha256, name,
			content_type, content_id, inline, size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			m.TenantID, m.ID, i, out[i].SHA256, out[i].Name, out[i].ContentType,
			out[i].ContentID, out[i].Inline, out[i].Size)
	}
	return out
}

func (t *tx) findDuplicate(ctx context.Context, tenantID int64, msgID string, digest []byte) (*casedesk.Message, error) {
	var msgs []*casedesk.Message
	var err error
	if msgID != "" {
		msgs, err = t.listMessages(ctx, "m.tenant_id = $1 AND m.message_id = $2", tenantID, clean(msgID))
	} else {
		msgs, err = t.listMessages(ctx, "m.tenant_id = $1 AND m.message_id IS NULL AND m.raw_sha256 = $2", tenantID, digest)
	}
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		// The conflicting row belongs to a transaction that has not
		// committed yet and cannot be seen; the caller may retry.
		return nil, casedesk.Errorf(casedesk.ECONFLICT, "message is being stored concurrently")
	}
	return msgs[0], nil
}

// FindMessagesByMessageIDs returns the stored messages among ids with their
// cases; see casedesk.MessageOps.
func (t *tx) FindMessagesByMessageIDs(ctx context.Context, tenantID int64, ids []string) ([]casedesk.MessageRef, error) {
	norm := make([]string, 0, len(ids))
	for _, id := range ids {
		if id = clean(casedesk.NormalizeMessageID(id)); id != "" && len(id) <= casedesk.MaxMessageIDLen {
			norm = append(norm, id)
		}
	}
	slices.Sort(norm)
	norm = slices.Compact(norm)
	if len(norm) > maxLookupIDs {
		return nil, casedesk.Errorf(casedesk.EINVALID, "at most %d Message-IDs per lookup", maxLookupIDs)
	}
	if len(norm) == 0 {
		return nil, nil
	}
	rows, err := t.tx.Query(ctx, `
		SELECT m.id, m.message_id, m.case_id, c.number, c.status, m.direction, m.author_kind, m.created_at
		FROM messages m JOIN cases c ON c.tenant_id = m.tenant_id AND c.id = m.case_id
		WHERE m.tenant_id = $1 AND m.message_id = ANY($2)`, tenantID, norm)
	if err != nil {
		return nil, wrap(err, "find messages")
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (casedesk.MessageRef, error) {
		var m casedesk.MessageRef
		err := r.Scan(&m.ID, &m.MessageID, &m.CaseID, &m.CaseNumber, &m.CaseStatus, &m.Direction,
			&m.AuthorKind, &m.CreatedAt)
		return m, err
	})
	return refs, wrap(err, "find messages")
}

// ListMessages returns a case's messages, oldest first, with attachment metadata.
func (t *tx) ListMessages(ctx context.Context, tenantID, caseID int64) ([]*casedesk.Message, error) {
	return t.listMessages(ctx, "m.tenant_id = $1 AND m.case_id = $2", tenantID, caseID)
}

func (t *tx) listMessages(ctx context.Context, where string, tenantID int64, arg any) ([]*casedesk.Message, error) {
	rows, err := t.tx.Query(ctx, `
		SELECT m.tenant_id, m.id, m.case_id, coalesce(m.message_id, ''), m.in_reply_to, m.refs,
			m.direction, m.author_kind, coalesce(m.contact_id, 0), coalesce(m.user_id, 0),
			m.from_addr, m.to_addrs, m.cc_addrs, m.subject, m.text_body, m.html_body, m.class,
			m.mailbox, coalesce(m.raw_sha256, ''::bytea), m.raw_size, m.created_at
		FROM messages m WHERE `+where+` ORDER BY m.id`, tenantID, arg)
	if err != nil {
		return nil, wrap(err, "list messages")
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, wrap(err, "list messages")
	}
	if err := t.loadAttachments(ctx, tenantID, msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}

func scanMessage(r pgx.CollectableRow) (*casedesk.Message, error) {
	var m casedesk.Message
	var from, to, cc []byte
	err := r.Scan(&m.TenantID, &m.ID, &m.CaseID, &m.MessageID, &m.InReplyTo, &m.References,
		&m.Direction, &m.AuthorKind, &m.ContactID, &m.UserID, &from, &to, &cc, &m.Subject,
		&m.Text, &m.HTML, &m.Class, &m.Mailbox, &m.RawSHA256, &m.RawSize, &m.CreatedAt)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(json.Unmarshal(from, &m.From), json.Unmarshal(to, &m.To), json.Unmarshal(cc, &m.Cc)); err != nil {
		return nil, fmt.Errorf("message %d addresses: %w", m.ID, err)
	}
	if len(m.RawSHA256) == 0 {
		m.RawSHA256 = nil
	}
	return &m, nil
}

func (t *tx) loadAttachments(ctx context.Context, tenantID int64, msgs []*casedesk.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	byID := make(map[int64]*casedesk.Message, len(msgs))
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		byID[m.ID], ids[i] = m, m.ID
	}
	rows, err := t.tx.Query(ctx, `
		SELECT message_id, name, content_type, size, sha256, content_id, inline
		FROM attachments WHERE tenant_id = $1 AND message_id = ANY($2) ORDER BY message_id, position`,
		tenantID, ids)
	if err != nil {
		return wrap(err, "list attachments")
	}
	defer rows.Close()
	for rows.Next() {
		var msgID int64
		var a casedesk.Attachment
		if err := rows.Scan(&msgID, &a.Name, &a.ContentType, &a.Size, &a.SHA256, &a.ContentID, &a.Inline); err != nil {
			return wrap(err, "list attachments")
		}
		byID[msgID].Attachments = append(byID[msgID].Attachments, a)
	}
	return wrap(rows.Err(), "list attachments")
}

// RawMessage returns the original bytes of a stored message.
func (t *tx) RawMessage(ctx context.Context, tenantID, messageID int64) ([]byte, error) {
	var method string
	var data []byte
	err := t.tx.QueryRow(ctx, `SELECT compression, data FROM message_raw
		WHERE tenant_id = $1 AND message_id = $2`, tenantID, messageID).Scan(&method, &data)
	if err != nil {
		return nil, notFound(err, "no raw bytes for message %d", messageID)
	}
	return t.db.decompress(method, data)
}

// AttachmentContent returns an attachment's bytes by its sha256.
func (t *tx) AttachmentContent(ctx context.Context, tenantID int64, sum []byte) ([]byte, error) {
	var method string
	var data []byte
	err := t.tx.QueryRow(ctx, `SELECT compression, data FROM blobs WHERE tenant_id = $1 AND sha256 = $2`,
		tenantID, sum).Scan(&method, &data)
	if err != nil {
		return nil, notFound(err, "no attachment %x", sum)
	}
	return t.db.decompress(method, data)
}
