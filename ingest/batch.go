package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// batchRun is one attempt at storing a batch, inside one transaction. It
// works in three steps, each a constant number of round trips however
// large the batch:
//
//  1. preload: look up the stored messages, cases, participants, agents and
//     acknowledgement counts that the batch's messages need;
//  2. decide: threading.Decide each message in order, in memory, keeping
//     what earlier messages of the batch did (a case they opened, a status
//     they changed) visible to later ones, and collecting the writes;
//  3. write: contacts, cases, participants, status changes, events,
//     messages and outbox rows, one set-based statement each.
//
// Cases opened in the batch have negative, temporary IDs until step 3
// creates them; contacts are named by address until step 3 upserts them.
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
	byID     map[int64]*casedesk.Case // with the batch's new cases under temporary IDs
	parties  map[int64]casedesk.CaseParties
	agents   map[string]*casedesk.User // sender -> agent; missing if none
	acks     map[string]int            // address -> acknowledgements in the last hour
	errCases map[string]*casedesk.Case // fingerprint -> open error case, nil if none
	inBatch  map[string]int64          // Message-ID -> case, for mail earlier in the batch

	plan
}

// plan is what deciding the batch's messages asks to write.
type plan struct {
	contacts     map[string]string // lower-cased address -> display name, to upsert
	contactOrder []string
	newCases     []*plannedCase
	participants []plannedParticipant
	changes      []plannedChange
	events       []plannedEvent
	occurrences  []plannedEvent // the event's kind is unused
	bouncing     []string
	pending      []pendingMessage

	// Filled by the write step.
	contactOf map[string]*casedesk.Contact // lower-cased address -> stored contact
	created   map[int64]*casedesk.Case     // temporary ID -> created case
	appended  []casedesk.Appended          // the pending messages as appended
	queued    map[casedesk.OutboxKind]int  // outbox items written, by kind
}

// actorRef is an event's actor before its contact has an ID.
type actorRef struct {
	kind    casedesk.AuthorKind
	userID  int64
	contact string // lower-cased address
}

type plannedCase struct {
	tempID    int64
	nc        casedesk.NewCase
	requester string
}

type plannedParticipant struct {
	caseID  int64
	contact string
}

type plannedChange struct {
	caseID   int64
	from, to casedesk.Status
	by       actorRef
}

type plannedEvent struct {
	caseID int64
	kind   string
	by     actorRef
	data   json.RawMessage
}

// pendingMessage is a message decided and waiting to be appended, with the
// outbox rows that go with it.
type pendingMessage struct {
	it      item
	nm      casedesk.NewMessage
	contact string // lower-cased address of the contact it is from; "" for none
	// outbox builds the mail the message causes once the case and the
	// message are stored.
	outbox func(stored *casedesk.Message) (*casedesk.NewOutboxItem, error)
}

func newBatchRun(p *StoreProcessor, ti *tenantInfo, tx casedesk.Tx, known map[uint32]bool) *batchRun {
	return &batchRun{p: p, ti: ti, tx: tx, known: known,
		stored: map[string]bool{}, refs: map[string]casedesk.MessageRef{},
		byNumber: map[int64]*casedesk.Case{}, byID: map[int64]*casedesk.Case{}, parties: map[int64]casedesk.CaseParties{},
		agents: map[string]*casedesk.User{}, acks: map[string]int{}, errCases: map[string]*casedesk.Case{},
		inBatch: map[string]int64{},
		plan:    plan{contacts: map[string]string{}}}
}

func (r *batchRun) tenantID() int64 { return r.ti.tenant.ID }

// retryError means the batch met concurrent work: messages that turned out
// to be stored already when appended (another transaction stored them
// after this one looked), or a case whose status changed meanwhile. The
// batch is decided again from fresh lookups.
type retryError struct {
	uids   []uint32 // the messages found stored
	reason string
}

func (e *retryError) Error() string { return e.reason }

// apply stores the batch.
//
// Creating cases locks the tenant's case counter row until the transaction
// ends (numbers have no gaps), so every other transaction of the tenant
// that creates cases waits from then on. The writes that do not need the
// new cases therefore come first: contacts and the messages on cases that
// exist.
func (r *batchRun) apply(ctx context.Context, items []item) error {
	stats := &r.p.stats
	start := time.Now()
	if err := r.preload(ctx, items); err != nil {
		return err
	}
	stats.lookup.Add(int64(time.Since(start)))
	start = time.Now()
	for _, it := range items {
		if err := r.decide(ctx, it); err != nil {
			return &MessageError{UID: it.f.UID, Err: err}
		}
	}
	r.appended = make([]casedesk.Appended, len(r.pending))
	if err := r.writeContacts(ctx); err != nil {
		return err
	}
	stats.write.Add(int64(time.Since(start)))
	if err := r.timed(&stats.appendMsgs, func() error { return r.appendMessages(ctx, false) }); err != nil {
		return err
	}
	if err := r.timed(&stats.write, func() error { return r.writeCases(ctx) }); err != nil {
		return err
	}
	if err := r.timed(&stats.appendMsgs, func() error { return r.appendMessages(ctx, true) }); err != nil {
		return err
	}
	return r.timed(&stats.write, func() error { return r.writeOutbox(ctx) })
}

// timed runs fn and adds its duration to a stage's time.
func (r *batchRun) timed(stage *atomic.Int64, fn func() error) error {
	start := time.Now()
	err := fn()
	stage.Add(int64(time.Since(start)))
	return err
}

// preload looks up, in a few round trips, the stored messages and cases
// that the batch's messages refer to, whether their senders are agents, and
// how many acknowledgements the senders got in the last hour.
func (r *batchRun) preload(ctx context.Context, items []item) error {
	var ids, senders, ackable []string
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
		from := strings.ToLower(m.From.Email)
		senders = append(senders, from)
		if it.class.MayAutoReply {
			ackable = append(ackable, from, senderAddress(m).Email)
		}
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
	users, err := r.tx.FindUsersByEmails(ctx, r.tenantID(), dedupe(senders))
	if err != nil {
		return fmt.Errorf("look up agents: %w", err)
	}
	for addr, u := range users {
		if u.IsAgent() {
			r.agents[addr] = u
		}
	}
	if ackable = dedupe(ackable); len(ackable) > 0 {
		counts, err := r.tx.CountOutboxTo(ctx, r.tenantID(), []casedesk.OutboxKind{casedesk.OutboxAck, casedesk.OutboxFollowUpAck},
			ackable, r.tx.Now().Add(-time.Hour))
		if err != nil {
			return fmt.Errorf("count acknowledgements: %w", err)
		}
		for _, a := range ackable {
			r.acks[a] = counts[a]
		}
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
	targets, err := r.loadMergeTargets(ctx, all)
	if err != nil {
		return err
	}
	parties, err := r.tx.ParticipantEmails(ctx, r.tenantID(), dedupe(append(all, targets...)))
	if err != nil {
		return fmt.Errorf("look up participants: %w", err)
	}
	for id, p := range parties {
		r.parties[id] = p
	}
	return nil
}

// maxMergeHops bounds how far a chain of merged cases is followed. Merging
// keeps chains one step long, so this only guards against a loop.
const maxMergeHops = 10

// loadMergeTargets loads the cases that the loaded cases among ids were
// merged into, following chains of merges, and returns their IDs. Only
// batches that meet a merged case pay the extra round trips.
func (r *batchRun) loadMergeTargets(ctx context.Context, ids []int64) ([]int64, error) {
	var loaded []int64
	for hop := 0; hop < maxMergeHops; hop++ {
		var want []int64
		for _, id := range ids {
			if c := r.byID[id]; c != nil && c.MergedInto != 0 && r.byID[c.MergedInto] == nil {
				want = append(want, c.MergedInto)
			}
		}
		if want = dedupe(want); len(want) == 0 {
			break
		}
		cs, err := r.tx.FindCasesByIDs(ctx, r.tenantID(), want)
		if err != nil {
			return nil, fmt.Errorf("look up merged cases: %w", err)
		}
		for _, c := range cs {
			r.byNumber[c.Number], r.byID[c.ID] = c, c
		}
		loaded = append(loaded, want...)
		ids = want
	}
	return loaded, nil
}

// live is the case that mail for c goes to now: c, or the case it was
// merged into.
func (r *batchRun) live(c *casedesk.Case) *casedesk.Case {
	for hop := 0; hop < maxMergeHops && c.MergedInto != 0; hop++ {
		next := r.byID[c.MergedInto]
		if next == nil {
			break
		}
		c = next
	}
	return c
}

// decide decides one message and plans its writes.
func (r *batchRun) decide(ctx context.Context, it item) error {
	tm := r.threadingMessage(it)
	f, err := r.facts(ctx, it, tm)
	if err != nil {
		return err
	}
	d := threading.Decide(tm, f)
	log := r.p.log.With("tenant_id", r.tenantID(), "uid", it.f.UID, "message_id", it.m.MessageID)
	switch d.Action {
	case threading.ActionDuplicate:
		log.Debug("duplicate message")
		return nil
	case threading.ActionIgnore:
		log.Info("message ignored", "rule", d.Rule, "reason", d.Reason, "class_reason", it.class.Reason)
		return nil
	case threading.ActionBounce:
		r.bounce(it, d)
		return nil
	case threading.ActionNewCase:
		r.newCase(it, tm, d)
		return nil
	}
	r.appendTo(it, d)
	return nil
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
	f := threading.Facts{OurAddresses: r.ti.ours, AckLimit: r.ti.tenant.Settings.AckLimit(), AcksSent: r.acks[tm.From]}
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
	f.SenderIsAgent = r.agents[tm.From] != nil
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

// threadingCase is what threading knows of the case that mail found for c
// goes to: c itself, or the case it was merged into, so that every rule
// (tokens, references, address, tag, bounces) follows a merge.
func (r *batchRun) threadingCase(c *casedesk.Case) *threading.Case {
	c = r.live(c)
	p := r.parties[c.ID]
	return &threading.Case{ID: c.ID, Number: c.Number, Status: c.Status, Participants: p.Emails, AccountDomains: p.AccountDomains}
}

// errorCase is the open case of an error fingerprint, looked up once per
// batch (error reports are rare, so not preloaded).
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
		if known := r.byID[c.ID]; known != nil {
			c = known // the batch may have changed it already
		} else if err := r.remember(ctx, c); err != nil {
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

// queue records a message for the batch's append.
func (r *batchRun) queue(it item, caseID int64, d threading.Decision, author casedesk.AuthorKind, contact string, userID int64,
	outbox func(*casedesk.Message) (*casedesk.NewOutboxItem, error)) {
	m := it.m
	nm := casedesk.NewMessage{TenantID: r.tenantID(), CaseID: caseID, MessageID: m.MessageID, InReplyTo: first(m.InReplyTo),
		References: m.References, Direction: d.Direction, AuthorKind: author, UserID: userID,
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
	r.pending = append(r.pending, pendingMessage{it: it, nm: nm, contact: contact, outbox: outbox})
}

// contact plans the contact of an address and returns the address as the
// key it goes by until written. A name fills an empty one.
func (r *batchRun) contact(addr casedesk.Address) string {
	key := strings.ToLower(addr.Email)
	name, seen := r.contacts[key]
	if !seen {
		r.contactOrder = append(r.contactOrder, key)
	}
	if name == "" {
		r.contacts[key] = addr.Name
	}
	return key
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
