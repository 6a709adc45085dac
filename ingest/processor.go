package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// ProcessorOptions configure a StoreProcessor.
type ProcessorOptions struct {
	// Parser parses raw mail; NewParser(0) when nil.
	Parser *Parser
	// Classifier holds the rules shared by all tenants; each tenant's
	// support address is added to SupportAddresses.
	Classifier ClassifierConfig
	// TenantTTL is how long tenant settings are cached (default 1 minute).
	TenantTTL time.Duration
	Logger    *slog.Logger
	// OnCommit, when set, is called after each committed batch with what
	// it wrote (for metrics, and to wake an outbox worker).
	OnCommit func(BatchCounts)
}

// BatchCounts is what one committed batch wrote.
type BatchCounts struct {
	TenantID int64
	Messages int // messages of the batch, duplicates included
	Cases    int // cases created
	// Queued counts the outbox items queued, by kind.
	Queued map[casedesk.OutboxKind]int
}

// StoreProcessor is the Processor of casedesk: it parses and classifies a
// batch of mail, looks up what threading needs, lets threading.Decide, and
// writes everything of the batch (messages, cases, contacts, events,
// outbox rows) in one transaction.
type StoreProcessor struct {
	store  casedesk.Store
	parser *Parser
	opts   ProcessorOptions
	log    *slog.Logger

	mu      sync.Mutex
	tenants map[int64]*tenantInfo

	stats stageTimes
}

// ProcessorStats are cumulative processing times by stage.
type ProcessorStats struct {
	Messages int64
	// Parse is MIME parsing and classification (on all cores, so wall time).
	Parse time.Duration
	// Lookup is the batched lookups before deciding.
	Lookup time.Duration
	// Write is deciding the messages and writing contacts, cases,
	// participants, status changes, events and outbox rows.
	Write time.Duration
	// Append is the one AppendMessages call per batch.
	Append time.Duration
	// Commit is the rest of the transaction: BEGIN, COMMIT and retries.
	Commit time.Duration
}

type stageTimes struct {
	messages                                      atomic.Int64
	parse, lookup, write, appendMsgs, transaction atomic.Int64
}

// Stats returns the processing times so far.
func (p *StoreProcessor) Stats() ProcessorStats {
	s := &p.stats
	inTx := time.Duration(s.lookup.Load() + s.write.Load() + s.appendMsgs.Load())
	return ProcessorStats{Messages: s.messages.Load(), Parse: time.Duration(s.parse.Load()),
		Lookup: time.Duration(s.lookup.Load()), Write: time.Duration(s.write.Load()),
		Append: time.Duration(s.appendMsgs.Load()), Commit: time.Duration(s.transaction.Load()) - inTx}
}

var _ Processor = (*StoreProcessor)(nil)

// tenantInfo is what processing needs of a tenant, cached.
type tenantInfo struct {
	tenant     *casedesk.Tenant
	tokens     threading.Tokens
	classifier *Classifier
	ours       []string
	loaded     time.Time
}

// NewStoreProcessor returns the processor writing into store.
func NewStoreProcessor(store casedesk.Store, opts ProcessorOptions) *StoreProcessor {
	if opts.Parser == nil {
		opts.Parser = NewParser(0)
	}
	if opts.TenantTTL <= 0 {
		opts.TenantTTL = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &StoreProcessor{store: store, parser: opts.Parser, opts: opts, log: opts.Logger,
		tenants: map[int64]*tenantInfo{}}
}

// Process implements Processor.
func (p *StoreProcessor) Process(ctx context.Context, batch []*Fetched) (err error) {
	if len(batch) == 0 {
		return nil
	}
	ti, err := p.tenant(ctx, batch[0].TenantID)
	if err != nil {
		return err
	}
	start := time.Now()
	items, err := p.parseAll(ti, batch)
	if err != nil {
		return err
	}
	p.stats.parse.Add(int64(time.Since(start)))
	start = time.Now()
	defer func() {
		p.stats.transaction.Add(int64(time.Since(start)))
		if err == nil {
			p.stats.messages.Add(int64(len(batch)))
		}
	}()
	// Another transaction (another mailbox of the tenant, an agent in the
	// admin API) may store one of these messages or change the status of
	// one of their cases after this one looked: the batch is then decided
	// again from fresh lookups, knowing which messages are stored.
	known := map[uint32]bool{}
	for attempt := 0; ; attempt++ {
		var run *batchRun
		err = p.store.Update(ctx, func(tx casedesk.Tx) error {
			run = newBatchRun(p, ti, tx, known)
			return run.apply(ctx, items)
		})
		if err == nil && p.opts.OnCommit != nil {
			p.opts.OnCommit(BatchCounts{TenantID: ti.tenant.ID, Messages: len(batch),
				Cases: len(run.created), Queued: run.queued})
		}
		var retry *retryError
		if !errors.As(err, &retry) || attempt == 3 {
			return err
		}
		for _, uid := range retry.uids {
			known[uid] = true
		}
	}
}

// item is one message of a batch, parsed and classified.
type item struct {
	f     *Fetched
	m     *Message
	class Classification
	cand  candidates
}

// candidates are the case numbers a message itself names, worked out once
// when it is parsed (each token check is an HMAC).
type candidates struct {
	tokens  []int64 // tokens in In-Reply-To and References, most relevant first
	address []int64 // plus-addresses among To, Cc and Delivered-To
	tag     int64   // the subject tag; 0 if none
	bounce  int64   // our token in the Message-ID a bounce reports on; 0 if none
}

func (c candidates) all() []int64 {
	return append(append(append([]int64{}, c.tokens...), c.address...), c.tag, c.bounce)
}

// candidatesOf finds the case numbers that m's tokens and tag name.
func (ti *tenantInfo) candidatesOf(m *Message) candidates {
	c := candidates{tokens: ti.tokens.CasesInReferences(first(m.InReplyTo), m.References)}
	for _, a := range append(emails(m.To, m.Cc), m.DeliveredTo...) {
		if n, ok := ti.tokens.CaseFromAddress(a); ok {
			c.address = append(c.address, n)
		}
	}
	c.tag, _ = threading.FindTag(m.Subject, ti.tenant.Settings.TagPrefix())
	if m.Delivery != nil {
		c.bounce, _ = ti.tokens.CaseFromMessageID(m.Delivery.OriginalMessageID)
	}
	return c
}

// parseAll parses and classifies the batch on every core. The first
// message that cannot be parsed is named in a MessageError, so the poller
// quarantines it and hands over the rest again.
func (p *StoreProcessor) parseAll(ti *tenantInfo, batch []*Fetched) ([]item, error) {
	items := make([]item, len(batch))
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(batch)) {
		wg.Go(func() {
			for i := range next {
				m, err := p.parser.Parse(batch[i].Raw)
				if err != nil {
					errs[i] = err
					continue
				}
				items[i] = item{f: batch[i], m: m, class: ti.classifier.Classify(m), cand: ti.candidatesOf(m)}
			}
		})
	}
	for i := range batch {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, &MessageError{UID: batch[i].UID, Err: err}
		}
	}
	return items, nil
}

// tenant returns the tenant's settings, cached for TenantTTL.
func (p *StoreProcessor) tenant(ctx context.Context, id int64) (*tenantInfo, error) {
	p.mu.Lock()
	ti := p.tenants[id]
	p.mu.Unlock()
	if ti != nil && time.Since(ti.loaded) < p.opts.TenantTTL {
		return ti, nil
	}
	var t *casedesk.Tenant
	err := p.store.View(ctx, func(tx casedesk.Tx) (err error) {
		t, err = tx.FindTenant(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load tenant %d: %w", id, err)
	}
	cfg := p.opts.Classifier
	ours := append([]string{t.SupportAddress}, cfg.SupportAddresses...)
	cfg.SupportAddresses = ours
	ti = &tenantInfo{tenant: t, tokens: threading.NewTokens(t.ID, t.TokenSecret), classifier: NewClassifier(cfg),
		ours: ours, loaded: time.Now()}
	p.mu.Lock()
	p.tenants[id] = ti
	p.mu.Unlock()
	return ti, nil
}

// outboundMessageID makes the Message-ID of an outbox item on a case: our
// token plus a random sequence, in the support address's domain.
func outboundMessageID(ti *tenantInfo, caseNumber int64) string {
	return ti.tokens.MessageID(caseNumber, casedesk.OutboundSeq(), casedesk.MessageIDDomain(ti.tenant.SupportAddress))
}

// threadingKind maps a classification onto threading's kinds.
func threadingKind(c Class) threading.Kind {
	switch c {
	case ClassAutoReply:
		return threading.KindAutoReply
	case ClassBounce:
		return threading.KindBounce
	case ClassBulk:
		return threading.KindBulk
	case ClassLoop:
		return threading.KindLoop
	case ClassErrorReport:
		return threading.KindErrorReport
	}
	return threading.KindNormal
}

// firstLine is the first non-empty line of a text body.
func firstLine(text string) string {
	for line := range strings.Lines(text) {
		if l := strings.TrimSpace(line); l != "" {
			return l
		}
	}
	return ""
}

// emails returns the lower-cased addresses of a list.
func emails(lists ...[]casedesk.Address) []string {
	var out []string
	for _, l := range lists {
		for _, a := range l {
			if e := strings.ToLower(strings.TrimSpace(a.Email)); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// Reprocess runs raw mail (a quarantined message being retried) through
// the processor again, as if it had just been fetched from mailbox. It
// implements the admin API's Reprocessor.
func (p *StoreProcessor) Reprocess(ctx context.Context, tenantID int64, mailbox string, raw []byte) error {
	err := p.Process(ctx, []*Fetched{{TenantID: tenantID, Mailbox: mailbox, Raw: raw,
		Size: int64(len(raw)), InternalDate: time.Now()}})
	var me *MessageError
	if errors.As(err, &me) {
		return me.Err
	}
	return err
}
