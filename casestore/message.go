package casestore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// maxLookupIDs bounds one Message-ID lookup. A References header with more
// ids than this is cut by the caller; the newest ids are the useful ones.
const maxLookupIDs = 1000

// appendMessagesSQL inserts a whole batch of messages of one tenant and
// their raw bytes in one statement: per-statement overhead, not per-row
// work, is what limits ingest (BENCHMARKS.md). ON CONFLICT covers both dedup
// indexes (Message-ID, and raw sha256 for mail without one), also between
// rows of the same batch. Inserted rows come back ordered by id, which
// follows the input order.
const appendMessagesSQL = `
WITH input AS (
	SELECT * FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[],
		$14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::integer[],
		$20::text[], $21::bytea[], $23::boolean[])
	WITH ORDINALITY AS i(case_id, message_id, raw_sha256, in_reply_to, refs, direction,
		author_kind, contact_id, user_id, from_addr, to_addrs, cc_addrs, subject, text_body,
		html_body, class, mailbox, raw_size, compression, data, visible, ord)
), m AS (
	INSERT INTO messages (tenant_id, case_id, message_id, raw_sha256, in_reply_to, refs,
		direction, author_kind, contact_id, user_id, from_addr, to_addrs, cc_addrs, subject,
		text_body, html_body, class, mailbox, raw_size, created_at)
	SELECT $1, case_id, message_id, raw_sha256, in_reply_to,
		ARRAY(SELECT jsonb_array_elements_text(refs::jsonb)), direction, author_kind,
		contact_id, user_id, from_addr::jsonb, to_addrs::jsonb, cc_addrs::jsonb, subject,
		text_body, html_body, class, mailbox, raw_size, $22
	FROM input ORDER BY ord
	ON CONFLICT DO NOTHING
	RETURNING id, case_id, message_id, raw_sha256, author_kind
), raw AS (
	-- A row with raw bytes has a sha256, and an inserted row's key is
	-- unique, so each inserted row meets the input row it came from.
	INSERT INTO message_raw (tenant_id, message_id, compression, data)
	SELECT DISTINCT ON (m.id) $1, m.id, i.compression, i.data
	FROM m JOIN input i ON i.raw_sha256 = m.raw_sha256
		AND i.message_id IS NOT DISTINCT FROM m.message_id
	WHERE i.data IS NOT NULL
	ORDER BY m.id, i.ord
), queued AS (
	-- The search indexer computes the message's words later, outside
	-- this transaction (migration 00003). Mail casedesk writes itself
	-- (acknowledgements, reminders, notices) is not indexed: it is the
	-- same template in every case, and a search for one of its words
	-- would match them all.
	INSERT INTO search_queue (message_id, tenant_id) SELECT id, $1 FROM m WHERE author_kind <> 'system'
), counts AS (
	-- Customer-visible agent messages always carry a Message-ID
	-- (NewMessage.Validate), so they are found by it.
	SELECT m.case_id, count(*) AS n,
		bool_or(EXISTS (SELECT 1 FROM input i WHERE i.message_id = m.message_id AND i.visible)) AS visible
	FROM m GROUP BY m.case_id
), bump AS (
	UPDATE cases c SET message_count = c.message_count + counts.n, updated_at = $22,
		last_agent_reply_at = CASE WHEN counts.visible THEN $22 ELSE c.last_agent_reply_at END,
		first_response_at = CASE WHEN counts.visible THEN coalesce(c.first_response_at, $22)
			ELSE c.first_response_at END
	-- The range of the input's case ids ($24, $25) bounds the scan of
	-- cases whatever plan is cached: a generic plan made while the tenant
	-- had a handful of cases hashes all of them otherwise, on every append,
	-- for as long as the connection lives (on a database that is never
	-- analysed). A range, unlike = ANY, is always an index condition.
	FROM counts WHERE c.tenant_id = $1 AND c.id BETWEEN $24 AND $25 AND c.id = counts.case_id
	RETURNING c.id, c.merged_into
)
-- A case merged while this statement waited for its row lock (the merge
-- had moved the case's mail before these rows existed) shows here with
-- merged_into set: AppendMessages then moves these rows after the rest.
SELECT m.id, m.message_id, m.raw_sha256, coalesce(bump.merged_into, 0)
FROM m LEFT JOIN bump ON bump.id = m.case_id ORDER BY m.id`

// AppendMessage stores a message with its raw bytes and attachments, or
// reports the stored duplicate; see casedesk.MessageOps.
func (t *tx) AppendMessage(ctx context.Context, n casedesk.NewMessage) (*casedesk.Message, bool, error) {
	res, err := t.AppendMessages(ctx, []casedesk.NewMessage{n})
	if err != nil {
		return nil, false, err
	}
	return res[0].Message, res[0].Duplicate, nil
}

// AppendMessages appends messages of one tenant; see casedesk.MessageOps.
// It takes one round trip for the messages, their raw bytes and the case
// counters and, when there are any, one more for the attachments.
func (t *tx) AppendMessages(ctx context.Context, ns []casedesk.NewMessage) ([]casedesk.Appended, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	out := make([]casedesk.Appended, len(ns))
	cols := newAppendColumns(len(ns))
	for i := range ns {
		n := &ns[i]
		if err := n.Validate(); err != nil {
			return nil, err
		}
		if n.TenantID != ns[0].TenantID {
			return nil, casedesk.Errorf(casedesk.EINVALID, "one batch holds messages of one tenant")
		}
		m, err := t.newStoredMessage(n, cols)
		if err != nil {
			return nil, err
		}
		out[i].Message = m
	}
	if err := t.insertMessages(ctx, ns[0].TenantID, cols, out); err != nil {
		return nil, err
	}
	return out, t.finishAppends(ctx, ns, out)
}

// appendColumns are the per-column arrays of appendMessagesSQL.
type appendColumns struct {
	caseID, contactID, userID []*int64
	messageID                 []*string
	sha, data                 [][]byte
	inReplyTo, refs, dir      []string
	author, from, to, cc      []string
	subject, text, html       []string
	class, mailbox, comp      []string
	rawSize                   []int32
	visible                   []bool
	minCase, maxCase          int64 // the range of caseID
}

func newAppendColumns(n int) *appendColumns {
	return &appendColumns{
		caseID: make([]*int64, 0, n), contactID: make([]*int64, 0, n), userID: make([]*int64, 0, n),
		messageID: make([]*string, 0, n), sha: make([][]byte, 0, n), data: make([][]byte, 0, n),
	}
}

func (c *appendColumns) args(tenantID int64, now time.Time) []any {
	return []any{tenantID, c.caseID, c.messageID, c.sha, c.inReplyTo, c.refs, c.dir, c.author,
		c.contactID, c.userID, c.from, c.to, c.cc, c.subject, c.text, c.html, c.class,
		c.mailbox, c.rawSize, c.comp, c.data, now, c.visible, c.minCase, c.maxCase}
}

// newStoredMessage cleans a new message into its stored form and adds it to
// the column arrays.
func (t *tx) newStoredMessage(n *casedesk.NewMessage, c *appendColumns) (*casedesk.Message, error) {
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
	var data []byte
	comp := compressionNone
	if len(n.Raw) > 0 {
		m.RawSHA256 = casedesk.RawDigest(n.Raw)
		comp, data = t.db.compress(n.Raw)
	}
	refs, err := json.Marshal(m.References)
	from, err2 := json.Marshal(m.From)
	to, err3 := json.Marshal(m.To)
	cc, err4 := json.Marshal(m.Cc)
	if err := errors.Join(err, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	if len(c.caseID) == 0 || m.CaseID < c.minCase {
		c.minCase = m.CaseID
	}
	c.maxCase = max(c.maxCase, m.CaseID)
	c.caseID = append(c.caseID, &m.CaseID)
	c.messageID = append(c.messageID, msgID)
	c.sha, c.data = append(c.sha, m.RawSHA256), append(c.data, data)
	c.inReplyTo, c.refs = append(c.inReplyTo, m.InReplyTo), append(c.refs, string(refs))
	c.dir, c.author = append(c.dir, string(m.Direction)), append(c.author, string(m.AuthorKind))
	c.contactID, c.userID = append(c.contactID, nullID(m.ContactID)), append(c.userID, nullID(m.UserID))
	c.from, c.to, c.cc = append(c.from, string(from)), append(c.to, string(to)), append(c.cc, string(cc))
	c.subject, c.text, c.html = append(c.subject, m.Subject), append(c.text, m.Text), append(c.html, m.HTML)
	c.class, c.mailbox = append(c.class, m.Class), append(c.mailbox, m.Mailbox)
	c.rawSize, c.comp = append(c.rawSize, int32(m.RawSize)), append(c.comp, comp)
	c.visible = append(c.visible, n.CustomerVisible && n.AuthorKind == casedesk.AuthorAgent)
	return m, nil
}

// insertMessages runs appendMessagesSQL and gives each input its ID, or
// marks it a duplicate. Inserted rows are returned in input order; an input
// was inserted when the returned rows hold its key and no earlier input had
// the same key. Notes without Message-ID and raw bytes have no key and are
// always inserted.
func (t *tx) insertMessages(ctx context.Context, tenantID int64, cols *appendColumns, out []casedesk.Appended) error {
	rows, err := t.tx.Query(ctx, appendMessagesSQL, cols.args(tenantID, t.now)...)
	if err != nil {
		return wrap(err, "append messages")
	}
	type inserted struct {
		id, mergedInto int64
		key            string
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (inserted, error) {
		var row inserted
		var msgID *string
		var sha []byte
		err := r.Scan(&row.id, &msgID, &sha, &row.mergedInto)
		row.key = messageKey(msgID, sha)
		return row, err
	})
	if err != nil {
		return wrap(err, "append messages")
	}
	var late struct{ ids, into, from []int64 }
	insertedKeys := make(map[string]bool, len(got))
	for _, g := range got {
		if g.key != "" {
			insertedKeys[g.key] = true
		}
	}
	next := 0
	for i := range out {
		key := messageKey(cols.messageID[i], cols.sha[i])
		if key != "" && !insertedKeys[key] {
			out[i].Duplicate = true
			continue
		}
		delete(insertedKeys, key) // a later input with this key is a duplicate
		if next >= len(got) || got[next].key != key {
			return fmt.Errorf("append messages: inserted rows do not match the input")
		}
		out[i].Message.ID = got[next].id
		if into := got[next].mergedInto; into != 0 {
			late.ids, late.into = append(late.ids, got[next].id), append(late.into, into)
			late.from = append(late.from, out[i].Message.CaseID)
			out[i].Message.CaseID = into
		}
		next++
	}
	if len(late.ids) == 0 {
		return nil
	}
	_, err = t.tx.Exec(ctx, followMergeSQL, tenantID, late.ids, late.into, late.from, t.now)
	return wrap(err, "append messages: follow merge")
}

// followMergeSQL moves messages appended to a case that was merged while
// they were being appended ($2, to the cases $3 it was merged into, from
// the cases $4) and moves their counts with them. The merge holds the
// merged case's row lock from before it moves the case's mail until it
// commits, and the append's counter update waits for that lock, so it is
// the only way mail can end up on a merged case.
const followMergeSQL = `
WITH moved AS (
	UPDATE messages m SET case_id = x.into_id
	FROM unnest($2::bigint[], $3::bigint[]) AS x(id, into_id)
	WHERE m.tenant_id = $1 AND m.id = x.id
	RETURNING x.into_id
), counts AS (
	SELECT into_id, count(*) AS n FROM moved GROUP BY into_id
), into_case AS (
	UPDATE cases c SET message_count = c.message_count + counts.n, updated_at = $5
	FROM counts WHERE c.tenant_id = $1 AND c.id = counts.into_id
)
UPDATE cases SET message_count = 0 WHERE tenant_id = $1 AND id = ANY($4::bigint[])`

// messageKey is what deduplicates a message: its Message-ID, or without
// one its raw sha256; "" when it has neither.
func messageKey(msgID *string, sha []byte) string {
	switch {
	case msgID != nil:
		return "id:" + *msgID
	case sha != nil:
		return "sha:" + string(sha)
	}
	return ""
}

// finishAppends reads back the stored duplicates and stores the attachments
// of the inserted messages.
func (t *tx) finishAppends(ctx context.Context, ns []casedesk.NewMessage, out []casedesk.Appended) error {
	atts := &pgx.Batch{}
	for i, r := range out {
		if r.Duplicate {
			m, err := t.findDuplicate(ctx, ns[i].TenantID, r.Message.MessageID, r.Message.RawSHA256)
			if err != nil {
				return err
			}
			out[i].Message = m
			continue
		}
		r.Message.Attachments = t.queueAttachments(atts, r.Message, ns[i].Attachments)
	}
	if atts.Len() == 0 {
		return nil
	}
	res, err := t.batch(ctx, atts)
	if err != nil {
		return err
	}
	return wrap(res.Close(), "store attachments")
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

// FindMessagesByIDs returns the tenant's messages among ids (database IDs)
// with attachment metadata, in two statements; see casedesk.MessageOps.
func (t *tx) FindMessagesByIDs(ctx context.Context, tenantID int64, ids []int64) ([]*casedesk.Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return t.listMessages(ctx, "m.tenant_id = $1 AND m.id = ANY($2::bigint[])", tenantID, ids)
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

// threadMessageIDsSQL reads the customer-visible Message-IDs of several
// cases: per case the oldest one and the $3 newest ones, oldest first.
// Each case is one probe of messages_case (tenant_id, case_id, id), read
// forwards for the first row and backwards for the newest, and each LIMIT
// stops the scan as soon as it has its rows, so a case with thousands of
// messages costs about as much as one with a few. (Window functions
// numbering the rows both ways would read every message of the case: they
// cannot stop early.) Probing per case from unnest, rather than "case_id =
// ANY", keeps the case in the index condition under the pool's generic
// plans when messages has no statistics.
const threadMessageIDsSQL = `
SELECT k.case_id, s.message_id
FROM unnest($2::bigint[]) AS k(case_id)
CROSS JOIN LATERAL (
	(SELECT m.id, m.message_id FROM messages m
	WHERE m.tenant_id = $1 AND m.case_id = k.case_id AND m.message_id IS NOT NULL
		AND (m.direction = 'outbound' OR (m.direction = 'inbound' AND m.author_kind = 'customer'))
	ORDER BY m.id LIMIT 1)
	UNION
	(SELECT m.id, m.message_id FROM messages m
	WHERE m.tenant_id = $1 AND m.case_id = k.case_id AND m.message_id IS NOT NULL
		AND (m.direction = 'outbound' OR (m.direction = 'inbound' AND m.author_kind = 'customer'))
	ORDER BY m.id DESC LIMIT $3)
) AS s
ORDER BY k.case_id, s.id`

// defaultThreadLimit is how many Message-IDs ThreadMessageIDs keeps per case
// when the caller gives no limit.
const defaultThreadLimit = 20

// ThreadMessageIDs returns the Message-IDs of the mail the customers of
// the cases have seen, each thread cut to its first message and the
// limit-1 newest ones, in one statement; see casedesk.MessageOps.
func (t *tx) ThreadMessageIDs(ctx context.Context, tenantID int64, caseIDs []int64, limit int) (map[int64][]string, error) {
	out := make(map[int64][]string, len(caseIDs))
	if len(caseIDs) == 0 {
		return out, nil
	}
	if limit <= 0 {
		limit = defaultThreadLimit
	}
	// A case named twice would have its ids listed twice.
	ids := slices.Clone(caseIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	rows, err := t.tx.Query(ctx, threadMessageIDsSQL, tenantID, ids, limit-1)
	if err != nil {
		return nil, wrap(err, "thread message ids")
	}
	var caseID int64
	var msgID string
	_, err = pgx.ForEachRow(rows, []any{&caseID, &msgID}, func() error {
		out[caseID] = append(out[caseID], msgID)
		return nil
	})
	if err != nil {
		return nil, wrap(err, "thread message ids")
	}
	return out, nil
}
