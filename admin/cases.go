package admin

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/inbucket/html2text"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/threading"
)

// Field limits of request bodies.
const (
	maxTextLen    = 100_000
	maxHTMLLen    = 500_000
	maxNameLen    = 200
	maxSubjectLen = 1000
)

type addressJSON struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

type refJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type caseJSON struct {
	Number       int64       `json:"number"`
	Subject      string      `json:"subject"`
	Status       string      `json:"status"`
	Priority     string      `json:"priority"`
	Category     string      `json:"category"`
	Requester    addressJSON `json:"requester"`
	Account      *refJSON    `json:"account"`
	Assignee     *refJSON    `json:"assignee"`
	MessageCount int         `json:"message_count"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
}

type caseDetailJSON struct {
	caseJSON
	Participants []contactJSON  `json:"participants"`
	Fields       map[string]any `json:"fields"`
	Events       []eventJSON    `json:"events"`
	MergedInto   *int64         `json:"merged_into"`
	FollowUpOf   *int64         `json:"follow_up_of"`
}

type eventJSON struct {
	ID        int64           `json:"id"`
	Kind      string          `json:"kind"`
	Actor     casedesk.Actor  `json:"actor"`
	Data      json.RawMessage `json:"data"`
	CreatedAt time.Time       `json:"created_at"`
}

func caseOut(c *casedesk.Case) caseJSON {
	out := caseJSON{Number: c.Number, Subject: c.Subject, Status: string(c.Status), Priority: string(c.Priority),
		Category: c.Category, MessageCount: c.MessageCount, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if c.Requester != nil {
		out.Requester = addressJSON{Email: c.Requester.Email, Name: c.Requester.Name}
	}
	if c.AccountID != 0 {
		out.Account = &refJSON{ID: c.AccountID, Name: c.AccountName}
	}
	if c.AssigneeID != 0 {
		out.Assignee = &refJSON{ID: c.AssigneeID, Name: c.AssigneeName}
	}
	return out
}

// listCases: GET /v1/cases with filters, full-text q, sort and cursor.
func (s *Server) listCases(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	q := r.URL.Query()
	f := casedesk.CaseFilter{Priority: casedesk.Priority(q.Get("priority")), Category: q.Get("category"),
		RequesterEmail: q.Get("requester_email"), Requester: q.Get("requester"), Account: q.Get("account"),
		Q: q.Get("q"), Sort: q.Get("sort"), Cursor: q.Get("cursor"),
		WithoutNotes: ownOnly(p)} // notes are for staff, their words too
	for _, st := range strings.Split(q.Get("status"), ",") {
		if st = strings.TrimSpace(st); st != "" {
			if !casedesk.Status(st).Valid() {
				return casedesk.Errorf(casedesk.EINVALID, "query parameter \"status\": unknown status %q", st)
			}
			f.Statuses = append(f.Statuses, casedesk.Status(st))
		}
	}
	if f.Priority != "" && !f.Priority.Valid() {
		return casedesk.Errorf(casedesk.EINVALID, "query parameter \"priority\": unknown priority %q", f.Priority)
	}
	var err error
	if f.AssigneeID, err = queryInt(r, "assignee"); err != nil {
		return err
	}
	if f.AccountID, err = queryInt(r, "account_id"); err != nil {
		return err
	}
	if f.Limit, err = limitOf(r); err != nil {
		return err
	}
	if err := firstErr(queryTime(r, "created_from", &f.CreatedFrom), queryTime(r, "created_to", &f.CreatedTo)); err != nil {
		return err
	}
	for _, t := range []struct{ name, v string }{{"q", f.Q}, {"requester", f.Requester}, {"account", f.Account},
		{"requester_email", f.RequesterEmail}, {"category", f.Category}} {
		if len(t.v) > 500 {
			return casedesk.Errorf(casedesk.EINVALID, "query parameter %q is longer than 500 bytes", t.name)
		}
	}
	var page *casedesk.CasePage
	err = s.store.View(r.Context(), func(tx casedesk.Tx) error {
		if ownOnly(p) {
			if err := s.narrowToOwn(r, tx, p, &f); err != nil {
				return err
			}
		}
		var err error
		page, err = tx.ListCases(r.Context(), p.Tenant.ID, f)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Cases      []caseJSON `json:"cases"`
		NextCursor *string    `json:"next_cursor"`
	}{Cases: make([]caseJSON, len(page.Cases))}
	for i, c := range page.Cases {
		out.Cases[i] = caseOut(c)
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// narrowToOwn limits a listing to the user's own cases: those of the
// user's account when the user is a contact of one, else those the user
// requested.
func (s *Server) narrowToOwn(r *http.Request, tx casedesk.Tx, p *casedesk.Principal, f *casedesk.CaseFilter) error {
	c, err := tx.FindContactByEmail(r.Context(), p.Tenant.ID, p.User.Email)
	switch {
	case casedesk.ErrorCode(err) == casedesk.ENOTFOUND:
		f.RequesterEmail = p.User.Email
	case err != nil:
		return err
	case c.AccountID != 0:
		if f.AccountID != 0 && f.AccountID != c.AccountID {
			f.AccountID = -1 // matches nothing
		} else {
			f.AccountID = c.AccountID
		}
	default:
		f.RequesterEmail = p.User.Email
	}
	return nil
}

// findCase reads the case named in the path; a case the principal may not
// see is ENOTFOUND, like one that does not exist.
func (s *Server) findCase(r *http.Request, tx casedesk.Tx, p *casedesk.Principal) (*casedesk.Case, error) {
	number, err := pathInt(r, "number")
	if err != nil {
		return nil, casedesk.Errorf(casedesk.ENOTFOUND, "case %q not found", r.PathValue("number"))
	}
	c, err := tx.FindCaseByNumber(r.Context(), p.Tenant.ID, number)
	if err != nil {
		return nil, err
	}
	if ownOnly(p) {
		f := casedesk.CaseFilter{}
		if err := s.narrowToOwn(r, tx, p, &f); err != nil {
			return nil, err
		}
		mine := f.AccountID != 0 && c.AccountID == f.AccountID ||
			f.RequesterEmail != "" && c.Requester != nil && strings.EqualFold(c.Requester.Email, f.RequesterEmail)
		if !mine {
			return nil, casedesk.Errorf(casedesk.ENOTFOUND, "case %d not found", number)
		}
	}
	return c, nil
}

// getCase: GET /v1/cases/{number} with participants, fields and events.
func (s *Server) getCase(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var out caseDetailJSON
	err := s.store.View(r.Context(), func(tx casedesk.Tx) error {
		c, err := s.findCase(r, tx, p)
		if err != nil {
			return err
		}
		out, err = s.caseDetail(r, tx, p, c)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) caseDetail(r *http.Request, tx casedesk.Tx, p *casedesk.Principal, c *casedesk.Case) (caseDetailJSON, error) {
	ctx := r.Context()
	out := caseDetailJSON{caseJSON: caseOut(c), Fields: map[string]any{}, Participants: []contactJSON{}, Events: []eventJSON{}}
	if len(c.Fields) > 0 {
		if err := json.Unmarshal(c.Fields, &out.Fields); err != nil {
			return out, fmt.Errorf("case %d fields: %w", c.Number, err)
		}
	}
	parts, err := tx.ListParticipants(ctx, p.Tenant.ID, c.ID)
	if err != nil {
		return out, err
	}
	for _, ct := range parts {
		out.Participants = append(out.Participants, contactOut(ct))
	}
	events, err := tx.ListEvents(ctx, p.Tenant.ID, c.ID)
	if err != nil {
		return out, err
	}
	for _, e := range events {
		data := e.Data
		if len(data) == 0 {
			data = json.RawMessage(`{}`)
		}
		out.Events = append(out.Events, eventJSON{ID: e.ID, Kind: e.Kind, Actor: e.Actor, Data: data, CreatedAt: e.CreatedAt})
	}
	for _, link := range []struct {
		id  int64
		dst **int64
	}{{c.MergedInto, &out.MergedInto}, {c.FollowUpOf, &out.FollowUpOf}} {
		if link.id == 0 {
			continue
		}
		other, err := tx.FindCase(ctx, p.Tenant.ID, link.id)
		if err != nil {
			return out, err
		}
		*link.dst = &other.Number
	}
	return out, nil
}

type attachmentJSON struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	// SHA256 names the content for .../attachments/{sha256}; null where
	// the content was not copied (a sandbox's copy of a message).
	SHA256        *string `json:"sha256"`
	ContentCopied bool    `json:"content_copied"`
}

type messageJSON struct {
	ID          int64            `json:"id"`
	Direction   string           `json:"direction"`
	AuthorKind  string           `json:"author_kind"`
	MessageID   string           `json:"message_id"`
	From        addressJSON      `json:"from"`
	To          []addressJSON    `json:"to"`
	Cc          []addressJSON    `json:"cc"`
	Subject     string           `json:"subject"`
	Text        string           `json:"text"`
	HTML        string           `json:"html"`
	Attachments []attachmentJSON `json:"attachments"`
	CreatedAt   time.Time        `json:"created_at"`
}

func addresses(in []casedesk.Address) []addressJSON {
	out := make([]addressJSON, len(in))
	for i, a := range in {
		out[i] = addressJSON{Email: a.Email, Name: a.Name}
	}
	return out
}

// listMessages: GET /v1/cases/{number}/messages, oldest first.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var msgs []*casedesk.Message
	err := s.store.View(r.Context(), func(tx casedesk.Tx) error {
		c, err := s.findCase(r, tx, p)
		if err != nil {
			return err
		}
		msgs, err = tx.ListMessages(r.Context(), p.Tenant.ID, c.ID)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Messages []messageJSON `json:"messages"`
	}{Messages: []messageJSON{}}
	for _, m := range msgs {
		if ownOnly(p) && m.Direction == casedesk.Note {
			continue // internal notes are for staff
		}
		mj := messageJSON{ID: m.ID, Direction: string(m.Direction), AuthorKind: string(m.AuthorKind), MessageID: m.MessageID,
			From: addressJSON{Email: m.From.Email, Name: m.From.Name}, To: addresses(m.To), Cc: addresses(m.Cc),
			Subject: m.Subject, Text: m.Text, HTML: m.HTML, Attachments: []attachmentJSON{}, CreatedAt: m.CreatedAt}
		for _, a := range m.Attachments {
			aj := attachmentJSON{Name: a.Name, ContentType: a.ContentType, Size: a.Size}
			if a.SHA256 != nil {
				sum := hex.EncodeToString(a.SHA256)
				aj.SHA256, aj.ContentCopied = &sum, true
			}
			mj.Attachments = append(mj.Attachments, aj)
		}
		out.Messages = append(out.Messages, mj)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getAttachment: GET /v1/cases/{number}/attachments/{sha256} sends an
// attachment of one of the case's messages, always as a download.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	sum, err := hex.DecodeString(r.PathValue("sha256"))
	if err != nil || len(sum) != 32 {
		return casedesk.Errorf(casedesk.ENOTFOUND, "attachment %q not found", r.PathValue("sha256"))
	}
	var meta *casedesk.Attachment
	var content []byte
	err = s.store.View(r.Context(), func(tx casedesk.Tx) error {
		c, err := s.findCase(r, tx, p)
		if err != nil {
			return err
		}
		msgs, err := tx.ListMessages(r.Context(), p.Tenant.ID, c.ID)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if ownOnly(p) && m.Direction == casedesk.Note {
				continue
			}
			for i := range m.Attachments {
				if bytes.Equal(m.Attachments[i].SHA256, sum) {
					meta = &m.Attachments[i]
				}
			}
		}
		if meta == nil {
			return casedesk.Errorf(casedesk.ENOTFOUND, "attachment %x not found on case %d", sum, c.Number)
		}
		content, err = tx.AttachmentContent(r.Context(), p.Tenant.ID, sum)
		return err
	})
	if err != nil {
		return err
	}
	ct := meta.ContentType
	if _, _, err := mime.ParseMediaType(ct); err != nil || ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "sandbox")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": orDefault(meta.Name, "attachment")}))
	w.Write(content)
	return nil
}

// createCaseRequest is the body of POST /v1/cases.
type createCaseRequest struct {
	Subject   string            `json:"subject"`
	Text      string            `json:"text"`
	Requester *casedesk.Address `json:"requester"`
	Priority  casedesk.Priority `json:"priority"`
	Category  string            `json:"category"`
}

// createCase: POST /v1/cases opens a case, as a customer writing in would.
//
// A caller who cannot reply (a portal user, cases:create only) opens it
// for themselves: the text is stored as their first message, and the
// acknowledgement with the case number is queued to them, so the rest of
// the conversation can go on by email. Staff (cases:reply) open it for a
// customer named in "requester", after a phone call say: the case starts
// pending, and the text goes to the customer as the agent's first reply.
func (s *Server) createCase(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req createCaseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	req.Subject, req.Category = strings.TrimSpace(req.Subject), strings.TrimSpace(req.Category)
	if err := firstErr(required("subject", req.Subject), checkLen("subject", req.Subject, maxSubjectLen),
		required("text", req.Text), checkLen("text", req.Text, maxTextLen),
		checkLen("category", req.Category, maxNameLen)); err != nil {
		return err
	}
	if req.Priority != "" && !req.Priority.Valid() {
		return casedesk.Errorf(casedesk.EINVALID, "field \"priority\": unknown priority %q", req.Priority)
	}
	staff := p.User.Role.Has(casedesk.PermCasesReply)
	requester := casedesk.Address{Email: p.User.Email, Name: p.User.Name}
	switch {
	case staff && req.Requester == nil:
		return casedesk.Errorf(casedesk.EINVALID, "field \"requester\" is required: the customer the case is for")
	case staff:
		requester = *req.Requester
		if err := checkLen("requester.name", requester.Name, maxNameLen); err != nil {
			return err
		}
	case req.Requester != nil && !strings.EqualFold(req.Requester.Email, p.User.Email):
		return casedesk.Errorf(casedesk.EFORBIDDEN, "only staff may open a case for someone else")
	}
	requester.Email = strings.TrimSpace(requester.Email)
	if !casedesk.Deliverable(requester.Email) {
		return casedesk.Errorf(casedesk.EINVALID, "field \"requester.email\": %q is not an address mail can be sent to", requester.Email)
	}
	if strings.EqualFold(requester.Email, p.Tenant.SupportAddress) {
		return casedesk.Errorf(casedesk.EINVALID, "field \"requester.email\": the support address cannot open a case with itself")
	}
	var c *casedesk.Case
	err := s.write(r, p, "case.create", "case", func() string { return itoa(c.Number) },
		map[string]any{"requester": requester.Email, "subject": req.Subject, "on_behalf": staff},
		func(tx casedesk.Tx) (err error) {
			ctx := r.Context()
			who, err := tx.UpsertContact(ctx, p.Tenant.ID, requester)
			if err != nil {
				return err
			}
			n := casedesk.NewCase{TenantID: p.Tenant.ID, Subject: req.Subject, Priority: req.Priority,
				Category: req.Category, RequesterID: who.ID}
			if staff {
				n.Status = casedesk.StatusPending
			}
			if c, err = tx.CreateCase(ctx, n); err != nil {
				return err
			}
			kind, payload := casedesk.OutboxRelay, map[string]any{"case_number": c.Number, "text": req.Text,
				"cc": []string{}, "agent_user_id": p.User.ID}
			if !staff {
				// The customer's own words, under a Message-ID of ours that
				// carries the case's token: the acknowledgement answers it.
				id := outboundID(p, c.Number)
				from := casedesk.Address{Email: requester.Email, Name: who.Name}
				raw, err := portalMail(from, p.Tenant.SupportAddress, req.Subject, req.Text, id, tx.Now())
				if err != nil {
					return err
				}
				if _, _, err := tx.AppendMessage(ctx, casedesk.NewMessage{TenantID: p.Tenant.ID, CaseID: c.ID,
					MessageID: id, Raw: raw, Direction: casedesk.Inbound, AuthorKind: casedesk.AuthorCustomer,
					ContactID: who.ID, From: from,
					To: []casedesk.Address{{Email: p.Tenant.SupportAddress}}, Subject: req.Subject,
					Text: req.Text, Class: "normal"}); err != nil {
					return err
				}
				kind, payload = casedesk.OutboxAck, map[string]any{"case_number": c.Number, "subject": c.Subject,
					"in_reply_to": id, "references": []string{}, "original_subject": req.Subject}
			}
			raw, _ := json.Marshal(payload)
			_, err = tx.EnqueueOutbox(ctx, casedesk.NewOutboxItem{TenantID: p.Tenant.ID, CaseID: c.ID,
				Kind: kind, To: requester.Email, Payload: raw,
				MessageID: outboundID(p, c.Number)})
			if err != nil {
				return err
			}
			c, err = tx.FindCase(ctx, p.Tenant.ID, c.ID)
			return err
		})
	if err != nil {
		return err
	}
	if s.opts.OutboxQueued != nil {
		s.opts.OutboxQueued()
	}
	w.Header().Set("Location", "/v1/cases/"+itoa(c.Number))
	writeJSON(w, http.StatusCreated, caseOut(c))
	return nil
}

// portalMail writes a case opened through the API as the mail the customer
// would have sent, so that it is kept like all inbound mail: as raw bytes,
// from which the message could be parsed again.
func portalMail(from casedesk.Address, to, subject, text, messageID string, date time.Time) ([]byte, error) {
	var h mail.Header
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{{Name: from.Name, Address: from.Email}})
	h.SetAddressList("To", []*mail.Address{{Address: to}})
	h.SetSubject(subject)
	h.SetMessageID(messageID)
	h.Set("X-Casedesk-Origin", "api")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	var b bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&b, h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// replyRequest is the body of POST /v1/cases/{number}/replies.
type replyRequest struct {
	Text   string          `json:"text"`
	HTML   string          `json:"html"`
	Status casedesk.Status `json:"status"`
}

// reply queues an agent's reply to the requester, the other participants
// in copy, through the outbox, and sets the case's status (pending unless
// given).
func (s *Server) reply(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req replyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := firstErr(checkLen("text", req.Text, maxTextLen), checkLen("html", req.HTML, maxHTMLLen)); err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" && strings.TrimSpace(req.HTML) != "" {
		// Mail carries both parts; the text part is read from the HTML.
		text, err := html2text.FromString(req.HTML, html2text.Options{})
		if err != nil {
			return casedesk.Errorf(casedesk.EINVALID, "field \"html\" cannot be read as HTML: %v", err)
		}
		req.Text = text
	}
	if strings.TrimSpace(req.Text) == "" {
		return casedesk.Errorf(casedesk.EINVALID, "field \"text\" is required (or \"html\" with some text in it)")
	}
	if req.Status == "" {
		req.Status = casedesk.StatusPending
	} else if !req.Status.Valid() {
		return casedesk.Errorf(casedesk.EINVALID, "field \"status\": unknown status %q", req.Status)
	}
	var c *casedesk.Case
	var item *casedesk.OutboxItem
	err := s.write(r, p, "case.reply", "case", func() string { return itoa(c.Number) }, map[string]any{"status": req.Status},
		func(tx casedesk.Tx) (err error) {
			ctx := r.Context()
			if c, err = s.findCase(r, tx, p); err != nil {
				return err
			}
			if c.MergedInto != 0 {
				into, err := tx.FindCase(ctx, p.Tenant.ID, c.MergedInto)
				if err != nil {
					return err
				}
				return casedesk.Errorf(casedesk.EINVALID, "case %d was merged into case %d; reply there", c.Number, into.Number)
			}
			if c.Requester == nil || !casedesk.Deliverable(c.Requester.Email) {
				return casedesk.Errorf(casedesk.EINVALID, "case %d has no requester address to reply to", c.Number)
			}
			parties, err := tx.ParticipantEmails(ctx, p.Tenant.ID, []int64{c.ID})
			if err != nil {
				return err
			}
			cc := []string{}
			for _, e := range parties[c.ID].Emails {
				if !strings.EqualFold(e, c.Requester.Email) && !strings.EqualFold(e, p.User.Email) {
					cc = append(cc, e)
				}
			}
			payload, _ := json.Marshal(map[string]any{"case_number": c.Number, "text": req.Text, "html": req.HTML,
				"cc": cc, "agent_user_id": p.User.ID})
			item, err = tx.EnqueueOutbox(ctx, casedesk.NewOutboxItem{TenantID: p.Tenant.ID, CaseID: c.ID,
				Kind: casedesk.OutboxRelay, To: c.Requester.Email, Payload: payload,
				MessageID: outboundID(p, c.Number)})
			if err != nil {
				return err
			}
			if req.Status != c.Status {
				if err := casedesk.CheckTransition(c.Status, req.Status); err != nil {
					return err
				}
				if c, err = tx.ChangeStatus(ctx, p.Tenant.ID, c.ID, req.Status, actorOf(p)); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	if s.opts.OutboxQueued != nil {
		s.opts.OutboxQueued()
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"case": caseOut(c), "message_id": item.MessageID, "status": "queued"})
	return nil
}

// note: POST /v1/cases/{number}/notes adds an internal note.
func (s *Server) note(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req struct {
		Text string `json:"text"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := firstErr(required("text", req.Text), checkLen("text", req.Text, maxTextLen)); err != nil {
		return err
	}
	var c *casedesk.Case
	var m *casedesk.Message
	err := s.write(r, p, "case.note", "case", func() string { return itoa(c.Number) }, map[string]any{},
		func(tx casedesk.Tx) (err error) {
			if c, err = s.findCase(r, tx, p); err != nil {
				return err
			}
			m, _, err = tx.AppendMessage(r.Context(), casedesk.NewMessage{TenantID: p.Tenant.ID, CaseID: c.ID,
				Direction: casedesk.Note, AuthorKind: casedesk.AuthorAgent, UserID: p.User.ID,
				From: casedesk.Address{Email: p.User.Email, Name: p.User.Name}, Text: req.Text, Class: "note"})
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": m.ID, "created_at": m.CreatedAt})
	return nil
}

// patchCase: PATCH /v1/cases/{number} changes status, priority and
// assignee (a user ID, or null for nobody).
func (s *Server) patchCase(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req struct {
		Status   *casedesk.Status   `json:"status"`
		Priority *casedesk.Priority `json:"priority"`
		Assignee json.RawMessage    `json:"assignee"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	var assignee *int64
	if len(req.Assignee) > 0 {
		var id *int64
		if err := json.Unmarshal(req.Assignee, &id); err != nil {
			return casedesk.Errorf(casedesk.EINVALID, "field \"assignee\" must be a user ID or null")
		}
		if id == nil {
			id = new(int64)
		}
		assignee = id
	}
	if req.Status != nil && !req.Status.Valid() {
		return casedesk.Errorf(casedesk.EINVALID, "field \"status\": unknown status %q", *req.Status)
	}
	if req.Priority != nil && !req.Priority.Valid() {
		return casedesk.Errorf(casedesk.EINVALID, "field \"priority\": unknown priority %q", *req.Priority)
	}
	var c *casedesk.Case
	var out caseDetailJSON
	err := s.write(r, p, "case.update", "case", func() string { return itoa(c.Number) }, req,
		func(tx casedesk.Tx) (err error) {
			ctx := r.Context()
			if c, err = s.findCase(r, tx, p); err != nil {
				return err
			}
			by := actorOf(p)
			if req.Status != nil && *req.Status != c.Status {
				if c, err = tx.ChangeStatus(ctx, p.Tenant.ID, c.ID, *req.Status, by); err != nil {
					return err
				}
			}
			if req.Priority != nil {
				if c, err = tx.SetPriority(ctx, p.Tenant.ID, c.ID, *req.Priority, by); err != nil {
					return err
				}
			}
			if assignee != nil {
				if c, err = tx.AssignCase(ctx, p.Tenant.ID, c.ID, *assignee, by); err != nil {
					return err
				}
			}
			out, err = s.caseDetail(r, tx, p, c)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// merge: POST /v1/cases/{number}/merge {"into": N} merges the case into
// case N.
func (s *Server) merge(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req struct {
		Into int64 `json:"into"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Into <= 0 {
		return casedesk.Errorf(casedesk.EINVALID, "field \"into\" must be a case number")
	}
	var from *casedesk.Case
	var out caseDetailJSON
	err := s.write(r, p, "case.merge", "case", func() string { return itoa(from.Number) }, req,
		func(tx casedesk.Tx) (err error) {
			ctx := r.Context()
			if from, err = s.findCase(r, tx, p); err != nil {
				return err
			}
			into, err := tx.FindCaseByNumber(ctx, p.Tenant.ID, req.Into)
			if casedesk.ErrorCode(err) == casedesk.ENOTFOUND {
				return casedesk.Errorf(casedesk.EINVALID, "field \"into\": case %d not found", req.Into)
			} else if err != nil {
				return err
			}
			merged, err := tx.MergeCase(ctx, p.Tenant.ID, from.ID, into.ID, actorOf(p))
			if err != nil {
				return err
			}
			out, err = s.caseDetail(r, tx, p, merged)
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// outboundID is a fresh Message-ID, with the case's token, for mail the
// API queues on case number n.
func outboundID(p *casedesk.Principal, n int64) string {
	return threading.NewTokens(p.Tenant.ID, p.Tenant.TokenSecret).MessageID(n, casedesk.OutboundSeq(),
		casedesk.MessageIDDomain(p.Tenant.SupportAddress))
}

func actorOf(p *casedesk.Principal) casedesk.Actor {
	return casedesk.Actor{Kind: casedesk.AuthorAgent, UserID: p.User.ID}
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
