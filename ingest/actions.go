package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// newCase opens a case for a message: the sender becomes its requester
// (and a contact), the other people on the mail its participants.
func (r *batchRun) newCase(ctx context.Context, it item, tm threading.Message, d threading.Decision) error {
	m := it.m
	requester, err := r.contact(ctx, senderAddress(m))
	if err != nil {
		return fmt.Errorf("requester: %w", err)
	}
	subject := threading.NormalizeSubject(m.Subject, r.ti.tenant.Settings.TagPrefix())
	if subject == "" {
		subject = "(no subject)"
	}
	nc := casedesk.NewCase{TenantID: r.tenantID(), Subject: subject, Priority: d.Priority, Category: d.Category,
		RequesterID: requester.ID, AccountID: requester.AccountID, FollowUpOf: d.FollowUpOf}
	if rep := it.class.Report; rep != nil {
		nc.ErrorFingerprint = rep.Fingerprint
		nc.Fields, _ = json.Marshal(map[string]any{"error_report": rep})
	}
	c, err := r.tx.CreateCase(ctx, nc)
	if err != nil {
		return fmt.Errorf("create case: %w", err)
	}
	r.byID[c.ID], r.byNumber[c.Number] = c, c
	r.parties[c.ID] = casedesk.CaseParties{Emails: []string{strings.ToLower(requester.Email)}}
	if nc.ErrorFingerprint != "" {
		r.errCases[nc.ErrorFingerprint] = c
	}
	if err := r.addParticipants(ctx, c.ID, m, d.NewParticipants); err != nil {
		return err
	}
	actor := casedesk.Actor{Kind: casedesk.AuthorCustomer, ContactID: requester.ID}
	if d.FollowUpOf != 0 {
		old := r.byID[d.FollowUpOf]
		if _, err := r.tx.AddEvent(ctx, casedesk.Event{TenantID: r.tenantID(), CaseID: c.ID, Kind: casedesk.EventFollowUp,
			Actor: actor, Data: payload(map[string]any{"follow_up_of": old.Number, "case_id": old.ID})}); err != nil {
			return fmt.Errorf("follow-up event: %w", err)
		}
	}
	author, userID := d.Author, int64(0)
	if author == casedesk.AuthorAgent {
		userID = r.agents[tm.From].ID
	}
	r.queue(it, c.ID, d, author, requester.ID, userID, nil)
	if d.Ack != "" && requester.BouncingSince.IsZero() {
		return r.enqueueAck(ctx, c, d, m, requester.Email)
	}
	return nil
}

// enqueueAck queues the acknowledgement of a new case, threaded under the
// customer's message.
func (r *batchRun) enqueueAck(ctx context.Context, c *casedesk.Case, d threading.Decision, m *Message, to string) error {
	data := map[string]any{"case_number": c.Number, "subject": c.Subject, "in_reply_to": m.MessageID,
		"references": m.References, "original_subject": m.Subject}
	if d.FollowUpOf != 0 {
		data["follow_up_of"] = r.byID[d.FollowUpOf].Number
	}
	_, err := r.tx.EnqueueOutbox(ctx, casedesk.NewOutboxItem{TenantID: r.tenantID(), CaseID: c.ID, Kind: d.Ack,
		To: to, MessageID: outboundMessageID(r.ti, c.Number), Payload: payload(data)})
	if err != nil {
		return fmt.Errorf("enqueue acknowledgement: %w", err)
	}
	r.acks[strings.ToLower(to)]++
	return nil
}

// appendTo adds a message to an existing case, with its consequences:
// new participants, a status change, an error occurrence, a relay.
func (r *batchRun) appendTo(ctx context.Context, it item, d threading.Decision) error {
	m := it.m
	c := r.byID[d.CaseID]
	var contactID, userID int64
	actor := casedesk.Actor{Kind: d.Author}
	if d.Author == casedesk.AuthorAgent {
		userID = r.agents[strings.ToLower(m.From.Email)].ID
		actor.UserID = userID
	} else {
		contact, err := r.contact(ctx, senderAddress(m))
		if err != nil {
			return fmt.Errorf("sender: %w", err)
		}
		contactID, actor.ContactID = contact.ID, contact.ID
	}
	if err := r.addParticipants(ctx, c.ID, m, d.NewParticipants); err != nil {
		return err
	}
	if d.SetStatus != "" && d.SetStatus != c.Status {
		changed, err := r.tx.ChangeStatus(ctx, r.tenantID(), c.ID, d.SetStatus, actor)
		if err != nil {
			return fmt.Errorf("status of case #%d: %w", c.Number, err)
		}
		r.byID[c.ID], r.byNumber[c.Number] = changed, changed
	}
	if d.Occurrence {
		if err := r.tx.AddOccurrence(ctx, r.tenantID(), c.ID, actor); err != nil {
			return fmt.Errorf("count occurrence: %w", err)
		}
	}
	var after func(context.Context, *casedesk.Message) error
	if d.Relay {
		after = func(ctx context.Context, stored *casedesk.Message) error { return r.relay(ctx, c, stored, d) }
	}
	r.queue(it, c.ID, d, d.Author, contactID, userID, after)
	return nil
}

// relay queues an agent's reply for the case's requester, with the other
// participants in copy.
func (r *batchRun) relay(ctx context.Context, c *casedesk.Case, stored *casedesk.Message, d threading.Decision) error {
	requester, err := r.tx.FindContact(ctx, r.tenantID(), c.RequesterID)
	if err != nil {
		return fmt.Errorf("requester of case #%d: %w", c.Number, err)
	}
	var cc []string
	for _, e := range r.parties[c.ID].Emails {
		if !strings.EqualFold(e, requester.Email) && !strings.EqualFold(e, stored.From.Email) {
			cc = append(cc, e)
		}
	}
	_, err = r.tx.EnqueueOutbox(ctx, casedesk.NewOutboxItem{TenantID: r.tenantID(), CaseID: c.ID, Kind: casedesk.OutboxRelay,
		To: requester.Email, MessageID: outboundMessageID(r.ti, c.Number),
		Payload: payload(map[string]any{"case_number": c.Number, "message_id": stored.ID, "cc": cc,
			"strip_command": d.StripCommand, "agent_user_id": stored.UserID})})
	if err != nil {
		return fmt.Errorf("enqueue relay: %w", err)
	}
	return nil
}

// bounce records a failed delivery of our mail on its case and marks the
// address; the bounce itself is kept on the case, so that fetching it
// again is recognised as a duplicate.
func (r *batchRun) bounce(ctx context.Context, it item, d threading.Decision) error {
	b := it.class.Bounce
	_, err := r.tx.AddEvent(ctx, casedesk.Event{TenantID: r.tenantID(), CaseID: d.CaseID, Kind: casedesk.EventBounce,
		Actor: casedesk.SystemActor, Data: payload(map[string]any{"recipient": d.BouncingAddress, "status": b.Status,
			"action": b.Action, "diagnostic": b.Diagnostic, "original_message_id": b.OriginalMessageID})})
	if err != nil {
		return fmt.Errorf("bounce event: %w", err)
	}
	if d.BouncingAddress != "" {
		if err := r.tx.MarkBouncing(ctx, r.tenantID(), d.BouncingAddress); err != nil && casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
			return fmt.Errorf("mark %s bouncing: %w", d.BouncingAddress, err)
		}
	}
	r.queue(it, d.CaseID, d, casedesk.AuthorSystem, 0, 0, nil)
	return nil
}

// addParticipants makes contacts of new people on a case and adds them.
func (r *batchRun) addParticipants(ctx context.Context, caseID int64, m *Message, addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	names := map[string]string{}
	for _, a := range append(append([]casedesk.Address{m.From}, m.To...), m.Cc...) {
		names[strings.ToLower(a.Email)] = a.Name
	}
	ids := make([]int64, 0, len(addrs))
	for _, a := range addrs {
		if !casedesk.ValidEmail(a) {
			continue
		}
		c, err := r.contact(ctx, casedesk.Address{Email: a, Name: names[a]})
		if err != nil {
			return fmt.Errorf("participant %s: %w", a, err)
		}
		ids = append(ids, c.ID)
	}
	if err := r.tx.AddParticipants(ctx, r.tenantID(), caseID, ids...); err != nil {
		return fmt.Errorf("add participants: %w", err)
	}
	p := r.parties[caseID]
	p.Emails = append(p.Emails, addrs...)
	r.parties[caseID] = p
	return nil
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
	return casedesk.Address{Name: m.From.Name, Email: "unknown-sender@invalid"}
}
