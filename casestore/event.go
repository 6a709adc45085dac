package casestore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// addEventsSQL appends a batch of events of one tenant. Rows are inserted
// in input order, so their IDs follow it: sorted, the returned IDs are in
// input order.
const addEventsSQL = `
INSERT INTO events (tenant_id, case_id, kind, actor, data, created_at)
SELECT $1, i.case_id, i.kind, i.actor::jsonb, i.data::jsonb, $6
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[])
	WITH ORDINALITY AS i(case_id, kind, actor, data, ord)
ORDER BY i.ord
RETURNING id`

// AddEvent appends an event to a case's history.
func (t *tx) AddEvent(ctx context.Context, e casedesk.Event) (*casedesk.Event, error) {
	es, err := t.AddEvents(ctx, []casedesk.Event{e})
	if err != nil {
		return nil, err
	}
	return es[0], nil
}

// AddEvents appends events of one tenant in one statement; see
// casedesk.CaseOps.
func (t *tx) AddEvents(ctx context.Context, es []casedesk.Event) ([]*casedesk.Event, error) {
	if len(es) == 0 {
		return nil, nil
	}
	out := make([]*casedesk.Event, len(es))
	caseIDs := make([]int64, len(es))
	kinds, actors, data := make([]string, len(es)), make([]string, len(es)), make([]string, len(es))
	for i, e := range es {
		if e.TenantID != es[0].TenantID {
			return nil, casedesk.Errorf(casedesk.EINVALID, "one batch holds events of one tenant")
		}
		if err := checkEvent(&e); err != nil {
			return nil, itemError(err, "event", i, len(es))
		}
		actor, err := json.Marshal(e.Actor)
		if err != nil {
			return nil, fmt.Errorf("event actor: %w", err)
		}
		e.CreatedAt = t.now
		out[i] = &e
		caseIDs[i], kinds[i], actors[i], data[i] = e.CaseID, clip(e.Kind, maxNameBytes), string(actor), string(e.Data)
	}
	rows, err := t.tx.Query(ctx, addEventsSQL, es[0].TenantID, caseIDs, kinds, actors, data, t.now)
	if err != nil {
		return nil, wrap(err, "add events")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, wrap(err, "add events")
	}
	if len(ids) != len(out) {
		return nil, fmt.Errorf("add events: %d of %d events stored", len(ids), len(out))
	}
	slices.Sort(ids)
	for i, id := range ids {
		out[i].ID = id
	}
	return out, nil
}

// checkEvent validates an event and defaults its data to an empty object.
func checkEvent(e *casedesk.Event) error {
	if e.Kind == "" {
		return casedesk.Errorf(casedesk.EINVALID, "event kind is required")
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage(`{}`)
	}
	if !json.Valid(e.Data) {
		return casedesk.Errorf(casedesk.EINVALID, "event data is not valid JSON")
	}
	return nil
}

// ListEvents returns a case's history, oldest first.
func (t *tx) ListEvents(ctx context.Context, tenantID, caseID int64) ([]*casedesk.Event, error) {
	rows, err := t.tx.Query(ctx, `SELECT tenant_id, id, case_id, kind, actor, data, created_at
		FROM events WHERE tenant_id = $1 AND case_id = $2 ORDER BY id`, tenantID, caseID)
	if err != nil {
		return nil, wrap(err, "list events")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*casedesk.Event, error) {
		var e casedesk.Event
		var actor []byte
		if err := r.Scan(&e.TenantID, &e.ID, &e.CaseID, &e.Kind, &actor, &e.Data, &e.CreatedAt); err != nil {
			return nil, err
		}
		return &e, json.Unmarshal(actor, &e.Actor)
	})
	return out, wrap(err, "list events")
}
