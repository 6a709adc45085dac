package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// batchRun is one attempt at storing a batch, inside one transaction. It
// looks up the facts of all messages at once, then decides and writes
// message by message, keeping what earlier messages of the batch did (a
// case they opened, a status they changed) visible to later ones.
type batchRun struct {
	p  *StoreProcessor
	ti *tenantInfo
	tx casedesk.Tx
	// known holds the UIDs found to be stored already on an earlier
	// attempt (mail without a Message-ID is only recognised on append).
	known map[uint32]bool

	stored   map[string]bool                // Message-IDs of the batch already stored
	refs     map[string]casedesk.MessageRef // referenced Message-IDs that are stored
	byNumber map[int64]*casedesk.Case
	byID     map[int64]*casedesk.Case
	parties  map[int64]casedesk.CaseParties
	agents   map[string]*casedesk.User    // sender -> agent, nil if none
	acks     map[string]int               // sender -> acknowledgements in the last hour
	errCases map[string]*casedesk.Case    // fingerprint -> open error case, nil if none
	contacts map[string]*casedesk.Contact // lower-cased email -> contact
	inBatch  map[string]int64             // Message-ID -> case, for mail earlier in the batch
	pending  []pendingMessage
}

// pendingMessage is a message decided and waiting to be appended, with
// what to do once it is stored.
type pendingMessage struct {
	it    item
	nm    casedesk.NewMessage
	after func(ctx context.Context, stored *casedesk.Message) error
}

func newBatchRun(p *StoreProcessor, ti *tenantInfo, tx casedesk.Tx, known map[uint32]bool) *batchRun {
	return &batchRun{p: p, ti: ti, tx: tx, known: known,
		stored: map[string]bool{}, refs: map[string]casedesk.MessageRef{},
		byNumber: map[int64]*casedesk.Case{}, byID: map[int64]*casedesk.Case{}, parties: map[int64]casedesk.CaseParties{},
		agents: map[string]*casedesk.User{}, acks: map[string]int{}, errCases: map[string]*casedesk.Case{},
		contacts: map[string]*casedesk.Contact{},
		inBatch:  map[string]int64{}}
}

func (r *batchRun) tenantID() int64 { return r.ti.tenant.ID }

// racedError names messages that turned out to be stored already when
// appended: another transaction stored them after this one looked.
type racedError struct{ uids []uint32 }

func (e *racedError) Error() string {
	return fmt.Sprintf("%d message(s) of the batch were stored concurrently", len(e.uids))
}

// apply stores the batch.
func (r *batchRun) apply(ctx context.Context, items []item) error {
	stats := &r.p.stats
	start := time.Now()
	if err := r.preload(ctx, items); err != nil {
		return err
	}
	stats.lookup.Add(int64(time.Since(start)))
	start = time.Now()
	for _, it := range items {
		if err := r.one(ctx, it); err != nil {
			return &MessageError{UID: it.f.UID, Err: err}
		}
	}
	stats.write.Add(int64(time.Since(start)))
	start = time.Now()
	defer func() { stats.appendMsgs.Add(int64(time.Since(start))) }()
	return r.flush(ctx)
}

// preload looks up, in a few round trips, the stored messages and cases
// that the batch's messages refer to.
func (r *batchRun) preload(ctx context.Context, items []item) error {
	var ids []string
	var numbers []int64
	for _, it := range items {
		m := it.m
		if m.MessageID != "" {
			ids = append(ids, m.MessageID)
		}
		ids = append(ids, threading.RefOrder(first(m.InReplyTo), m.References)...)
		if b := it.class.Bounce; b != nil && b.OriginalMessageID != "" {
			ids = append(ids, b.OriginalMessageID)
		}
		numbers = append(numbers, it.cand.all()...)
	}
	refs, err := r.tx.FindMessagesByMessageIDs(ctx, r.tenantID(), dedupe(ids))
	if err != nil {
		return fmt.Errorf("look up references: %w", err)
	}
	var caseIDs []int64
	for _, ref := range refs {
		r.refs[ref.MessageID] = ref
		caseIDs = append(caseIDs, ref.CaseID)
	}
	for _, it := range items {
		if r.refs[it.m.MessageID].ID != 0 {
			r.stored[it.m.MessageID] = true
		}
	}
	if err := r.loadCases(ctx, dedupe(numbers), dedupe(caseIDs)); err != nil {
		return err
	}
	return nil
}

func (r *batchRun) loadCases(ctx context.Context, numbers, ids []int64) error {
	byNumber, err := r.tx.FindCasesByNumbers(ctx, r.tenantID(), numbers)
	if err != nil {
		return fmt.Errorf("look up cases: %w", err)
	}
	byID, err := r.tx.FindCasesByIDs(ctx, r.tenantID(), ids)
	if err != nil {
		return fmt.Errorf("look up cases: %w", err)
	}
	var all []int64
	for _, c := range append(byNumber, byID...) {
		r.byNumber[c.Number], r.byID[c.ID] = c, c
		all = append(all, c.ID)
	}
	parties, err := r.tx.ParticipantEmails(ctx, r.tenantID(), dedupe(all))
	if err != nil {
		return fmt.Errorf("look up participants: %w", err)
	}
	for id, p := range parties {
		r.parties[id] = p
	}
	return nil
}

// one decides and writes one message.
func (r *batchRun) one(ctx context.Context, it item) error {
	tm := r.threadingMessage(it)
	f, err := r.facts(ctx, it, tm)
	if err != nil {
		return err
	}
	d := threading.Decide(tm, f)
	if d.Ack != "" {
		// Only now is the sender's acknowledgement count needed.
		if f.AcksSent, err = r.acksSent(ctx, tm.From); err != nil {
			return err
		}
		d = threading.Decide(tm, f)
	}
	log := r.p.log.With("tenant_id", r.tenantID(), "uid", it.f.UID, "message_id", it.m.MessageID)
	switch d.Action {
	case threading.ActionDuplicate:
		log.Debug("duplicate message")
		return nil
	case threading.ActionIgnore:
		log.Info("message ignored", "rule", d.Rule, "reason", d.Reason, "class_reason", it.class.Reason)
		return nil
	case threading.ActionBounce:
		return r.bounce(ctx, it, d)
	case threading.ActionNewCase:
		return r.newCase(ctx, it, tm, d)
	}
	return r.appendTo(ctx, it, d)
}

func (r *batchRun) threadingMessage(it item) threading.Message {
	m := it.m
	tm := threading.Message{MessageID: m.MessageID, InReplyTo: first(m.InReplyTo), References: m.References,
		From: strings.ToLower(m.From.Email), Recipients: emails(m.To, m.Cc), Subject: m.Subject,
		FirstLine: firstLine(m.Text), Kind: threadingKind(it.class.Class), MayAutoReply: it.class.MayAutoReply}
	if it.class.Report != nil {
		tm.Fingerprint = it.class.Report.Fingerprint
	}
	return tm
}

// facts answers threading's questions from the preloaded lookups and what
// the batch has done so far.
func (r *batchRun) facts(ctx context.Context, it item, tm threading.Message) (threading.Facts, error) {
	m := it.m
	f := threading.Facts{OurAddresses: r.ti.ours, AckLimit: r.ti.tenant.Settings.AckLimit()}
	_, earlier := r.inBatch[m.MessageID]
	f.Duplicate = r.known[it.f.UID] || m.MessageID != "" && (r.stored[m.MessageID] || earlier)
	if c := r.firstCase(it.cand.tokens); c != nil {
		f.TokenCase = r.threadingCase(c)
	}
	for _, id := range threading.RefOrder(tm.InReplyTo, tm.References) {
		if c := r.caseOfMessage(id); c != nil {
			f.ReferencedCase = r.threadingCase(c)
			break
		}
	}
	if c := r.firstCase(it.cand.address); c != nil {
		f.AddressCase = r.threadingCase(c)
	}
	if c := r.byNumber[it.cand.tag]; c != nil {
		f.TagCase = r.threadingCase(c)
	}
	if b := it.class.Bounce; b != nil {
		// Our own Message-ID names the case even before the sent mail is
		// stored; any other id must be a stored message.
		c := r.caseOfMessage(b.OriginalMessageID)
		if byToken := r.byNumber[it.cand.bounce]; byToken != nil {
			c = byToken
		}
		if c != nil {
			f.BouncedCase, f.BouncedAddress = r.threadingCase(c), b.Recipient
		}
	}
	var err error
	if f.SenderIsAgent, err = r.isAgent(ctx, tm.From); err != nil {
		return f, err
	}
	if tm.Kind == threading.KindErrorReport && tm.Fingerprint != "" {
		c, err := r.errorCase(ctx, tm.Fingerprint)
		if err != nil {
			return f, err
		}
		if c != nil {
			f.ErrorCase = r.threadingCase(c)
		}
	}
	return f, nil
}

// firstCase is the first existing case among numbers.
func (r *batchRun) firstCase(numbers []int64) *casedesk.Case {
	for _, n := range numbers {
		if c := r.byNumber[n]; c != nil {
			return c
		}
	}
	return nil
}

// caseOfMessage is the case of a Message-ID stored before or earlier in
// this batch.
func (r *batchRun) caseOfMessage(id string) *casedesk.Case {
	id = casedesk.NormalizeMessageID(id)
	if id == "" {
		return nil
	}
	if caseID, ok := r.inBatch[id]; ok {
		return r.byID[caseID]
	}
	if ref, ok := r.refs[id]; ok {
		return r.byID[ref.CaseID]
	}
	return nil
}

func (r *batchRun) threadingCase(c *casedesk.Case) *threading.Case {
	p := r.parties[c.ID]
	return &threading.Case{ID: c.ID, Number: c.Number, Status: c.Status, Participants: p.Emails, AccountDomains: p.AccountDomains}
}

func (r *batchRun) isAgent(ctx context.Context, from string) (bool, error) {
	if from == "" {
		return false, nil
	}
	u, seen := r.agents[from]
	if !seen {
		found, err := r.tx.FindUserByEmail(ctx, r.tenantID(), from)
		switch {
		case casedesk.ErrorCode(err) == casedesk.ENOTFOUND:
		case err != nil:
			return false, fmt.Errorf("look up agent: %w", err)
		case found.IsAgent():
			u = found
		}
		r.agents[from] = u
	}
	return u != nil, nil
}

func (r *batchRun) errorCase(ctx context.Context, fp string) (*casedesk.Case, error) {
	if c, seen := r.errCases[fp]; seen {
		return c, nil
	}
	c, err := r.tx.FindErrorCase(ctx, r.tenantID(), fp)
	switch {
	case casedesk.ErrorCode(err) == casedesk.ENOTFOUND:
		c = nil
	case err != nil:
		return nil, fmt.Errorf("look up error case: %w", err)
	default:
		if err := r.remember(ctx, c); err != nil {
			return nil, err
		}
	}
	r.errCases[fp] = c
	return c, nil
}

// remember adds a case found late to the lookups.
func (r *batchRun) remember(ctx context.Context, c *casedesk.Case) error {
	r.byID[c.ID], r.byNumber[c.Number] = c, c
	if _, ok := r.parties[c.ID]; ok {
		return nil
	}
	parties, err := r.tx.ParticipantEmails(ctx, r.tenantID(), []int64{c.ID})
	if err != nil {
		return fmt.Errorf("look up participants: %w", err)
	}
	r.parties[c.ID] = parties[c.ID]
	return nil
}

func (r *batchRun) acksSent(ctx context.Context, to string) (int, error) {
	if n, ok := r.acks[to]; ok {
		return n, nil
	}
	since := r.tx.Now().Add(-time.Hour)
	total := 0
	for _, kind := range []casedesk.OutboxKind{casedesk.OutboxAck, casedesk.OutboxFollowUpAck} {
		n, err := r.tx.CountOutbox(ctx, r.tenantID(), kind, to, since)
		if err != nil {
			return 0, fmt.Errorf("count acknowledgements: %w", err)
		}
		total += n
	}
	r.acks[to] = total
	return total, nil
}

// flush appends the batch's messages in one call and runs what waits on
// them. A message reported as stored already means another transaction
// got there first: the whole batch is decided again.
func (r *batchRun) flush(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
	}
	nms := make([]casedesk.NewMessage, len(r.pending))
	for i, pm := range r.pending {
		nms[i] = pm.nm
	}
	appended, err := r.tx.AppendMessages(ctx, nms)
	if err != nil {
		return fmt.Errorf("append messages: %w", err)
	}
	var raced []uint32
	for i, a := range appended {
		if a.Duplicate {
			raced = append(raced, r.pending[i].it.f.UID)
		}
	}
	if len(raced) > 0 {
		return &racedError{uids: raced}
	}
	for i, pm := range r.pending {
		if pm.after == nil {
			continue
		}
		if err := pm.after(ctx, appended[i].Message); err != nil {
			return &MessageError{UID: pm.it.f.UID, Err: err}
		}
	}
	return nil
}

// queue records a message for the batch's append.
func (r *batchRun) queue(it item, caseID int64, d threading.Decision, author casedesk.AuthorKind, contactID, userID int64,
	after func(context.Context, *casedesk.Message) error) {
	m := it.m
	nm := casedesk.NewMessage{TenantID: r.tenantID(), CaseID: caseID, MessageID: m.MessageID, InReplyTo: first(m.InReplyTo),
		References: m.References, Direction: d.Direction, AuthorKind: author, ContactID: contactID, UserID: userID,
		From: m.From, To: m.To, Cc: m.Cc, Subject: m.Subject, Text: m.Text, HTML: m.HTML, Class: string(it.class.Class),
		Mailbox: it.f.Mailbox, Raw: it.f.Raw, CustomerVisible: d.Relay && m.MessageID != ""}
	if nm.Direction == "" {
		nm.Direction = casedesk.Inbound
	}
	for _, a := range m.Attachments {
		nm.Attachments = append(nm.Attachments, casedesk.NewAttachment{Name: a.Name, ContentType: a.ContentType,
			ContentID: a.ContentID, Inline: a.Inline, Content: a.Content})
	}
	if m.MessageID != "" {
		r.inBatch[m.MessageID] = caseID
	}
	r.pending = append(r.pending, pendingMessage{it: it, nm: nm, after: after})
}

// contact returns the contact of an address, creating it if needed, once
// per batch: most of a batch's mail comes from few senders.
func (r *batchRun) contact(ctx context.Context, addr casedesk.Address) (*casedesk.Contact, error) {
	key := strings.ToLower(addr.Email)
	if c := r.contacts[key]; c != nil && (c.Name != "" || addr.Name == "") {
		return c, nil
	}
	c, err := r.tx.UpsertContact(ctx, r.tenantID(), addr)
	if err != nil {
		return nil, err
	}
	r.contacts[key] = c
	return c, nil
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// dedupe returns s without repeats or zero values, in first-seen order.
func dedupe[T comparable](s []T) []T {
	var zero T
	seen := make(map[T]bool, len(s))
	out := make([]T, 0, len(s))
	for _, v := range s {
		if v != zero && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// payload encodes template data for an outbox row.
func payload(v map[string]any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of plain values are passed
	}
	return b
}
