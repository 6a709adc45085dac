package threading

import (
	"slices"
	"strconv"
	"strings"

	"github.com/casedesk/casedesk"
)

// Kind is what the classifier made of a message, as far as threading
// cares.
type Kind string

// Message kinds.
const (
	KindNormal      Kind = "normal"
	KindAutoReply   Kind = "auto_reply"
	KindBounce      Kind = "bounce"
	KindBulk        Kind = "bulk"
	KindLoop        Kind = "loop"
	KindErrorReport Kind = "error_report"
)

// Message is the part of an inbound message that threading looks at.
type Message struct {
	MessageID  string
	InReplyTo  string
	References []string
	// From is the sender's address.
	From string
	// Recipients are the To and Cc addresses.
	Recipients []string
	Subject    string
	// FirstLine is the first non-empty line of the text body, where an
	// agent puts a command (#note, #pending, #solved).
	FirstLine string
	Kind      Kind
	// MayAutoReply is the classifier's verdict: false for anything
	// automatic, bulk or looping.
	MayAutoReply bool
	// Fingerprint groups error reports.
	Fingerprint string
}

// Case is what threading knows of a stored case.
type Case struct {
	ID     int64
	Number int64
	Status casedesk.Status
	// Participants are the email addresses of the requester and the other
	// people on the case.
	Participants []string
	// AccountDomains are the email domains of the case's account.
	AccountDomains []string
}

// Facts are what the processor looked up for one message.
type Facts struct {
	// Duplicate: the tenant already stored this Message-ID (or, without
	// one, these raw bytes).
	Duplicate bool
	// TokenCase is the case that a valid token in In-Reply-To or
	// References points at (rule 2).
	TokenCase *Case
	// ReferencedCase is the case of a stored message that In-Reply-To or
	// References names, the most relevant first (rule 3).
	ReferencedCase *Case
	// AddressCase is the case a valid plus-address among the recipients
	// names (rule 4).
	AddressCase *Case
	// TagCase is the case whose number the subject tag carries (rule 5).
	TagCase *Case
	// ErrorCase is an unsolved error-report case with the message's
	// fingerprint.
	ErrorCase *Case
	// BouncedCase is the case of our outbound mail that a bounce reports
	// on, and BouncedAddress the recipient that failed.
	BouncedCase    *Case
	BouncedAddress string
	// SenderIsAgent: the sender is an active user allowed to reply.
	SenderIsAgent bool
	// OurAddresses are the tenant's support addresses; they never become
	// participants.
	OurAddresses []string
	// AcksSent is the number of acknowledgements sent to the sender in the
	// last hour, AckLimit the most allowed.
	AcksSent, AckLimit int
}

// Action is what the processor writes.
type Action string

// Actions.
const (
	// ActionDuplicate: already stored; write nothing.
	ActionDuplicate Action = "duplicate"
	// ActionIgnore: our own mail come back (a loop); write nothing.
	ActionIgnore Action = "ignore"
	// ActionAppend: add the message to Decision.CaseID.
	ActionAppend Action = "append"
	// ActionNewCase: open a case with the message.
	ActionNewCase Action = "new_case"
	// ActionBounce: record an event on Decision.CaseID and mark
	// Decision.BouncingAddress; no case is created.
	ActionBounce Action = "bounce"
)

// Rule names the threading rule that decided.
type Rule string

// Rules, in the order they are tried.
const (
	RuleDuplicate   Rule = "duplicate"
	RuleLoop        Rule = "loop"
	RuleBounce      Rule = "bounce"
	RuleToken       Rule = "token"
	RuleReference   Rule = "reference"
	RuleAddress     Rule = "address_token"
	RuleTag         Rule = "subject_tag"
	RuleFingerprint Rule = "error_fingerprint"
	RuleNew         Rule = "new"
)

// Decision says where a message goes and what it changes.
type Decision struct {
	Action Action
	Rule   Rule
	// CaseID is the case appended to, or the case of a bounce event.
	CaseID int64
	// FollowUpOf is the closed case a new case follows up.
	FollowUpOf int64
	Author     casedesk.AuthorKind
	// Direction is Inbound, or Note for an agent's internal note.
	Direction casedesk.Direction
	// SetStatus is the case's new status; empty leaves it.
	SetStatus casedesk.Status
	// Ack is the acknowledgement to send, empty for none.
	Ack casedesk.OutboxKind
	// Relay: send the agent's reply to the requester and participants.
	Relay bool
	// StripCommand: the first line is an agent command, not for the
	// customer.
	StripCommand bool
	// NewParticipants are addresses to add to the case.
	NewParticipants []string
	// Occurrence: one more occurrence of an error report on CaseID.
	Occurrence bool
	// Category and Priority of a new case.
	Category string
	Priority casedesk.Priority
	// BouncingAddress is the recipient to mark as bouncing.
	BouncingAddress string
	// Reason explains the decision, for logs and events.
	Reason string
}

// Decide applies DESIGN.md's threading rules, in order, and the case
// lifecycle. It has no side effects.
func Decide(m Message, f Facts) Decision {
	from := normAddr(m.From)
	switch {
	case f.Duplicate:
		return Decision{Action: ActionDuplicate, Rule: RuleDuplicate, Reason: "already stored"}
	case m.Kind == KindLoop:
		return Decision{Action: ActionIgnore, Rule: RuleLoop, Reason: "our own mail came back"}
	case m.Kind == KindBounce:
		if f.BouncedCase == nil {
			return Decision{Action: ActionIgnore, Rule: RuleBounce, Reason: "bounce of mail we did not send"}
		}
		return Decision{Action: ActionBounce, Rule: RuleBounce, CaseID: f.BouncedCase.ID,
			BouncingAddress: normAddr(f.BouncedAddress), Reason: "delivery failed"}
	}
	if c, rule := match(m, f, from); c != nil {
		return onCase(m, f, from, c, rule)
	}
	if m.Kind == KindErrorReport && f.ErrorCase != nil && f.ErrorCase.Status != casedesk.StatusClosed {
		return Decision{Action: ActionAppend, Rule: RuleFingerprint, CaseID: f.ErrorCase.ID, Author: casedesk.AuthorCustomer,
			Direction: casedesk.Inbound, Occurrence: true, Reason: "same error as case #" + itoa(f.ErrorCase.Number)}
	}
	return newCase(m, f, from, 0)
}

// match tries rules 2 to 5. A forwarded message starts a new case even
// when it carries references: the sender is bringing up something new.
func match(m Message, f Facts, from string) (*Case, Rule) {
	if IsForward(m.Subject) && !f.SenderIsAgent {
		return nil, ""
	}
	switch {
	case f.TokenCase != nil:
		return f.TokenCase, RuleToken
	case f.ReferencedCase != nil:
		return f.ReferencedCase, RuleReference
	case f.AddressCase != nil:
		return f.AddressCase, RuleAddress
	case f.TagCase != nil && (f.SenderIsAgent || mayUseTag(f.TagCase, from)):
		return f.TagCase, RuleTag
	}
	return nil, ""
}

// mayUseTag: a subject tag alone threads only mail from someone already
// on the case or in its account, so a stranger cannot write into a case
// by copying its number.
func mayUseTag(c *Case, from string) bool {
	if from == "" {
		return false
	}
	for _, p := range c.Participants {
		if normAddr(p) == from {
			return true
		}
	}
	_, domain, _ := strings.Cut(from, "@")
	for _, d := range c.AccountDomains {
		if strings.EqualFold(strings.TrimPrefix(d, "@"), domain) {
			return true
		}
	}
	return false
}

// onCase decides for mail that belongs to an existing case.
func onCase(m Message, f Facts, from string, c *Case, rule Rule) Decision {
	if f.SenderIsAgent {
		return agentReply(m, c, rule)
	}
	if c.Status == casedesk.StatusClosed {
		// Closed is final: the customer gets a new case that refers back.
		d := newCase(m, f, from, c.ID)
		d.Rule = rule
		return d
	}
	d := Decision{Action: ActionAppend, Rule: rule, CaseID: c.ID, Author: casedesk.AuthorCustomer,
		Direction: casedesk.Inbound, NewParticipants: newParticipants(m, f, c.Participants),
		Reason: "reply to case #" + itoa(c.Number)}
	if m.Kind == KindErrorReport && m.Fingerprint != "" {
		d.Occurrence = true
	}
	// Automatic mail is kept on the case but changes nothing.
	if m.Kind == KindAutoReply || m.Kind == KindBulk {
		return d
	}
	if c.Status == casedesk.StatusPending || c.Status == casedesk.StatusSolved {
		d.SetStatus = casedesk.StatusOpen
	}
	return d
}

// agentReply: an agent's mail on a case is relayed to the customer and
// sets the case pending, unless its first line says otherwise.
func agentReply(m Message, c *Case, rule Rule) Decision {
	d := Decision{Action: ActionAppend, Rule: rule, CaseID: c.ID, Author: casedesk.AuthorAgent,
		Direction: casedesk.Inbound, Relay: true, SetStatus: casedesk.StatusPending,
		Reason: "agent reply on case #" + itoa(c.Number)}
	switch Command(m.FirstLine) {
	case "note":
		d.Direction, d.Relay, d.SetStatus, d.StripCommand = casedesk.Note, false, "", true
		d.Reason = "internal note on case #" + itoa(c.Number)
	case "pending":
		d.StripCommand = true
	case "solved":
		d.SetStatus, d.StripCommand = casedesk.StatusSolved, true
	}
	if d.SetStatus != "" && !casedesk.CanTransition(c.Status, d.SetStatus) {
		d.SetStatus = "" // e.g. a reply on a closed case is relayed, the case stays closed
	}
	return d
}

// newCase opens a case; followUpOf is the closed case it continues.
func newCase(m Message, f Facts, from string, followUpOf int64) Decision {
	d := Decision{Action: ActionNewCase, Rule: RuleNew, FollowUpOf: followUpOf, Author: casedesk.AuthorCustomer,
		Direction: casedesk.Inbound, Category: casedesk.CategoryEmail, Priority: casedesk.PriorityNormal,
		NewParticipants: newParticipants(m, f, []string{from}), Reason: "new conversation"}
	if m.Kind == KindErrorReport {
		d.Category, d.Priority, d.Reason = casedesk.CategoryErrorReport, casedesk.PriorityHigh, "new error report"
	}
	if f.SenderIsAgent {
		d.Author = casedesk.AuthorAgent
	}
	if followUpOf != 0 {
		d.Reason = "reply to a closed case"
	}
	d.Ack = ack(m, f, followUpOf)
	return d
}

// ack picks the acknowledgement for a new case: none for automatic mail,
// agents, or past the per-sender hourly limit.
func ack(m Message, f Facts, followUpOf int64) casedesk.OutboxKind {
	if !m.MayAutoReply || f.SenderIsAgent || m.Kind != KindNormal && m.Kind != KindErrorReport {
		return ""
	}
	if f.AckLimit > 0 && f.AcksSent >= f.AckLimit {
		return ""
	}
	if followUpOf != 0 {
		return casedesk.OutboxFollowUpAck
	}
	return casedesk.OutboxAck
}

// newParticipants are the people on customer mail who are not on the
// case yet: the sender and the To/Cc recipients, without our own
// addresses and plus-addresses.
func newParticipants(m Message, f Facts, have []string) []string {
	if m.Kind != KindNormal && m.Kind != KindErrorReport {
		return onlyNew([]string{normAddr(m.From)}, have)
	}
	all := append([]string{normAddr(m.From)}, m.Recipients...)
	var out []string
	for _, a := range all {
		a = normAddr(a)
		if a == "" || isOurs(a, f.OurAddresses) || slices.Contains(out, a) {
			continue
		}
		out = append(out, a)
	}
	return onlyNew(out, have)
}

func onlyNew(addrs, have []string) []string {
	var out []string
	for _, a := range addrs {
		if a != "" && !slices.ContainsFunc(have, func(h string) bool { return normAddr(h) == a }) {
			out = append(out, a)
		}
	}
	return out
}

// isOurs: one of our support addresses, with or without a plus-part.
func isOurs(addr string, ours []string) bool {
	base := stripPlus(addr)
	for _, o := range ours {
		if stripPlus(normAddr(o)) == base {
			return true
		}
	}
	return false
}

func stripPlus(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok {
		return addr
	}
	local, _, _ = strings.Cut(local, "+")
	return local + "@" + domain
}

func normAddr(a string) string { return strings.ToLower(strings.TrimSpace(a)) }

// Command returns the agent command on a first line ("#note",
// "#pending", "#solved", in any letter case, alone on the line), or "".
func Command(firstLine string) string {
	switch c := strings.ToLower(strings.TrimSpace(firstLine)); c {
	case "#note", "#pending", "#solved":
		return c[1:]
	}
	return ""
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
