// Package ingest turns raw mail into casedesk messages: MIME parsing,
// classification, the IMAP poller and the processor that stores each
// message in one transaction.
package ingest

import (
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
