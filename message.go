package casedesk

import (
	"crypto/sha256"
	"strings"
	"time"
)

// Direction tells inbound mail, outbound mail and internal notes apart.
type Direction string

// Message directions.
const (
	Inbound  Direction = "inbound"
	Outbound Direction = "outbound"
	Note     Direction = "note"
)

// AuthorKind says who wrote a message.
type AuthorKind string

// Author kinds.
const (
	AuthorCustomer AuthorKind = "customer"
	AuthorAgent    AuthorKind = "agent"
	AuthorSystem   AuthorKind = "system"
)

// Address is a mailbox with an optional display name.
type Address struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email"`
}

// Message is one email (inbound or outbound) or internal note on a case.
type Message struct {
	ID       int64
	TenantID int64
	CaseID   int64
	// MessageID is the RFC 5322 Message-ID without angle brackets; empty if
	// the mail had none (it is then deduplicated by RawSHA256).
	MessageID  string
	InReplyTo  string
	References []string
	Direction  Direction
	AuthorKind AuthorKind
	// ContactID or UserID is the author, when known.
	ContactID int64
	UserID    int64
	From      Address
	To        []Address
	Cc        []Address
	Subject   string
	Text      string
	HTML      string // sanitised for display
	// Class is the ingest classification (normal, auto_reply, bounce, ...).
	Class string
	// Mailbox the message was fetched from; empty for outbound and notes.
	Mailbox     string
	RawSHA256   []byte
	RawSize     int
	Attachments []Attachment
	CreatedAt   time.Time
}

// NewMessage is the input for appending a message to a case.
type NewMessage struct {
	TenantID   int64
	CaseID     int64
	MessageID  string
	InReplyTo  string
	References []string
	Direction  Direction
	AuthorKind AuthorKind
	ContactID  int64
	UserID     int64
	From       Address
	To         []Address
	Cc         []Address
	Subject    string
	Text       string
	HTML       string
	Class      string
	Mailbox    string
	// Raw is the whole RFC 5322 message as received or sent; stored
	// compressed. Required for inbound mail.
	Raw         []byte
	Attachments []NewAttachment
	// CustomerVisible marks an agent message the customer sees (a reply,
	// not a note); it moves the case's auto-resolve clock.
	CustomerVisible bool
}

// Validate reports the first problem as EINVALID and normalises the
// Message-ID (angle brackets and surrounding space removed).
func (n *NewMessage) Validate() error {
	n.MessageID = NormalizeMessageID(n.MessageID)
	n.InReplyTo = NormalizeMessageID(n.InReplyTo)
	refs := make([]string, len(n.References)) // the caller's slice stays as it was
	for i, r := range n.References {
		refs[i] = NormalizeMessageID(r)
	}
	n.References = refs
	switch {
	case n.TenantID == 0 || n.CaseID == 0:
		return Errorf(EINVALID, "tenant and case are required")
	case n.Direction != Inbound && n.Direction != Outbound && n.Direction != Note:
		return Errorf(EINVALID, "unknown direction %q", n.Direction)
	case n.AuthorKind != AuthorCustomer && n.AuthorKind != AuthorAgent && n.AuthorKind != AuthorSystem:
		return Errorf(EINVALID, "unknown author kind %q", n.AuthorKind)
	case n.Direction == Inbound && len(n.Raw) == 0:
		return Errorf(EINVALID, "inbound mail must keep its raw bytes")
	case len(n.MessageID) > MaxMessageIDLen:
		return Errorf(EINVALID, "message-id longer than %d bytes", MaxMessageIDLen)
	case n.CustomerVisible && n.MessageID == "":
		return Errorf(EINVALID, "mail the customer sees needs a Message-ID")
	}
	return nil
}

// Appended is the outcome of appending one message: the stored message, or
// with Duplicate the one stored earlier under the same Message-ID or bytes.
type Appended struct {
	Message   *Message
	Duplicate bool
}

// MaxMessageIDLen bounds a stored Message-ID. RFC 5322 lines stop at 998
// characters, so a longer id is not one a mail client sent.
const MaxMessageIDLen = 998

// NormalizeMessageID strips whitespace and one pair of angle brackets.
func NormalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	return strings.TrimSpace(id)
}

// RawDigest returns the sha256 that deduplicates mail without a Message-ID.
func RawDigest(raw []byte) []byte {
	sum := sha256.Sum256(raw)
	return sum[:]
}

// Attachment is a file on a message. Content is stored once per tenant,
// addressed by its sha256.
type Attachment struct {
	Name        string
	ContentType string
	Size        int64
	SHA256      []byte
	ContentID   string // for inline parts referenced as cid:
	Inline      bool
}

// NewAttachment is an attachment with its content, for appending.
type NewAttachment struct {
	Name        string
	ContentType string
	ContentID   string
	Inline      bool
	Content     []byte
}

// MessageRef is the narrow view of a stored message that threading needs:
// which case a Message-ID belongs to.
type MessageRef struct {
	ID         int64
	MessageID  string
	CaseID     int64
	CaseNumber int64
	CaseStatus Status
	Direction  Direction
	AuthorKind AuthorKind
	CreatedAt  time.Time
}

// QuarantinedMessage is mail that could not be processed, kept raw.
type QuarantinedMessage struct {
	ID         int64
	TenantID   int64
	Mailbox    string
	UID        uint32
	Error      string
	Size       int
	Raw        []byte // only filled when asked for
	ReceivedAt time.Time
	ResolvedAt time.Time // zero while it waits
}
