package threading

import (
	"reflect"
	"slices"
	"testing"

	"github.com/casedesk/casedesk"
)

// The world of these scenarios: Acme's support desk at support@acme.example.
// Case #12 belongs to Cara at Customer Inc.; her colleague Dan is on it too.
const (
	support = "support@acme.example"
	cara    = "cara@customer.example"
	dan     = "dan@customer.example"
	eve     = "eve@customer.example" // Cara's colleague, not on the case
	mallory = "mallory@evil.example" // a stranger
	agent   = "alex@acme.example"    // an agent
)

func case12(status casedesk.Status) *Case {
	return &Case{ID: 112, Number: 12, Status: status, Participants: []string{cara, dan},
		AccountDomains: []string{"customer.example"}}
}

// ackID is the Message-ID of our acknowledgement on case #12.
var ackID = acme.MessageID(12, 1, "acme.example")

// mail is a customer's message; the options adjust it.
func mail(subject string, opts ...func(*Message)) Message {
	m := Message{MessageID: "CAF+x1@mail.gmail.com", From: cara, Recipients: []string{support},
		Subject: subject, Kind: KindNormal, MayAutoReply: true}
	for _, o := range opts {
		o(&m)
	}
	return m
}

func from(a string) func(*Message)       { return func(m *Message) { m.From = a } }
func to(a ...string) func(*Message)      { return func(m *Message) { m.Recipients = a } }
func firstLine(l string) func(*Message)  { return func(m *Message) { m.FirstLine = l } }
func inReplyTo(id string) func(*Message) { return func(m *Message) { m.InReplyTo = id } }
func refs(ids ...string) func(*Message)  { return func(m *Message) { m.References = ids } }
func kind(k Kind) func(*Message) {
	return func(m *Message) {
		m.Kind = k
		m.MayAutoReply = k == KindNormal
	}
}
func report(fp string) func(*Message) {
	return func(m *Message) {
		m.Kind, m.Fingerprint, m.From, m.MayAutoReply = KindErrorReport, fp, "reports@app.customer.example", false
	}
}

// facts starts from a tenant whose only support address is ours and whose
// ack limit is the default.
func facts(opts ...func(*Facts)) Facts {
	f := Facts{OurAddresses: []string{support}, AckLimit: 5}
	for _, o := range opts {
		o(&f)
	}
	return f
}

func tokenCase(c *Case) func(*Facts)      { return func(f *Facts) { f.TokenCase = c } }
func referencedCase(c *Case) func(*Facts) { return func(f *Facts) { f.ReferencedCase = c } }
func addressCase(c *Case) func(*Facts)    { return func(f *Facts) { f.AddressCase = c } }
func tagCase(c *Case) func(*Facts)        { return func(f *Facts) { f.TagCase = c } }
func errorCase(c *Case) func(*Facts)      { return func(f *Facts) { f.ErrorCase = c } }
func isAgent(f *Facts)                    { f.SenderIsAgent = true }
func duplicate(f *Facts)                  { f.Duplicate = true }
func acksSent(n int) func(*Facts)         { return func(f *Facts) { f.AcksSent = n } }
func bounced(c *Case, addr string) func(*Facts) {
	return func(f *Facts) { f.BouncedCase, f.BouncedAddress = c, addr }
}

// Expected decisions.
func appended(rule Rule, status casedesk.Status, participants ...string) Decision {
	return Decision{Action: ActionAppend, Rule: rule, CaseID: 112, Author: casedesk.AuthorCustomer,
		Direction: casedesk.Inbound, SetStatus: status, NewParticipants: participants}
}

// opened is a new case; the sender becomes its requester, so participants
// are the other people on the mail.
func opened(ack casedesk.OutboxKind, participants ...string) Decision {
	return Decision{Action: ActionNewCase, Rule: RuleNew, Author: casedesk.AuthorCustomer, Direction: casedesk.Inbound,
		Category: casedesk.CategoryEmail, Priority: casedesk.PriorityNormal, Ack: ack, NewParticipants: participants}
}

func followUp(rule Rule, ack casedesk.OutboxKind, participants ...string) Decision {
	d := opened(ack, participants...)
	d.Rule, d.FollowUpOf = rule, 112
	return d
}

func agentOn(rule Rule, status casedesk.Status, relay bool, dir casedesk.Direction, strip bool) Decision {
	return Decision{Action: ActionAppend, Rule: rule, CaseID: 112, Author: casedesk.AuthorAgent, Direction: dir,
		SetStatus: status, Relay: relay, StripCommand: strip}
}

func with(d Decision, f func(*Decision)) Decision { f(&d); return d }

func TestDecide(t *testing.T) {
	open, pending, solved, closed, fresh := casedesk.StatusOpen, casedesk.StatusPending, casedesk.StatusSolved, casedesk.StatusClosed, casedesk.StatusNew
	gmailReply := []func(*Message){inReplyTo(ackID), refs("CAF+orig@mail.gmail.com", ackID)}
	tests := []struct {
		name string
		msg  Message
		f    Facts
		want Decision
	}{
		// New conversations.
		{"new mail opens a case with an ack", mail("Printer on fire"), facts(), opened(casedesk.OutboxAck)},
		{"new mail with colleagues in Cc makes them participants", mail("Printer on fire", to(support, dan, eve)),
			facts(), opened(casedesk.OutboxAck, dan, eve)},
		{"our plus-address in To is not a participant", mail("Hi", to(support, acme.ReplyAddress(support, 99))), facts(), opened(casedesk.OutboxAck)},
		{"ack limit reached: case, no ack", mail("Again"), facts(acksSent(5)), opened("")},
		{"ack limit not yet reached", mail("Again"), facts(acksSent(4)), opened(casedesk.OutboxAck)},
		{"ack limit zero means unlimited", mail("Again"), facts(acksSent(50), func(f *Facts) { f.AckLimit = 0 }), opened(casedesk.OutboxAck)},
		{"bulk newsletter: case, no ack", mail("Our November news", kind(KindBulk)), facts(), opened("")},
		{"auto-reply with no case: case, no ack", mail("Out of office", kind(KindAutoReply)), facts(), opened("")},

		// Rule 1: duplicates.
		{"same message delivered twice", mail("Printer on fire"), facts(duplicate), Decision{Action: ActionDuplicate, Rule: RuleDuplicate}},
		{"duplicate wins over everything", mail("Re: x", kind(KindLoop)), facts(duplicate, tokenCase(case12(open))), Decision{Action: ActionDuplicate, Rule: RuleDuplicate}},

		// Loops and bounces never make cases.
		{"mail from our own support address", mail("Re: [Case #12] x", kind(KindLoop), from(support)), facts(tagCase(case12(open))),
			Decision{Action: ActionIgnore, Rule: RuleLoop}},
		{"bounce of our ack", mail("Undelivered Mail Returned to Sender", kind(KindBounce), from("mailer-daemon@mx.customer.example")),
			facts(bounced(case12(open), "Cara@Customer.example")),
			Decision{Action: ActionBounce, Rule: RuleBounce, CaseID: 112, BouncingAddress: cara}},
		{"bounce of mail we never sent", mail("Delivery Status Notification (Failure)", kind(KindBounce)), facts(),
			Decision{Action: ActionIgnore, Rule: RuleBounce}},

		// Rule 2: our token in the references.
		{"Gmail reply to our ack, full References", mail("Re: [Case #12] Printer on fire", gmailReply...),
			facts(tokenCase(case12(open))), appended(RuleToken, "")},
		{"Outlook reply, In-Reply-To only, AW:", mail("AW: [Case #12] Printer on fire", inReplyTo(ackID)),
			facts(tokenCase(case12(open))), appended(RuleToken, "")},
		{"Outlook reply RE: on a pending case reopens it", mail("RE: [Case #12] Printer on fire", inReplyTo(ackID)),
			facts(tokenCase(case12(pending))), appended(RuleToken, open)},
		{"reply on a solved case reopens it", mail("Re: Printer", gmailReply...), facts(tokenCase(case12(solved))), appended(RuleToken, open)},
		{"reply on a new case leaves it new", mail("Re: Printer", gmailReply...), facts(tokenCase(case12(fresh))), appended(RuleToken, "")},
		{"reply with an entirely new subject keeps the case", mail("Another question about invoices", gmailReply...),
			facts(tokenCase(case12(open))), appended(RuleToken, "")},
		{"reply to a closed case starts a follow-up", mail("Re: [Case #12] Printer on fire", gmailReply...),
			facts(tokenCase(case12(closed))), followUp(RuleToken, casedesk.OutboxFollowUpAck)},
		{"follow-up past the ack limit: no ack", mail("Re: Printer", gmailReply...),
			facts(tokenCase(case12(closed)), acksSent(9)), followUp(RuleToken, "")},
		{"reply-all from a CC'd colleague joins the case", mail("Re: Printer", from(eve), to(support, cara, dan), inReplyTo(ackID)),
			facts(tokenCase(case12(open))), appended(RuleToken, "", eve)},
		{"reply from someone BCC'd on our mail", mail("Re: Printer", from("boss@customer.example"), to(support), inReplyTo(ackID)),
			facts(tokenCase(case12(open))), appended(RuleToken, "", "boss@customer.example")},
		{"reply adding a new Cc", mail("Re: Printer", to(support, "it@customer.example"), inReplyTo(ackID)),
			facts(tokenCase(case12(open))), appended(RuleToken, "", "it@customer.example")},
		{"participants compared case-insensitively", mail("Re: Printer", from("Dan@Customer.Example"), to(support, "CARA@customer.example"), inReplyTo(ackID)),
			facts(tokenCase(case12(open))), appended(RuleToken, "")},
		{"token wins over a referenced message of another case", mail("Re: x", gmailReply...),
			facts(tokenCase(case12(open)), referencedCase(&Case{ID: 7, Number: 7, Status: open})), appended(RuleToken, "")},
		{"forged token: nothing found, new case", mail("Re: [Case #12] x", inReplyTo("c12.m1.aaaaaaaa@acme.example")),
			facts(), opened(casedesk.OutboxAck)},
		{"token of another tenant: nothing found, new case", mail("Re: x", inReplyTo(other.MessageID(12, 1, "acme.example"))),
			facts(), opened(casedesk.OutboxAck)},

		// Rule 3: a known Message-ID in the references.
		{"Apple Mail reply keeping only the customer's own original id", mail("Re: Printer on fire", refs("CAF+orig@mail.gmail.com")),
			facts(referencedCase(case12(open))), appended(RuleReference, "")},
		{"reply to an agent's relayed mail on a pending case", mail("Re: Printer", inReplyTo("relay-7@acme.example")),
			facts(referencedCase(case12(pending))), appended(RuleReference, open)},
		{"reference wins over a subject tag", mail("Re: [Case #5] x", refs("CAF+orig@mail.gmail.com")),
			facts(referencedCase(case12(open)), tagCase(&Case{ID: 5, Number: 5, Participants: []string{cara}})), appended(RuleReference, "")},
		{"referenced closed case starts a follow-up", mail("Re: x", refs("CAF+orig@mail.gmail.com")),
			facts(referencedCase(case12(closed))), followUp(RuleReference, casedesk.OutboxFollowUpAck)},

		// Rule 4: the address token.
		{"reply to our Reply-To plus-address, references dropped", mail("Re: Printer", to(acme.ReplyAddress(support, 12))),
			facts(addressCase(case12(open))), appended(RuleAddress, "")},
		{"address token on a closed case: follow-up", mail("Re: Printer", to(acme.ReplyAddress(support, 12))),
			facts(addressCase(case12(closed))), followUp(RuleAddress, casedesk.OutboxFollowUpAck)},

		// Rule 5: the subject tag, only for people on the case or account.
		{"tag from the requester, no references", mail("[Case #12] still broken"), facts(tagCase(case12(pending))), appended(RuleTag, open)},
		{"tag from a participant", mail("Re: [Case #12] x", from(dan)), facts(tagCase(case12(open))), appended(RuleTag, "")},
		{"tag from a colleague in the account's domain", mail("[case # 12] x", from(eve)), facts(tagCase(case12(open))), appended(RuleTag, "", eve)},
		{"a stranger using someone else's tag gets a new case", mail("[Case #12] let me in", from(mallory)),
			facts(tagCase(case12(open))), opened(casedesk.OutboxAck)},
		{"a look-alike domain is a stranger", mail("[Case #12] x", from("cara@customer.example.evil.example")),
			facts(tagCase(case12(open))), opened(casedesk.OutboxAck)},
		{"an empty sender cannot use a tag", mail("[Case #12] x", from("")), facts(tagCase(case12(open))), opened(casedesk.OutboxAck)},
		{"reply with the tag removed and no references", mail("Printer still on fire"), facts(), opened(casedesk.OutboxAck)},

		// Forwards start new conversations.
		{"Fwd: of an old message to support", mail("Fwd: Printer on fire", refs("CAF+orig@mail.gmail.com", ackID)),
			facts(tokenCase(case12(solved)), referencedCase(case12(solved))), opened(casedesk.OutboxAck)},
		{"WG: from a German client", mail("WG: [Case #12] Drucker", from(dan)), facts(tagCase(case12(open))), opened(casedesk.OutboxAck)},

		// Automatic mail is kept on the case but changes nothing.
		{"out-of-office reply to our ack", mail("Automatic reply: [Case #12] Printer", kind(KindAutoReply), inReplyTo(ackID)),
			facts(tokenCase(case12(open))), appended(RuleToken, "")},
		{"out-of-office on a pending case does not reopen", mail("Out of Office: Re: Printer", kind(KindAutoReply), inReplyTo(ackID)),
			facts(tokenCase(case12(pending))), appended(RuleToken, "")},
		{"auto-reply on a closed case starts a quiet follow-up", mail("Abwesenheitsnotiz", kind(KindAutoReply), inReplyTo(ackID)),
			facts(tokenCase(case12(closed))), followUp(RuleToken, "")},
		{"bulk reply on a solved case does not reopen", mail("Re: Printer", kind(KindBulk), inReplyTo(ackID)),
			facts(tokenCase(case12(solved))), appended(RuleToken, "")},

		// Agents.
		{"agent reply is relayed and sets pending", mail("Re: [Case #12] Printer", from(agent), inReplyTo(ackID)),
			facts(tokenCase(case12(open)), isAgent), agentOn(RuleToken, pending, true, casedesk.Inbound, false)},
		{"agent #note is internal", mail("Re: Printer", from(agent), firstLine("#note"), inReplyTo(ackID)),
			facts(tokenCase(case12(open)), isAgent), agentOn(RuleToken, "", false, casedesk.Note, true)},
		{"agent #NOTE in capitals", mail("Re: Printer", from(agent), firstLine("  #NOTE "), inReplyTo(ackID)),
			facts(tokenCase(case12(open)), isAgent), agentOn(RuleToken, "", false, casedesk.Note, true)},
		{"agent #notes is not a command", mail("Re: Printer", from(agent), firstLine("#notes from the call"), inReplyTo(ackID)),
			facts(tokenCase(case12(open)), isAgent), agentOn(RuleToken, pending, true, casedesk.Inbound, false)},
		{"agent #solved", mail("Re: Printer", from(agent), firstLine("#solved"), inReplyTo(ackID)),
			facts(tokenCase(case12(open)), isAgent), agentOn(RuleToken, solved, true, casedesk.Inbound, true)},
		{"agent #pending", mail("Re: Printer", from(agent), firstLine("#pending"), inReplyTo(ackID)),
			facts(tokenCase(case12(fresh)), isAgent), agentOn(RuleToken, pending, true, casedesk.Inbound, true)},
		{"agent reply on a closed case is relayed, the case stays closed", mail("Re: Printer", from(agent), inReplyTo(ackID)),
			facts(tokenCase(case12(closed)), isAgent), agentOn(RuleToken, "", true, casedesk.Inbound, false)},
		{"agent may use a subject tag", mail("[Case #12] update", from(agent)),
			facts(tagCase(case12(open)), isAgent), agentOn(RuleTag, pending, true, casedesk.Inbound, false)},
		{"agent forwarding into a case by token", mail("Fwd: logs", from(agent), refs(ackID)),
			facts(tokenCase(case12(open)), isAgent), agentOn(RuleToken, pending, true, casedesk.Inbound, false)},
		{"agent mail on no case opens one, no ack", mail("Internal: printer fleet", from(agent)), facts(isAgent),
			with(opened(""), func(d *Decision) { d.Author = casedesk.AuthorAgent })},

		// Error reports.
		{"first error report opens a high-priority error case", mail("Error report", report("fp-1")), facts(),
			with(opened(""), func(d *Decision) {
				d.Category, d.Priority = casedesk.CategoryErrorReport, casedesk.PriorityHigh
			})},
		{"second report with the fingerprint counts on the open case", mail("Error report", report("fp-1")),
			facts(errorCase(case12(open))), with(appended(RuleFingerprint, ""), func(d *Decision) { d.Occurrence = true; d.NewParticipants = nil })},
		{"fingerprint case closed: a new error case", mail("Error report", report("fp-1")), facts(errorCase(case12(closed))),
			with(opened(""), func(d *Decision) {
				d.Category, d.Priority = casedesk.CategoryErrorReport, casedesk.PriorityHigh
			})},
	}
	if len(tests) < 50 {
		t.Fatalf("%d scenarios, want at least 50", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.msg, tt.f)
			got.Reason = ""
			if !equalDecision(got, tt.want) {
				t.Errorf("Decide =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func equalDecision(a, b Decision) bool {
	same := slices.Equal(a.NewParticipants, b.NewParticipants)
	a.NewParticipants, b.NewParticipants = nil, nil
	return same && reflect.DeepEqual(a, b)
}
