// Package ingest turns raw mail into casedesk messages: MIME parsing,
// classification, the IMAP poller and the processor that stores each
// message in one transaction.
package ingest

import (
	"strings"
	"time"

	"github.com/casedesk/casedesk"
)

// Message is one parsed inbound mail, with every header the threading and
// classification rules read, decoded.
type Message struct {
	MessageID   string   // without angle brackets; "" when absent
	InReplyTo   []string // ids without angle brackets
	References  []string // oldest first, as sent
	From        casedesk.Address
	Sender      *casedesk.Address
	ReplyTo     []casedesk.Address
	To          []casedesk.Address
	Cc          []casedesk.Address
	DeliveredTo []string
	Subject     string
	Date        time.Time // zero when missing or unparseable
	// ReturnPath is the envelope sender; HasReturnPath tells "<>" (a
	// bounce, empty) from a missing header.
	ReturnPath    string
	HasReturnPath bool

	AutoSubmitted         string
	Precedence            string
	ListID                string
	XLoop                 []string
	XAutoreply            string
	XAutorespond          string
	XAutoResponseSuppress string
	ThreadIndex           string
	ThreadTopic           string
	// FailedRecipients is Exim's X-Failed-Recipients, on its plain-text
	// bounces.
	FailedRecipients []string
	// Headers holds every header, decoded, for configurable rules.
	Headers map[string][]string
	// Delivery is the delivery status report of a multipart/report
	// bounce; nil for other mail.
	Delivery *DeliveryReport

	// Text is the plain-text body, derived from the HTML when the mail has
	// no text part. HTML is sanitised for safe display.
	Text        string
	HTML        string
	Attachments []Attachment
	// Warnings are the parser's notes on malformed parts; the message was
	// still parsed.
	Warnings []string
	Size     int
}

// Attachment is an attached or inline part.
type Attachment struct {
	Name        string
	ContentType string
	ContentID   string // without angle brackets
	Inline      bool
	Content     []byte
	SHA256      [32]byte
}

// DeliveryReport is what a delivery status notification says about the
// first recipient it reports on.
type DeliveryReport struct {
	OriginalMessageID string // of the mail that bounced, from its headers
	Recipient         string // the address that failed
	Action            string // failed, delayed, delivered, relayed, expanded
	Status            string // e.g. 5.1.1
	Diagnostic        string
}

// Failed reports whether the delivery failed for good.
func (d *DeliveryReport) Failed() bool { return strings.EqualFold(d.Action, "failed") }

// headerValue reports whether a header is present with the value
// (compared case-insensitively), or present at all when value is "".
func (m *Message) headerValue(name, value string) bool {
	for k, vs := range m.Headers {
		if !strings.EqualFold(k, name) {
			continue
		}
		for _, v := range vs {
			if value == "" || strings.EqualFold(strings.TrimSpace(v), value) {
				return true
			}
		}
	}
	return false
}
