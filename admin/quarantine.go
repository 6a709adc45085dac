package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/casedesk/casedesk"
)

type quarantineJSON struct {
	ID         int64     `json:"id"`
	Mailbox    string    `json:"mailbox"`
	Error      string    `json:"error"`
	Size       int       `json:"size"`
	ReceivedAt time.Time `json:"received_at"`
}

// beforeCursor reads a "cursor" that is the ID the next page ends before.
func beforeCursor(r *http.Request) (int64, error) {
	c := r.URL.Query().Get("cursor")
	if c == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(c, 10, 64)
	if err != nil || id <= 0 {
		return 0, casedesk.Errorf(casedesk.EINVALID, "cursor is not one this server issued")
	}
	return id, nil
}

// listQuarantine: GET /v1/quarantine, unresolved entries, newest first.
func (s *Server) listQuarantine(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	limit, err := limitOf(r)
	if err != nil {
		return err
	}
	before, err := beforeCursor(r)
	if err != nil {
		return err
	}
	var qs []*casedesk.QuarantinedMessage
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		qs, err = tx.ListQuarantine(r.Context(), p.Tenant.ID, limit, before)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Messages   []quarantineJSON `json:"messages"`
		NextCursor *string          `json:"next_cursor"`
	}{Messages: []quarantineJSON{}}
	for _, q := range qs {
		out.Messages = append(out.Messages, quarantineJSON{ID: q.ID, Mailbox: q.Mailbox, Error: q.Error, Size: q.Size,
			ReceivedAt: q.ReceivedAt})
	}
	if len(qs) == limit {
		next := itoa(qs[len(qs)-1].ID)
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// quarantineRaw: GET /v1/quarantine/{id}/raw, the bytes as received.
func (s *Server) quarantineRaw(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	var q *casedesk.QuarantinedMessage
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		q, err = tx.QuarantinedRaw(r.Context(), p.Tenant.ID, id)
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="quarantine-`+itoa(id)+`.eml"`)
	w.Write(q.Raw)
	return nil
}

// retryQuarantine: POST /v1/quarantine/{id}/retry runs the mail through
// the processor again; on success the entry is resolved.
func (s *Server) retryQuarantine(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	if s.opts.Reprocessor == nil {
		return casedesk.Errorf(casedesk.EUNAVAILABLE, "this server does not process mail; retry on one that does")
	}
	var q *casedesk.QuarantinedMessage
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		q, err = tx.QuarantinedRaw(r.Context(), p.Tenant.ID, id)
		return err
	})
	if err != nil {
		return err
	}
	if !q.ResolvedAt.IsZero() {
		return casedesk.Errorf(casedesk.ECONFLICT, "quarantined message %d was processed already", id)
	}
	if err := s.opts.Reprocessor.Reprocess(r.Context(), p.Tenant.ID, q.Mailbox, q.Raw); err != nil {
		if code := casedesk.ErrorCode(err); code == casedesk.EINTERNAL || code == casedesk.EINVALID {
			// The mail still cannot be processed: say why, keep it.
			return casedesk.Errorf(casedesk.ECONFLICT, "processing failed again: %s", oneLine(err.Error()))
		}
		return err
	}
	err = s.write(r, p, "quarantine.retry", "quarantine", func() string { return itoa(id) }, map[string]any{},
		func(tx casedesk.Tx) error { return tx.ResolveQuarantine(r.Context(), p.Tenant.ID, id) })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": "processed"})
	return nil
}

type auditJSON struct {
	ID         int64           `json:"id"`
	UserID     *int64          `json:"user_id"`
	Action     string          `json:"action"`
	TargetKind string          `json:"target_kind"`
	TargetID   string          `json:"target_id"`
	Data       json.RawMessage `json:"data"`
	CreatedAt  time.Time       `json:"created_at"`
}

// listAudit: GET /v1/audit?user_id=&action=&target_kind=&target_id=&from=&to=&limit=&cursor=
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p *casedesk.Principal) error {
	q := r.URL.Query()
	f := casedesk.AuditFilter{Action: q.Get("action"), TargetKind: q.Get("target_kind"), TargetID: q.Get("target_id")}
	var err error
	if f.UserID, err = queryInt(r, "user_id"); err != nil {
		return err
	}
	if f.Limit, err = limitOf(r); err != nil {
		return err
	}
	if f.BeforeID, err = beforeCursor(r); err != nil {
		return err
	}
	if err := firstErr(queryTime(r, "from", &f.From), queryTime(r, "to", &f.To)); err != nil {
		return err
	}
	var entries []*casedesk.AuditEntry
	err = s.store.View(r.Context(), func(tx casedesk.Tx) (err error) {
		entries, err = tx.ListAudit(r.Context(), p.Tenant.ID, f)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Entries    []auditJSON `json:"entries"`
		NextCursor *string     `json:"next_cursor"`
	}{Entries: []auditJSON{}}
	for _, e := range entries {
		a := auditJSON{ID: e.ID, Action: e.Action, TargetKind: e.TargetKind, TargetID: e.TargetID, Data: e.Data, CreatedAt: e.CreatedAt}
		if e.UserID != 0 {
			a.UserID = &e.UserID
		}
		if len(a.Data) == 0 {
			a.Data = json.RawMessage(`{}`)
		}
		out.Entries = append(out.Entries, a)
	}
	if len(entries) == f.Limit {
		next := itoa(entries[len(entries)-1].ID)
		out.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func oneLine(s string) string {
	if len(s) > 300 {
		s = s[:300]
	}
	out := []rune{}
	for _, r := range s {
		if r == '\r' || r == '\n' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
