package ingest

import (
	"context"
	"fmt"

	"github.com/casedesk/casedesk"
)

// writeCases writes the batch's new cases, participants, status changes
// and events, each kind in one set-based call.
func (r *batchRun) writeCases(ctx context.Context) error {
	if err := r.createCases(ctx); err != nil {
		return err
	}
	if len(r.participants) > 0 {
		ps := make([]casedesk.CaseParticipant, len(r.participants))
		for i, p := range r.participants {
			ps[i] = casedesk.CaseParticipant{CaseID: r.caseID(p.caseID), ContactID: r.contactOf[p.contact].ID}
		}
		if err := r.tx.AddCaseParticipants(ctx, r.tenantID(), ps); err != nil {
			return fmt.Errorf("add participants: %w", err)
		}
	}
	if len(r.changes) > 0 {
		cs := make([]casedesk.StatusChange, len(r.changes))
		for i, c := range r.changes {
			cs[i] = casedesk.StatusChange{CaseID: r.caseID(c.caseID), From: c.from, To: c.to, By: r.actor(c.by)}
		}
		err := r.tx.ChangeStatuses(ctx, r.tenantID(), cs)
		if casedesk.ErrorCode(err) == casedesk.ECONFLICT {
			return &retryError{reason: err.Error()}
		}
		if err != nil {
			return fmt.Errorf("change statuses: %w", err)
		}
	}
	if len(r.events) > 0 {
		es := make([]casedesk.Event, len(r.events))
		for i, e := range r.events {
			es[i] = casedesk.Event{TenantID: r.tenantID(), CaseID: r.caseID(e.caseID), Kind: e.kind, Actor: r.actor(e.by), Data: e.data}
		}
		if _, err := r.tx.AddEvents(ctx, es); err != nil {
			return fmt.Errorf("add events: %w", err)
		}
	}
	// Error-report occurrences and bounces are rare: one call each.
	for _, o := range r.occurrences {
		if err := r.tx.AddOccurrence(ctx, r.tenantID(), r.caseID(o.caseID), r.actor(o.by)); err != nil {
			return fmt.Errorf("count occurrence: %w", err)
		}
	}
	for _, addr := range r.bouncing {
		if err := r.tx.MarkBouncing(ctx, r.tenantID(), addr); err != nil && casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
			return fmt.Errorf("mark %s bouncing: %w", addr, err)
		}
	}
	return nil
}

// writeContacts upserts the contacts the batch names, in one call; a known
// contact with a name is only read.
func (r *batchRun) writeContacts(ctx context.Context) error {
	r.contactOf = make(map[string]*casedesk.Contact, len(r.contactOrder))
	if len(r.contactOrder) == 0 {
		return nil
	}
	addrs := make([]casedesk.Address, len(r.contactOrder))
	for i, key := range r.contactOrder {
		addrs[i] = casedesk.Address{Email: key, Name: r.contacts[key]}
	}
	contacts, err := r.tx.UpsertContacts(ctx, r.tenantID(), addrs)
	if err != nil {
		return fmt.Errorf("contacts: %w", err)
	}
	for i, c := range contacts {
		r.contactOf[r.contactOrder[i]] = c
	}
	return nil
}

// createCases creates the batch's new cases in one call, numbered in the
// order their messages came.
func (r *batchRun) createCases(ctx context.Context) error {
	r.created = make(map[int64]*casedesk.Case, len(r.newCases))
	if len(r.newCases) == 0 {
		return nil
	}
	ns := make([]casedesk.NewCase, len(r.newCases))
	for i, pc := range r.newCases {
		ns[i] = pc.nc
		ns[i].RequesterID = r.contactOf[pc.requester].ID
	}
	cases, err := r.tx.CreateCases(ctx, ns)
	if err != nil {
		return fmt.Errorf("create cases: %w", err)
	}
	for i, c := range cases {
		r.created[r.newCases[i].tempID] = c
	}
	return nil
}

// appendMessages appends, in one call, the batch's messages on new cases
// (onNew) or on existing ones. A message reported as stored already means
// another transaction got there first: the whole batch is decided again.
func (r *batchRun) appendMessages(ctx context.Context, onNew bool) error {
	var nms []casedesk.NewMessage
	var idx []int
	for i, pm := range r.pending {
		if pm.nm.CaseID < 0 != onNew {
			continue
		}
		nm := pm.nm
		nm.CaseID = r.caseID(nm.CaseID)
		if pm.contact != "" {
			nm.ContactID = r.contactOf[pm.contact].ID
		}
		nms, idx = append(nms, nm), append(idx, i)
	}
	if len(nms) == 0 {
		return nil
	}
	appended, err := r.tx.AppendMessages(ctx, nms)
	if err != nil {
		return fmt.Errorf("append messages: %w", err)
	}
	var raced []uint32
	for k, a := range appended {
		if a.Duplicate {
			raced = append(raced, r.pending[idx[k]].it.f.UID)
		}
		r.appended[idx[k]] = a
	}
	if len(raced) > 0 {
		return &retryError{uids: raced, reason: fmt.Sprintf("%d message(s) of the batch were stored concurrently", len(raced))}
	}
	return nil
}

// writeOutbox queues the mail the batch's messages cause (acknowledgements,
// relays) in one call.
func (r *batchRun) writeOutbox(ctx context.Context) error {
	var items []casedesk.NewOutboxItem
	for i, pm := range r.pending {
		if pm.outbox == nil {
			continue
		}
		item, err := pm.outbox(r.appended[i].Message)
		if err != nil {
			return &MessageError{UID: pm.it.f.UID, Err: err}
		}
		if item != nil {
			items = append(items, *item)
		}
	}
	if len(items) == 0 {
		return nil
	}
	if _, err := r.tx.EnqueueOutboxItems(ctx, items); err != nil {
		return fmt.Errorf("enqueue outbox: %w", err)
	}
	r.queued = make(map[casedesk.OutboxKind]int)
	for _, it := range items {
		r.queued[it.Kind]++
	}
	return nil
}

// caseID is the stored ID of a case, the created one for a temporary ID.
func (r *batchRun) caseID(id int64) int64 {
	if id < 0 {
		return r.created[id].ID
	}
	return id
}

// caseByID is a case as stored, or as created by the batch.
func (r *batchRun) caseByID(id int64) *casedesk.Case {
	if id < 0 {
		return r.created[id]
	}
	return r.byID[id]
}

// actor is an event's actor with its contact's ID.
func (r *batchRun) actor(a actorRef) casedesk.Actor {
	out := casedesk.Actor{Kind: a.kind, UserID: a.userID}
	if a.contact != "" {
		out.ContactID = r.contactOf[a.contact].ID
	}
	return out
}
