package admin

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/casedesk/casedesk"
	"github.com/casedesk/casedesk/invoicepdf"
)

// maxInvoiceBatch bounds the invoices of one POST /v1/invoices.
const maxInvoiceBatch = 500

// dateLayout is how invoice dates are written in JSON: calendar days.
const dateLayout = "2006-01-02"

type invoiceLineJSON struct {
	Description    string `json:"description"`
	Quantity       int64  `json:"quantity"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
	AmountMinor    int64  `json:"amount_minor"`
}

type invoiceAccountJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type invoiceJSON struct {
	ID          int64              `json:"id"`
	Number      string             `json:"number"`
	Account     invoiceAccountJSON `json:"account"`
	PeriodStart string             `json:"period_start"`
	PeriodEnd   string             `json:"period_end"`
	IssueDate   string             `json:"issue_date"`
	DueDate     string             `json:"due_date"`
	Currency    string             `json:"currency"`
	AmountMinor int64              `json:"amount_minor"`
	Status      string             `json:"status"`
	Lines       []invoiceLineJSON  `json:"lines"`
	SentAt      *time.Time         `json:"sent_at"`
	RemindedAt  *time.Time         `json:"reminded_at"`
	CreatedAt   time.Time          `json:"created_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
}

func invoiceOut(inv *casedesk.Invoice) invoiceJSON {
	out := invoiceJSON{ID: inv.ID, Number: inv.Number, Account: invoiceAccountJSON{ID: inv.AccountID},
		PeriodStart: inv.PeriodStart.Format(dateLayout), PeriodEnd: inv.PeriodEnd.Format(dateLayout),
		IssueDate: inv.IssueDate.Format(dateLayout), DueDate: inv.DueDate.Format(dateLayout),
		Currency: inv.Currency, AmountMinor: inv.AmountMinor, Status: string(inv.Status),
		Lines: make([]invoiceLineJSON, len(inv.Lines)), CreatedAt: inv.CreatedAt, UpdatedAt: inv.UpdatedAt}
	if inv.Account != nil {
		out.Account.Name = inv.Account.Name
	}
	for i, l := range inv.Lines {
		total, _ := l.TotalMinor() // validated when stored
		out.Lines[i] = invoiceLineJSON{Description: l.Description, Quantity: l.Quantity, UnitPriceMinor: l.UnitPriceMinor,
			AmountMinor: total}
	}
	if !inv.SentAt.IsZero() {
		out.SentAt = &inv.SentAt
	}
	if !inv.RemindedAt.IsZero() {
		out.RemindedAt = &inv.RemindedAt
	}
	return out
}

// invoiceRequest is one invoice to create. Amounts are integers in minor
// units of the currency; dates are YYYY-MM-DD.
type invoiceRequest struct {
	AccountID   int64                  `json:"account_id"`
	Number      string                 `json:"number"`
	PeriodStart string                 `json:"period_start"`
	PeriodEnd   string                 `json:"period_end"`
	IssueDate   string                 `json:"issue_date"` // default: today (UTC)
	DueDate     string                 `json:"due_date"`
	Currency    string                 `json:"currency"`
	Status      string                 `json:"status"` // default: open
	AmountMinor *int64                 `json:"amount_minor"`
	Lines       []casedesk.InvoiceLine `json:"lines"`
}

// createInvoicesRequest is one invoice, or {"invoices": [...]}. It spells
// out invoiceRequest's fields rather than embedding it, so that an error
// names a field as the client wrote it.
type createInvoicesRequest struct {
	AccountID   int64                  `json:"account_id"`
	Number      string                 `json:"number"`
	PeriodStart string                 `json:"period_start"`
	PeriodEnd   string                 `json:"period_end"`
	IssueDate   string                 `json:"issue_date"`
	DueDate     string                 `json:"due_date"`
	Currency    string                 `json:"currency"`
	Status      string                 `json:"status"`
	AmountMinor *int64                 `json:"amount_minor"`
	Lines       []casedesk.InvoiceLine `json:"lines"`
	Invoices    []invoiceRequest       `json:"invoices"`
}

// one is the request's single invoice.
func (req createInvoicesRequest) one() invoiceRequest {
	return invoiceRequest{AccountID: req.AccountID, Number: req.Number, PeriodStart: req.PeriodStart,
		PeriodEnd: req.PeriodEnd, IssueDate: req.IssueDate, DueDate: req.DueDate, Currency: req.Currency,
		Status: req.Status, AmountMinor: req.AmountMinor, Lines: req.Lines}
}

// newInvoice turns a request into the store's input; today fills an
// absent issue date. prefix names the invoice in a batch ("invoices[3].").
func (req invoiceRequest) newInvoice(tenantID int64, today time.Time, prefix string) (casedesk.NewInvoice, error) {
	n := casedesk.NewInvoice{TenantID: tenantID, AccountID: req.AccountID, Number: req.Number, Currency: req.Currency,
		Status: casedesk.InvoiceStatus(req.Status), Lines: req.Lines, AmountMinor: req.AmountMinor, IssueDate: today}
	for _, d := range []struct {
		name string
		v    string
		dst  *time.Time
	}{{"period_start", req.PeriodStart, &n.PeriodStart}, {"period_end", req.PeriodEnd, &n.PeriodEnd},
		{"issue_date", req.IssueDate, &n.IssueDate}, {"due_date", req.DueDate, &n.DueDate}} {
		if d.v == "" {
			if d.name == "issue_date" {
				continue
			}
			return n, casedesk.Errorf(casedesk.EINVALID, "field %q is required", prefix+d.name)
		}
		t, err := time.Parse(dateLayout, d.v)
		if err != nil {
			return n, casedesk.Errorf(casedesk.EINVALID, "field %q must be a date like 2026-11-30", prefix+d.name)
		}
		*d.dst = t
	}
	if _, err := n.Validate(); err != nil {
		if prefix != "" {
			return n, casedesk.Errorf(casedesk.ErrorCode(err), "%s %s", strings.TrimSuffix(prefix, "."), casedesk.ErrorMessage(err))
		}
		return n, err
	}
	return n, nil
}

// createInvoices: POST /v1/invoices {invoice} or {"invoices": [invoice, ...]}.
// A batch is created all or none; the answer is 201 with the invoice, or
// {"invoices": [...]} in the order given.
func (s *Server) createInvoices(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	var req createInvoicesRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	batch := req.Invoices != nil
	reqs := req.Invoices
	switch {
	case batch && !reflect.DeepEqual(req.one(), invoiceRequest{}):
		return casedesk.Errorf(casedesk.EINVALID, "send one invoice, or {\"invoices\": [...]}, not both")
	case batch && len(reqs) == 0:
		return casedesk.Errorf(casedesk.EINVALID, "field \"invoices\" is empty")
	case len(reqs) > maxInvoiceBatch:
		return casedesk.Errorf(casedesk.EINVALID, "field \"invoices\" has %d invoices; at most %d are allowed", len(reqs), maxInvoiceBatch)
	case !batch:
		reqs = []invoiceRequest{req.one()}
	}
	// An invoice without an issue date is issued today, in UTC.
	today := casedesk.Day(time.Now().UTC())
	ns := make([]casedesk.NewInvoice, len(reqs))
	audit := make([]map[string]any, len(reqs))
	for i, rq := range reqs {
		prefix := ""
		if batch {
			prefix = "invoices[" + strconv.Itoa(i) + "]."
		}
		n, err := rq.newInvoice(p.Tenant.ID, today, prefix)
		if err != nil {
			return err
		}
		ns[i] = n
		audit[i] = map[string]any{"number": n.Number, "account_id": n.AccountID, "currency": n.Currency}
	}
	var created []*casedesk.Invoice
	err := s.write(r, p, "invoice.create", "invoice", func() string { return auditTarget(created) }, map[string]any{"invoices": audit},
		func(tx casedesk.Tx) (err error) {
			created, err = tx.CreateInvoices(r.Context(), p.Tenant.ID, ns)
			return err
		})
	if err != nil {
		return err
	}
	if !batch {
		writeJSON(w, http.StatusCreated, invoiceOut(created[0]))
		return nil
	}
	out := struct {
		Invoices []invoiceJSON `json:"invoices"`
	}{Invoices: make([]invoiceJSON, len(created))}
	for i, inv := range created {
		out.Invoices[i] = invoiceOut(inv)
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// auditTarget names the invoice created, or the first and the count of a
// batch.
func auditTarget(invs []*casedesk.Invoice) string {
	if len(invs) == 1 {
		return invs[0].Number
	}
	return invs[0].Number + " and " + strconv.Itoa(len(invs)-1) + " more"
}

// listInvoices: GET /v1/invoices?account=&status=&period_from=&period_to=&sort=&order=&limit=&cursor=
func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	q := r.URL.Query()
	f := casedesk.InvoiceFilter{Sort: q.Get("sort"), Cursor: q.Get("cursor")}
	var err error
	if f.AccountID, err = queryInt(r, "account"); err != nil {
		return err
	}
	if f.Limit, err = limitOf(r); err != nil {
		return err
	}
	if st := q.Get("status"); st != "" {
		for _, v := range strings.Split(st, ",") {
			f.Statuses = append(f.Statuses, casedesk.InvoiceStatus(strings.TrimSpace(v)))
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Time
	}{{"period_from", &f.PeriodFrom}, {"period_to", &f.PeriodTo}} {
		if v := q.Get(d.name); v != "" {
			if *d.dst, err = time.Parse(dateLayout, v); err != nil {
				return casedesk.Errorf(casedesk.EINVALID, "query parameter %q must be a date like 2026-11-30", d.name)
			}
		}
	}
	switch q.Get("order") {
	case "", "asc":
		if f.Sort == "" && q.Get("order") == "" {
			f.Desc = true // the default listing: newest first
		}
	case "desc":
		f.Desc = true
	default:
		return casedesk.Errorf(casedesk.EINVALID, "query parameter \"order\" must be asc or desc")
	}
	var page *casedesk.InvoicePage
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		page, err = tx.ListInvoices(r.Context(), p.Tenant.ID, f)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Invoices   []invoiceJSON `json:"invoices"`
		NextCursor *string       `json:"next_cursor"`
	}{Invoices: make([]invoiceJSON, 0, len(page.Invoices))}
	for _, inv := range page.Invoices {
		out.Invoices = append(out.Invoices, invoiceOut(inv))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// findInvoice reads the invoice the path names.
func (s *Server) findInvoice(r *http.Request, p *casedesk.Principal) (*casedesk.Invoice, error) {
	var inv *casedesk.Invoice
	err := s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		inv, err = tx.FindInvoiceByNumber(r.Context(), p.Tenant.ID, r.PathValue("number"))
		return err
	})
	return inv, err
}

// getInvoice: GET /v1/invoices/{number}
func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	inv, err := s.findInvoice(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, invoiceOut(inv))
	return nil
}

// invoicePDF: GET /v1/invoices/{number}/pdf, the invoice as a PDF download.
func (s *Server) invoicePDF(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	inv, err := s.findInvoice(r, p)
	if err != nil {
		return err
	}
	doc, err := invoicepdf.Render(p.Tenant.Name, inv)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `attachment; filename="`+casedesk.InvoiceFileName(inv.Number)+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
	return nil
}

// patchInvoice: PATCH /v1/invoices/{number} {"status"}
func (s *Server) patchInvoice(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	number := r.PathValue("number")
	var req struct {
		Status *string `json:"status"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Status == nil {
		return casedesk.Errorf(casedesk.EINVALID, "field \"status\" is required: open, paid, overdue or void")
	}
	var inv *casedesk.Invoice
	err := s.write(r, p, "invoice.update", "invoice", func() string { return number }, req,
		func(tx casedesk.Tx) (err error) {
			inv, err = tx.SetInvoiceStatus(r.Context(), p.Tenant.ID, number, casedesk.InvoiceStatus(*req.Status))
			return err
		})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, invoiceOut(inv))
	return nil
}

// sendInvoice: POST /v1/invoices/{number}/send queues the invoice's mail,
// its PDF attached, to the account's billing contact, and answers 202.
// Each call queues one more mail. An invoice the job has not sent yet
// counts as sent from then on.
func (s *Server) sendInvoice(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	number := r.PathValue("number")
	var inv *casedesk.Invoice
	var item *casedesk.OutboxItem
	data := map[string]any{} // filled before the audit entry is written
	err := s.write(r, p, "invoice.send", "invoice", func() string { return number }, data, func(tx casedesk.Tx) error {
		var err error
		if inv, err = tx.FindInvoiceByNumber(r.Context(), p.Tenant.ID, number); err != nil {
			return err
		}
		items, err := casedesk.QueueInvoiceMail(r.Context(), tx, p.Tenant, []*casedesk.Invoice{inv},
			casedesk.InvoiceMailNew, invoicepdf.Render)
		if err != nil {
			return err
		}
		item = items[0]
		data["to"], data["message_id"] = item.To, item.MessageID
		return nil
	})
	if err != nil {
		return err
	}
	if s.opts.OutboxQueued != nil {
		s.opts.OutboxQueued()
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"number": inv.Number, "to": item.To, "message_id": item.MessageID,
		"overdue": inv.Status == casedesk.InvoiceOverdue})
	return nil
}
