package ingest

import (
	"encoding/json"
	"strings"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// The functions here plan what a decision writes; write.go writes it.

// newCase plans a case for a message: the sender becomes its requester
// (and a contact), the other people on the mail its participants. Until it
// is created, the case goes by a temporary, negative ID.
func (r *batchRun) newCase(it item, tm threading.Message, d threading.Decision) {
	m := it.m
	sender := senderAddress(m)
	requester := r.contact(sender)
	subject := threading.NormalizeSubject(m.Subject, r.ti.tenant.Settings.TagPrefix())
	if subject == "" {
		subject = "(no subject)"
	}
	nc := casedesk.NewCase{TenantID: r.tenantID(), Subject: subject, Priority: d.Priority, Category: d.Category,
		FollowUpOf: d.FollowUpOf}
	if rep := it.class.Report; rep != nil {
		nc.ErrorFingerprint = rep.Fingerprint
		nc.Fields, _ = json.Marshal(map[string]any{"error_report": rep})
	}
	pc := &plannedCase{tempID: -int64(len(r.newCases) + 1), nc: nc, requester: requester}
	r.newCases = append(r.newCases, pc)
	c := &casedesk.Case{ID: pc.tempID, TenantID: r.tenantID(), Subject: subject, Status: casedesk.StatusNew,
		Requester: &casedesk.Contact{Email: requester, Name: sender.Name}, FollowUpOf: d.FollowUpOf}
	r.byID[c.ID] = c
	r.parties[c.ID] = casedesk.CaseParties{Emails: []string{requester}}
	if nc.ErrorFingerprint != "" {
		r.errCases[nc.ErrorFingerprint] = c
	}
	r.addParticipants(c.ID, m, d.NewParticipants)
	actor := actorRef{kind: casedesk.AuthorCustomer, contact: requester}
	if d.FollowUpOf != 0 {
		old := r.byID[d.FollowUpOf]
		r.events = append(r.events, plannedEvent{caseID: c.ID, kind: casedesk.EventFollowUp, by: actor,
			data: payload(map[string]any{"follow_up_of": old.Number, "case_id": old.ID})})
	}
	author, userID := d.Author, int64(0)
	if author == casedesk.AuthorAgent {
		userID = r.agents[tm.From].ID
	}
	var ack func(*casedesk.Message) (*casedesk.NewOutboxItem, error)
	if d.Ack != "" && casedesk.Deliverable(requester) {
		r.acks[requester]++
		if requester != tm.From {
			r.acks[tm.From]++
		}
		ack = func(*casedesk.Message) (*casedesk.NewOutboxItem, error) { return r.ack(c.ID, d, m, requester), nil }
	}
	r.queue(it, c.ID, d, author, requester, userID, ack)
}

// ack builds the acknowledgement of a created case, threaded under the
// customer's message; none to an address that bounces.
func (r *batchRun) ack(tempID int64, d threading.Decision, m *Message, to string) *casedesk.NewOutboxItem {
	if !r.contactOf[to].BouncingSince.IsZero() {
		return nil
	}
	c := r.created[tempID]
	data := map[string]any{"case_number": c.Number, "subject": c.Subject, "in_reply_to": m.MessageID,
		"references": m.References, "original_subject": m.Subject}
	if d.FollowUpOf != 0 {
		data["follow_up_of"] = r.byID[d.FollowUpOf].Number
	}
	return &casedesk.NewOutboxItem{TenantID: r.tenantID(), CaseID: c.ID, Kind: d.Ack,
		To: r.contactOf[to].Email, MessageID: outboundMessageID(r.ti, c.Number), Payload: payload(data)}
}

// appendTo plans adding a message to an existing case, with its
// consequences: new participants, a status change, an error occurrence, a
// relay.
func (r *batchRun) appendTo(it item, d threading.Decision) {
	m := it.m
	c := r.byID[d.CaseID]
	var contact string
	var userID int64
	actor := actorRef{kind: d.Author}
	if d.Author == casedesk.AuthorAgent {
		userID = r.agents[strings.ToLower(m.From.Email)].ID
		actor.userID = userID
	} else {
		contact = r.contact(senderAddress(m))
		actor.contact = contact
	}
	r.addParticipants(c.ID, m, d.NewParticipants)
	if d.SetStatus != "" && d.SetStatus != c.Status {
		r.changes = append(r.changes, plannedChange{caseID: c.ID, from: c.Status, to: d.SetStatus, by: actor})
		changed := *c
		changed.Status = d.SetStatus
		r.byID[c.ID] = &changed
		if c.Number != 0 {
			r.byNumber[c.Number] = &changed
		}
	}
	if d.Occurrence {
		r.occurrences = append(r.occurrences, plannedEvent{caseID: c.ID, by: actor})
	}
	var relay func(*casedesk.Message) (*casedesk.NewOutboxItem, error)
	if d.Relay {
		relay = func(stored *casedesk.Message) (*casedesk.NewOutboxItem, error) { return r.relay(c.ID, stored, d), nil }
	}
	r.queue(it, c.ID, d, d.Author, contact, userID, relay)
}

// relay builds an agent's reply for the case's requester, with the other
// participants in copy.
func (r *batchRun) relay(caseID int64, stored *casedesk.Message, d threading.Decision) *casedesk.NewOutboxItem {
	c := r.caseByID(caseID)
	requester := c.Requester.Email
	var cc []string
	for _, e := range r.parties[caseID].Emails {
		if !strings.EqualFold(e, requester) && !strings.EqualFold(e, stored.From.Email) {
			cc = append(cc, e)
		}
	}
	return &casedesk.NewOutboxItem{TenantID: r.tenantID(), CaseID: c.ID, Kind: casedesk.OutboxRelay,
		To: requester, MessageID: outboundMessageID(r.ti, c.Number),
		Payload: payload(map[string]any{"case_number": c.Number, "message_id": stored.ID, "cc": cc,
			"strip_command": d.StripCommand, "agent_user_id": stored.UserID})}
}

// bounce plans the record of a failed delivery of our mail on its case and
// the mark on the address; the bounce itself is kept on the case, so that
// fetching it again is recognised as a duplicate.
func (r *batchRun) bounce(it item, d threading.Decision) {
	b := it.class.Bounce
	r.events = append(r.events, plannedEvent{caseID: d.CaseID, kind: casedesk.EventBounce, by: actorRef{kind: casedesk.AuthorSystem},
		data: payload(map[string]any{"recipient": d.BouncingAddress, "status": b.Status,
			"action": b.Action, "diagnostic": b.Diagnostic, "original_message_id": b.OriginalMessageID})})
	if d.BouncingAddress != "" {
		r.bouncing = append(r.bouncing, d.BouncingAddress)
	}
	r.queue(it, d.CaseID, d, casedesk.AuthorSystem, "", 0, nil)
}

// addParticipants plans contacts for new people on a case and their
// places on it.
func (r *batchRun) addParticipants(caseID int64, m *Message, addrs []string) {
	if len(addrs) == 0 {
		return
	}
	names := map[string]string{}
	for _, a := range append(append([]casedesk.Address{m.From}, m.To...), m.Cc...) {
		names[strings.ToLower(a.Email)] = a.Name
	}
	p := r.parties[caseID]
	for _, a := range addrs {
		if !casedesk.ValidEmail(a) {
			continue
		}
		key := r.contact(casedesk.Address{Email: a, Name: names[a]})
		r.participants = append(r.participants, plannedParticipant{caseID: caseID, contact: key})
		p.Emails = append(p.Emails, key)
	}
	r.parties[caseID] = p
}

// senderAddress is who a message is from; mail without a usable From is
// attributed to its envelope sender.
func senderAddress(m *Message) casedesk.Address {
	if casedesk.ValidEmail(m.From.Email) {
		return casedesk.Address{Name: m.From.Name, Email: strings.ToLower(m.From.Email)}
	}
	if m.Sender != nil && casedesk.ValidEmail(m.Sender.Email) {
		return casedesk.Address{Name: m.Sender.Name, Email: strings.ToLower(m.Sender.Email)}
	}
	if casedesk.ValidEmail(m.ReturnPath) {
		return casedesk.Address{Email: strings.ToLower(m.ReturnPath)}
	}
	return casedesk.Address{Name: m.From.Name, Email: unknownSender}
}

// unknownSender is the contact of mail whose sender cannot be told.
const unknownSender = "unknown-sender@invalid"
