package ingest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/dsn"
	"github.com/microcosm-cc/bluemonday"

	"github.com/casedesk/casedesk"
)

// DefaultMaxSize is the largest message parsed; a larger one is stored raw
// and quarantined.
const DefaultMaxSize = 50 << 20

// ErrTooLarge is returned for a message over the parser's size limit. The
// caller keeps the raw bytes and quarantines them.
var ErrTooLarge = errors.New("message exceeds the size limit")

// Parser turns raw RFC 5322 bytes into Messages. Parse is safe for
// concurrent use; MaxSize must not change once parsing has started.
type Parser struct {
	MaxSize int // bytes; DefaultMaxSize when zero
	mime    *enmime.Parser
	policy  *bluemonday.Policy
}

// NewParser returns a parser with the given size limit (0: the default).
// Extra enmime options follow the defaults (BENCHMARKS.md compares them).
func NewParser(maxSize int, opts ...enmime.Option) *Parser {
	// User-generated-content policy: formatting, links and images stay,
	// scripts, styles that can hide content, forms and event handlers go.
	// cid: images refer to inline parts of the same message.
	policy := bluemonday.UGCPolicy()
	policy.AllowURLSchemes("http", "https", "mailto", "cid")
	policy.RequireNoFollowOnLinks(true)
	policy.AddTargetBlankToFullyQualifiedLinks(true)
	return &Parser{
		MaxSize: maxSize,
		mime:    enmime.NewParser(append(defaultMIMEOptions(), opts...)...),
		policy:  policy,
	}
}

// defaultMIMEOptions are the enmime options casedesk runs with. Guessing
// charsets made parsing about 6 times slower on generated support mail
// (BENCHMARKS.md), so the declared charset is trusted; mislabelled text is
// still readable from the raw bytes, which are always kept.
func defaultMIMEOptions() []enmime.Option {
	return []enmime.Option{enmime.SkipMalformedParts(true), enmime.DisableCharacterDetection(true)}
}

// Parse parses one message. It fails only for oversize input and for mail
// whose header block cannot be read at all; malformed parts become warnings.
func (p *Parser) Parse(raw []byte) (*Message, error) {
	limit := p.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	if len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), limit)
	}
	// enmime buffers its input itself; handing it a larger bufio.Reader
	// was no faster (BENCHMARKS.md, "Ingest: parse + classify").
	env, err := p.mime.ReadEnvelope(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse mime: %w", err)
	}
	m := &Message{Size: len(raw)}
	readHeaders(env, m)
	m.Text = env.Text
	if env.HTML != "" {
		m.HTML = p.policy.Sanitize(env.HTML)
	}
	for _, part := range env.Attachments {
		m.Attachments = append(m.Attachments, attachment(part, false))
	}
	for _, part := range env.Inlines {
		m.Attachments = append(m.Attachments, attachment(part, true))
	}
	for _, part := range env.OtherParts {
		// Parts of multipart/related without a disposition (images a HTML
		// body shows) are files the agent must be able to see too.
		if len(part.Content) > 0 {
			m.Attachments = append(m.Attachments, attachment(part, part.ContentID != ""))
		}
	}
	m.Delivery = deliveryReport(env.Root)
	for _, e := range env.Errors {
		m.Warnings = append(m.Warnings, e.Error())
	}
	return m, nil
}

func attachment(p *enmime.Part, inline bool) Attachment {
	return Attachment{
		Name:        p.FileName,
		ContentType: p.ContentType,
		ContentID:   casedesk.NormalizeMessageID(p.ContentID),
		Inline:      inline,
		Content:     p.Content,
		SHA256:      sha256.Sum256(p.Content),
	}
}

func readHeaders(env *enmime.Envelope, m *Message) {
	m.Headers = make(map[string][]string)
	for _, k := range env.GetHeaderKeys() {
		m.Headers[k] = env.GetHeaderValues(k)
	}
	m.MessageID = firstID(env.GetHeader("Message-ID"))
	m.InReplyTo = parseIDList(env.GetHeader("In-Reply-To"))
	m.References = parseIDList(strings.Join(env.GetHeaderValues("References"), " "))
	if from := addresses(env, "From"); len(from) > 0 {
		m.From = from[0]
	}
	if sender := addresses(env, "Sender"); len(sender) > 0 {
		m.Sender = &sender[0]
	}
	m.ReplyTo = addresses(env, "Reply-To")
	m.To = addresses(env, "To")
	m.Cc = addresses(env, "Cc")
	for _, v := range env.GetHeaderValues("Delivered-To") {
		if v = strings.TrimSpace(v); v != "" {
			m.DeliveredTo = append(m.DeliveredTo, v)
		}
	}
	m.Subject = strings.TrimSpace(env.GetHeader("Subject"))
	if d, err := env.Date(); err == nil {
		m.Date = d.UTC()
	}
	if rp := env.GetHeaderValues("Return-Path"); len(rp) > 0 {
		m.HasReturnPath = true
		m.ReturnPath = casedesk.NormalizeMessageID(rp[0])
	}
	m.AutoSubmitted = strings.TrimSpace(env.GetHeader("Auto-Submitted"))
	m.Precedence = strings.TrimSpace(env.GetHeader("Precedence"))
	m.ListID = strings.TrimSpace(env.GetHeader("List-Id"))
	m.XLoop = env.GetHeaderValues("X-Loop")
	m.XAutoreply = strings.TrimSpace(env.GetHeader("X-Autoreply"))
	m.XAutorespond = strings.TrimSpace(env.GetHeader("X-Autorespond"))
	m.XAutoResponseSuppress = strings.TrimSpace(env.GetHeader("X-Auto-Response-Suppress"))
	m.ThreadIndex = strings.TrimSpace(env.GetHeader("Thread-Index"))
	m.ThreadTopic = strings.TrimSpace(env.GetHeader("Thread-Topic"))
	for _, v := range env.GetHeaderValues("X-Failed-Recipients") {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				m.FailedRecipients = append(m.FailedRecipients, a)
			}
		}
	}
}

// deliveryReport reads a multipart/report delivery status notification.
// The original message may come whole (message/rfc822) or as its headers
// only (text/rfc822-headers, which Postfix and Exchange send).
func deliveryReport(root *enmime.Part) *DeliveryReport {
	if root == nil {
		return nil
	}
	rep, err := dsn.ParseReport(root)
	if err != nil || rep == nil || len(rep.DeliveryStatus.RecipientDSNs) == 0 {
		return nil
	}
	r := rep.DeliveryStatus.RecipientDSNs[0]
	for _, f := range rep.DeliveryStatus.RecipientDSNs {
		if dsn.IsFailed(f) {
			r = f // report the failure when there are several recipients
			break
		}
	}
	d := &DeliveryReport{
		Recipient:  addressField(r.Get("Final-Recipient")),
		Action:     strings.ToLower(strings.TrimSpace(r.Get("Action"))),
		Status:     strings.TrimSpace(r.Get("Status")),
		Diagnostic: strings.TrimSpace(r.Get("Diagnostic-Code")),
	}
	if d.Recipient == "" {
		d.Recipient = addressField(r.Get("Original-Recipient"))
	}
	original := rep.OriginalMessage
	for p := root.FirstChild; original == nil && p != nil; p = p.NextSibling {
		if p.ContentType == "text/rfc822-headers" {
			original = p.Content
		}
	}
	d.OriginalMessageID = headerMessageID(original)
	return d
}

// addressField strips the address type of a DSN field: "rfc822; a@b" -> "a@b".
func addressField(v string) string {
	if _, addr, ok := strings.Cut(v, ";"); ok {
		v = addr
	}
	return strings.Trim(strings.TrimSpace(v), "<>")
}

// headerMessageID finds the Message-ID in the header block of a quoted
// original message.
func headerMessageID(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	msg, err := mail.ReadMessage(bytes.NewReader(append(bytes.TrimLeft(raw, "\r\n"), '\r', '\n', '\r', '\n')))
	if err != nil {
		return ""
	}
	return firstID(msg.Header.Get("Message-Id"))
}

// addresses reads an address header. A list that net/mail cannot parse as
// a whole (common in old or broken mail) is read address by address, so
// one bad entry does not lose the others.
func addresses(env *enmime.Envelope, key string) []casedesk.Address {
	list, err := env.AddressList(key)
	if err == nil {
		out := make([]casedesk.Address, 0, len(list))
		for _, a := range list {
			out = append(out, casedesk.Address{Name: a.Name, Email: a.Address})
		}
		return out
	}
	var out []casedesk.Address
	for _, v := range env.GetHeaderValues(key) {
		for _, piece := range strings.Split(v, ",") {
			if a, err := mail.ParseAddress(strings.TrimSpace(piece)); err == nil {
				out = append(out, casedesk.Address{Name: a.Name, Email: a.Address})
			} else if s := bareAddress(piece); s != "" {
				out = append(out, casedesk.Address{Email: s})
			}
		}
	}
	return out
}

// bareAddress finds something shaped like local@domain in s.
func bareAddress(s string) string {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(" \t<>\"'(),;", r) }) {
		if casedesk.ValidEmail(f) {
			return f
		}
	}
	return ""
}

// parseIDList reads Message-IDs from a References or In-Reply-To value:
// every <...> token, or, when there are none, the whitespace-separated
// words (some clients drop the brackets).
func parseIDList(v string) []string {
	var ids []string
	for {
		open := strings.IndexByte(v, '<')
		if open < 0 {
			break
		}
		end := strings.IndexByte(v[open:], '>')
		if end < 0 {
			break
		}
		if id := strings.TrimSpace(v[open+1 : open+end]); id != "" && !strings.ContainsAny(id, " \t") {
			ids = append(ids, id)
		}
		v = v[open+end+1:]
	}
	if ids != nil {
		return ids
	}
	for _, w := range strings.Fields(v) {
		if strings.Contains(w, "@") {
			ids = append(ids, strings.Trim(w, "<>"))
		}
	}
	return ids
}

func firstID(v string) string {
	if ids := parseIDList(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}
