package notify

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/microcosm-cc/bluemonday"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/templates"
	"github.com/casedesk/casedesk/threading"
)

// htmlPolicy cleans agents' HTML replies: formatting, links and images
// stay; scripts, styles that can hide or overlay text, forms and event
// handlers go. A bluemonday policy is safe for concurrent use.
var htmlPolicy = bluemonday.UGCPolicy()

// payload is the union of the template data outbox rows carry, as ingest,
// the admin API and the jobs write it. Unknown fields are ignored.
type payload struct {
	CaseNumber int64  `json:"case_number"`
	Subject    string `json:"subject"`
	// Acknowledgements answer the customer's message.
	InReplyTo  string   `json:"in_reply_to"`
	References []string `json:"references"`
	FollowUpOf int64    `json:"follow_up_of"`
	// Relays: the agent's stored mail (MessageID, the database ID), or
	// Text written through the API; the participants in copy.
	MessageID    int64    `json:"message_id"`
	Text         string   `json:"text"`
	HTML         string   `json:"html"` // with Text, from the admin API; sanitised here
	Cc           []string `json:"cc"`
	StripCommand bool     `json:"strip_command"`
	AgentUserID  int64    `json:"agent_user_id"`
	// Reminders and notices; the tenant's settings when absent.
	SolveInDays *int `json:"solve_in_days"`
	ReopenDays  *int `json:"reopen_days"`
	// Invoices.
	InvoiceNumber string    `json:"invoice_number"`
	AccountName   string    `json:"account_name"`
	RecipientName string    `json:"recipient_name"`
	PeriodStart   time.Time `json:"period_start"`
	PeriodEnd     time.Time `json:"period_end"`
	DueDate       time.Time `json:"due_date"`
	AmountMinor   int64     `json:"amount_minor"`
	Currency      string    `json:"currency"`
	Overdue       bool      `json:"overdue"` // the mail is a reminder
	// Attachments are stored blobs of the tenant, sent with the mail.
	Attachments []payloadAttachment `json:"attachments"`
}

// payloadAttachment names a stored blob by its sha256 (hex).
type payloadAttachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	SHA256      string `json:"sha256"`
}

// tenantBatch is what the worker reads about one tenant's items before it
// composes them: everything in a constant number of round trips.
type tenantBatch struct {
	tenant   *casedesk.Tenant
	tokens   threading.Tokens
	set      *templates.Set
	cases    map[int64]*casedesk.Case
	threads  map[int64][]string
	sources  map[int64]*casedesk.Message // relayed agent mail by ID
	users    map[int64]*casedesk.User
	contacts map[string]*casedesk.Contact // by lower-cased email
	blobs    map[string][]byte            // attachment contents by hex sha256
}

// job is one claimed item on its way out: the message to send and the
// record to keep of it, or the reason it can never be sent.
type job struct {
	item    *casedesk.OutboxItem
	out     Outgoing
	payload payload
	stored  *casedesk.NewMessage // the sent mail as kept on the case; nil without a case
	err     error                // permanent: the item is failed without sending
	sandbox bool                 // the item is a sandbox tenant's: see WorkerOptions.SandboxMailer
}

// load reads what composing the items of one tenant needs.
func (w *Worker) load(ctx context.Context, tx casedesk.Tx, tenantID int64, jobs []*job) (*tenantBatch, error) {
	tenant, err := tx.FindTenant(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("load tenant %d: %w", tenantID, err)
	}
	b := &tenantBatch{tenant: tenant, tokens: threading.NewTokens(tenant.ID, tenant.TokenSecret)}
	if b.set, err = w.templateSet(ctx, tx, tenantID); err != nil {
		return nil, err
	}
	var caseIDs, sourceIDs, userIDs []int64
	emails := map[string]bool{}
	var sums [][]byte
	for _, j := range jobs {
		if j.err != nil {
			continue
		}
		if j.item.CaseID != 0 {
			caseIDs = append(caseIDs, j.item.CaseID)
		}
		p := j.payload
		if p.MessageID != 0 {
			sourceIDs = append(sourceIDs, p.MessageID)
		}
		if p.AgentUserID != 0 {
			userIDs = append(userIDs, p.AgentUserID)
		}
		emails[strings.ToLower(j.item.To)] = true
		for _, cc := range p.Cc {
			emails[strings.ToLower(cc)] = true
		}
		for _, a := range p.Attachments {
			if sum, err := hex.DecodeString(a.SHA256); err == nil && len(sum) == 32 {
				sums = append(sums, sum)
			}
		}
	}
	cases, err := tx.FindCasesByIDs(ctx, tenantID, caseIDs)
	if err != nil {
		return nil, fmt.Errorf("load cases: %w", err)
	}
	b.cases = make(map[int64]*casedesk.Case, len(cases))
	for _, c := range cases {
		b.cases[c.ID] = c
	}
	if b.threads, err = tx.ThreadMessageIDs(ctx, tenantID, caseIDs, maxReferences); err != nil {
		return nil, fmt.Errorf("load threads: %w", err)
	}
	sources, err := tx.FindMessagesByIDs(ctx, tenantID, sourceIDs)
	if err != nil {
		return nil, fmt.Errorf("load relayed mail: %w", err)
	}
	b.sources = make(map[int64]*casedesk.Message, len(sources))
	for _, m := range sources {
		b.sources[m.ID] = m
		userIDs = append(userIDs, m.UserID)
		for _, a := range m.Attachments {
			sums = append(sums, a.SHA256)
		}
	}
	if b.users, err = tx.FindUsersByIDs(ctx, tenantID, userIDs); err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	addrs := make([]string, 0, len(emails))
	for e := range emails {
		addrs = append(addrs, e)
	}
	contacts, err := tx.FindContactsByEmails(ctx, tenantID, addrs)
	if err != nil {
		return nil, fmt.Errorf("load contacts: %w", err)
	}
	b.contacts = make(map[string]*casedesk.Contact, len(contacts))
	for _, c := range contacts {
		b.contacts[strings.ToLower(c.Email)] = c
	}
	b.blobs = map[string][]byte{}
	for _, sum := range sums {
		key := hex.EncodeToString(sum)
		if _, ok := b.blobs[key]; ok {
			continue
		}
		content, err := tx.AttachmentContent(ctx, tenantID, sum)
		if err != nil && casedesk.ErrorCode(err) != casedesk.ENOTFOUND {
			return nil, fmt.Errorf("load attachment: %w", err)
		}
		b.blobs[key] = content // nil: missing, which compose reports
	}
	return b, nil
}

// compose renders and addresses one item, and prepares the record of it
// for the case. A problem that sending again cannot fix sets j.err.
func (w *Worker) compose(b *tenantBatch, j *job, now time.Time) {
	it, p, t := j.item, j.payload, b.tenant
	var c *casedesk.Case
	if it.CaseID != 0 {
		if c = b.cases[it.CaseID]; c == nil {
			j.err = casedesk.Errorf(casedesk.ENOTFOUND, "case %d of outbox item %d not found", it.CaseID, it.ID)
			return
		}
	}
	o := Outgoing{
		From:      casedesk.Address{Name: t.Name, Email: t.SupportAddress},
		To:        []casedesk.Address{b.address(it.To)},
		MessageID: it.MessageID,
		Date:      now,
		Loop:      w.opts.Loop,
		TagPrefix: t.Settings.TagPrefix(),
	}
	for _, cc := range p.Cc {
		if casedesk.ValidEmail(cc) && !strings.EqualFold(cc, it.To) {
			o.Cc = append(o.Cc, b.address(cc))
		}
	}
	var data any
	author, userID := casedesk.AuthorSystem, int64(0)
	if c != nil {
		o.CaseNumber = c.Number
		o.ReplyTo = b.tokens.ReplyAddress(t.SupportAddress, c.Number)
		o.References = b.threads[c.ID]
		if n := len(o.References); n > 0 {
			o.InReplyTo = o.References[n-1]
		}
	}
	cd := b.caseData(c, it.To)
	switch it.Kind {
	case casedesk.OutboxAck, casedesk.OutboxFollowUpAck:
		// The acknowledgement answers the customer's message in the
		// customer's own thread.
		o.Auto, o.InReplyTo, o.References = AutoReplied, p.InReplyTo, p.References
		if it.Kind == casedesk.OutboxAck {
			data = templates.AckData{Case: cd}
		} else {
			data = templates.FollowUpAckData{Case: cd, PreviousCaseNumber: p.FollowUpOf}
		}
	case casedesk.OutboxRelay:
		text, agent, err := b.relayText(p)
		if err != nil {
			j.err = err
			return
		}
		if agent != nil {
			author, userID = casedesk.AuthorAgent, agent.ID
			if agent.Name != "" {
				o.From.Name = agent.Name + " via " + orDefault(t.Name, "Support")
			}
		}
		if src := b.sources[p.MessageID]; src != nil {
			// Answer the message the agent answered, when the customer has
			// seen it.
			for _, id := range o.References {
				if id == src.InReplyTo {
					o.InReplyTo = id
				}
			}
			for _, a := range src.Attachments {
				o.Attachments = append(o.Attachments, Attachment{Name: a.Name, ContentType: a.ContentType,
					Inline: a.Inline, ContentID: a.ContentID, Content: b.blobs[hex.EncodeToString(a.SHA256)]})
			}
		}
		rd := templates.RelayData{Case: cd, AgentName: agentName(agent), Text: text}
		if p.MessageID == 0 && strings.TrimSpace(p.HTML) != "" {
			// The one place an agent's HTML becomes trusted markup: after
			// the same sanitising policy ingest applies to customers' mail.
			rd.HTML = template.HTML(htmlPolicy.Sanitize(p.HTML))
		}
		data = rd
	case casedesk.OutboxReminder:
		o.Auto = AutoGenerated
		days := templates.Days(t.Settings.Solve() - t.Settings.Reminder())
		if p.SolveInDays != nil {
			days = *p.SolveInDays
		}
		data = templates.ReminderData{Case: cd, SolveInDays: days}
	case casedesk.OutboxSolved:
		o.Auto = AutoGenerated
		days := templates.Days(t.Settings.Close())
		if p.ReopenDays != nil {
			days = *p.ReopenDays
		}
		data = templates.SolvedNoticeData{Case: cd, ReopenDays: days}
	case casedesk.OutboxInvoice:
		o.Auto = AutoGenerated
		data = templates.InvoiceData{InvoiceNumber: p.InvoiceNumber, AccountName: p.AccountName,
			RecipientName: orDefault(p.RecipientName, o.To[0].Name), TenantName: t.Name,
			SupportAddress: t.SupportAddress, PeriodStart: p.PeriodStart, PeriodEnd: p.PeriodEnd,
			DueDate: p.DueDate, AmountMinor: p.AmountMinor, Currency: p.Currency, Overdue: p.Overdue}
	default:
		j.err = casedesk.Errorf(casedesk.EINVALID, "outbox item %d has unknown kind %q", it.ID, it.Kind)
		return
	}
	for _, a := range p.Attachments {
		content := b.blobs[strings.ToLower(a.SHA256)]
		if content == nil {
			j.err = casedesk.Errorf(casedesk.ENOTFOUND, "attachment %q (sha256 %.16s) of outbox item %d not found",
				a.Name, a.SHA256, it.ID)
			return
		}
		o.Attachments = append(o.Attachments, Attachment{Name: a.Name, ContentType: a.ContentType, Content: content})
	}
	for _, a := range o.Attachments {
		if a.Content == nil {
			j.err = casedesk.Errorf(casedesk.ENOTFOUND, "attachment %q of outbox item %d not found", a.Name, it.ID)
			return
		}
	}
	r, err := b.set.Render(it.Kind, t.Settings.Language, data)
	if err != nil {
		j.err = fmt.Errorf("render %s: %w", it.Kind, err)
		return
	}
	o.Subject, o.Text, o.HTML = r.Subject, r.Text, r.HTML
	j.out = o
	if c == nil {
		return
	}
	j.stored = &casedesk.NewMessage{TenantID: t.ID, CaseID: c.ID, MessageID: it.MessageID,
		Direction: casedesk.Outbound, AuthorKind: author, UserID: userID, From: o.From, To: o.To, Cc: o.Cc,
		Subject: TagSubject(o.Subject, o.TagPrefix, o.CaseNumber), Text: o.Text, HTML: o.HTML,
		Class: string(it.Kind), CustomerVisible: author == casedesk.AuthorAgent}
	for _, a := range o.Attachments {
		j.stored.Attachments = append(j.stored.Attachments, casedesk.NewAttachment{Name: a.Name,
			ContentType: a.ContentType, ContentID: a.ContentID, Inline: a.Inline, Content: a.Content})
	}
}

// address is a recipient with the name the tenant knows for it.
func (b *tenantBatch) address(email string) casedesk.Address {
	a := casedesk.Address{Email: strings.TrimSpace(email)}
	if c := b.contacts[strings.ToLower(a.Email)]; c != nil {
		a.Name = c.Name
	}
	return a
}

// caseData is the template data common to mail about a case; c may be
// nil (invoices).
func (b *tenantBatch) caseData(c *casedesk.Case, to string) templates.Case {
	cd := templates.Case{TenantName: b.tenant.Name, SupportAddress: b.tenant.SupportAddress,
		RequesterName: b.address(to).Name}
	if c != nil {
		cd.CaseNumber, cd.Subject = c.Number, c.Subject
		if cd.Subject == "(no subject)" {
			cd.Subject = ""
		}
	}
	return cd
}

// relayText returns the agent's reply and the agent: from the stored mail
// (its first line dropped when it is a command) or from the payload.
func (b *tenantBatch) relayText(p payload) (string, *casedesk.User, error) {
	agent := b.users[p.AgentUserID]
	if p.MessageID == 0 {
		if strings.TrimSpace(p.Text) == "" {
			return "", nil, casedesk.Errorf(casedesk.EINVALID, "relay without text")
		}
		return p.Text, agent, nil
	}
	src := b.sources[p.MessageID]
	if src == nil {
		return "", nil, casedesk.Errorf(casedesk.ENOTFOUND, "relayed message %d not found", p.MessageID)
	}
	if agent == nil {
		agent = b.users[src.UserID]
	}
	text := src.Text
	if p.StripCommand {
		text = stripCommand(text)
	}
	return text, agent, nil
}

// stripCommand removes the first non-empty line when it is an agent
// command ("#pending", "#solved"), and the blank lines after it.
func stripCommand(text string) string {
	rest := text
	for rest != "" {
		line, after, _ := strings.Cut(rest, "\n")
		if strings.TrimSpace(line) == "" {
			rest = after
			continue
		}
		if threading.Command(line) == "" {
			return text
		}
		return strings.TrimLeft(after, "\r\n")
	}
	return text
}

func agentName(u *casedesk.User) string {
	if u == nil {
		return ""
	}
	return u.Name
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// decodePayload reads an item's payload; a payload that is not an object
// of the expected fields makes the item fail for good.
func decodePayload(it *casedesk.OutboxItem) (payload, error) {
	var p payload
	if len(it.Payload) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(it.Payload, &p); err != nil {
		return p, casedesk.Errorf(casedesk.EINVALID, "outbox item %d payload: %v", it.ID, err)
	}
	return p, nil
}
