package casestore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/casedesk/casedesk"
)

// buildStep is one step of a sandbox build. A step with a key copies the
// rows whose key is at most the mark of markOf, in chunks of key ranges
// (BuildSandboxChunk); one without runs once.
//
// The statements take $1 the production tenant, $2 the sandbox, $3 and
// $4 the chunk's key range (after, upto], $5 the pseudonym key, $6 and $7
// the local part and domain of the support address (kept as it is), and
// $8 the marks (a JSON object of table -> highest ID copied).
type buildStep struct {
	name   string
	table  string // the source table a chunked step reads
	key    string // the column chunks are ranged on; "" for a one-shot step
	markOf string // the table whose mark bounds the key
	data   bool   // only when data is copied (anonymized, full)
	full   bool   // only in full mode
	// sql returns the statement for anonymised (anon) or full copies.
	sql func(anon bool) string
}

// mark reads a table's mark inside a statement.
func mark(table string) string { return "($8::jsonb ->> '" + table + "')::bigint" }

// pick returns the anonymised or the full expression.
func pick(anon bool, a, f string) string {
	if anon {
		return a
	}
	return f
}

// buildSteps are a build's steps in order: parents before the rows that
// refer to them.
var buildSteps = []buildStep{
	{name: "configuration", sql: func(bool) string {
		return `
		WITH s AS (
			UPDATE tenants SET settings = p.settings FROM tenants p WHERE p.id = $1 AND tenants.id = $2),
		r AS (
			INSERT INTO roles (tenant_id, name, permissions, built_in)
			SELECT $2, name, permissions, false FROM roles WHERE tenant_id = $1 AND NOT built_in
			ON CONFLICT (tenant_id, name) DO NOTHING),
		b AS (
			UPDATE roles SET permissions = p.permissions FROM roles p
			WHERE p.tenant_id = $1 AND p.built_in AND roles.tenant_id = $2 AND roles.name = p.name)
		INSERT INTO template_overrides (tenant_id, name, lang, subject, text_body, html_body, updated_at)
		SELECT $2, name, lang, subject, text_body, html_body, updated_at FROM template_overrides WHERE tenant_id = $1
		ON CONFLICT DO NOTHING`
	}},
	{name: "accounts", table: "accounts", key: "id", markOf: "accounts", data: true, sql: func(anon bool) string {
		return `
		INSERT INTO accounts (tenant_id, id, name, domains, sla_tier, billing_contact_id, created_at, updated_at)
		OVERRIDING SYSTEM VALUE
		SELECT $2, a.id, ` + pick(anon, `'Account ' || a.id`, `a.name`) + `,
			` + pick(anon, `ARRAY(SELECT casedesk_anon_domain($5, d) FROM unnest(a.domains) d)`, `a.domains`) + `,
			a.sla_tier, NULL, a.created_at, a.updated_at
		FROM accounts a WHERE a.tenant_id = $1 AND a.id > $3 AND a.id <= $4`
	}},
	{name: "contacts", table: "contacts", key: "id", markOf: "contacts", data: true, sql: func(anon bool) string {
		return `
		INSERT INTO contacts (tenant_id, id, email, name, phone, account_id, bouncing_since, created_at, updated_at)
		OVERRIDING SYSTEM VALUE
		SELECT $2, c.id, ` + pick(anon, `casedesk_anon_email($5, c.email)`, `c.email`) + `,
			` + pick(anon, `CASE WHEN c.name = '' THEN '' ELSE casedesk_anon_name($5, c.email) END`, `c.name`) + `,
			` + pick(anon, `''`, `c.phone`) + `,
			CASE WHEN c.account_id <= ` + mark("accounts") + ` THEN c.account_id END,
			c.bouncing_since, c.created_at, c.updated_at
		FROM contacts c WHERE c.tenant_id = $1 AND c.id > $3 AND c.id <= $4`
	}},
	{name: "billing contacts", data: true, sql: func(bool) string {
		return `
		UPDATE accounts SET billing_contact_id = p.billing_contact_id FROM accounts p
		WHERE p.tenant_id = $1 AND p.billing_contact_id IS NOT NULL AND p.id <= ` + mark("accounts") + `
			AND p.billing_contact_id <= ` + mark("contacts") + `
			AND accounts.tenant_id = $2 AND accounts.id = p.id`
	}},
	{name: "users", table: "users", key: "id", markOf: "users", data: true, sql: func(anon bool) string {
		// Roles are matched by name; a user whose role came after the
		// configuration step gets the least one.
		return `
		INSERT INTO users (tenant_id, id, email, name, role_id, active, last_active_at, created_at, updated_at)
		OVERRIDING SYSTEM VALUE
		SELECT $2, u.id, ` + pick(anon, `casedesk_anon_email($5, u.email)`, `u.email`) + `,
			` + pick(anon, `CASE WHEN u.name = '' THEN '' ELSE casedesk_anon_name($5, u.email) END`, `u.name`) + `,
			coalesce(sr.id, (SELECT id FROM roles WHERE tenant_id = $2 AND name = 'general')),
			u.active, u.last_active_at, u.created_at, u.updated_at
		FROM users u
			JOIN roles pr ON pr.tenant_id = u.tenant_id AND pr.id = u.role_id
			LEFT JOIN roles sr ON sr.tenant_id = $2 AND sr.name = pr.name
		WHERE u.tenant_id = $1 AND u.id > $3 AND u.id <= $4`
	}},
	{name: "cases", table: "cases", key: "id", markOf: "cases", data: true, sql: func(anon bool) string {
		// Links between cases come in "case links", once all are there.
		return `
		INSERT INTO cases (tenant_id, id, number, subject, status, priority, category, requester_id, account_id,
			assignee_id, fields, error_fingerprint, occurrences, message_count, created_at, updated_at,
			first_response_at, pending_since, solved_at, closed_at, last_agent_reply_at, reminded_for)
		OVERRIDING SYSTEM VALUE
		SELECT $2, c.id, c.number, ` + pick(anon, `casedesk_anon_subject($5, c.subject)`, `c.subject`) + `,
			c.status, c.priority, c.category, c.requester_id,
			CASE WHEN c.account_id <= ` + mark("accounts") + ` THEN c.account_id END,
			CASE WHEN c.assignee_id <= ` + mark("users") + ` THEN c.assignee_id END,
			` + pick(anon, `casedesk_anon_fields(c.fields)`, `c.fields`) + `,
			c.error_fingerprint, c.occurrences, c.message_count, c.created_at, c.updated_at,
			c.first_response_at, c.pending_since, c.solved_at, c.closed_at, c.last_agent_reply_at, c.reminded_for
		FROM cases c WHERE c.tenant_id = $1 AND c.id > $3 AND c.id <= $4 AND c.requester_id <= ` + mark("contacts")
	}},
	{name: "case links", data: true, sql: func(bool) string {
		return `
		WITH l AS (
			UPDATE cases SET
				follow_up_of = CASE WHEN p.follow_up_of <= ` + mark("cases") + ` THEN p.follow_up_of END,
				merged_into = CASE WHEN p.merged_into <= ` + mark("cases") + ` THEN p.merged_into END
			FROM cases p
			WHERE p.tenant_id = $1 AND (p.follow_up_of IS NOT NULL OR p.merged_into IS NOT NULL)
				AND p.id <= ` + mark("cases") + ` AND cases.tenant_id = $2 AND cases.id = p.id
				AND EXISTS (SELECT 1 FROM cases t WHERE t.tenant_id = $2
					AND t.id = coalesce(p.merged_into, p.follow_up_of)))
		UPDATE case_counters SET last_number = coalesce((SELECT max(number) FROM cases WHERE tenant_id = $2), 0)
		WHERE tenant_id = $2`
	}},
	{name: "case participants", table: "case_participants", key: "case_id", markOf: "cases", data: true, sql: func(bool) string {
		return `
		INSERT INTO case_participants (tenant_id, case_id, contact_id, added_at)
		SELECT $2, p.case_id, p.contact_id, p.added_at FROM case_participants p
		WHERE p.tenant_id = $1 AND p.case_id > $3 AND p.case_id <= $4 AND p.contact_id <= ` + mark("contacts") + `
			AND EXISTS (SELECT 1 FROM cases c WHERE c.tenant_id = $2 AND c.id = p.case_id)`
	}},
	{name: "messages", table: "messages", key: "id", markOf: "messages", data: true, sql: func(anon bool) string {
		// Message-IDs become pseudonyms too, the same in message_id,
		// in_reply_to and refs, so mail still threads in the sandbox.
		mid := func(col string) string {
			return `casedesk_pseudo($5, 'message-id:' || ` + col + `)`
		}
		// Most mail refers to one or two others: those need no subquery
		// (a subquery per row costs more than the rest of the row).
		ref := func(i string) string { return `left(` + mid("m.refs["+i+"]") + `, 32) || '@anon.invalid'` }
		anonRefs := `CASE cardinality(m.refs) WHEN 0 THEN '{}'::text[]
				WHEN 1 THEN ARRAY[` + ref("1") + `]
				WHEN 2 THEN ARRAY[` + ref("1") + `, ` + ref("2") + `]
				WHEN 3 THEN ARRAY[` + ref("1") + `, ` + ref("2") + `, ` + ref("3") + `]
				ELSE ARRAY(SELECT left(` + mid("r") + `, 32) || '@anon.invalid'
					FROM unnest(m.refs) WITH ORDINALITY x (r, i) ORDER BY i) END`
		return `
		INSERT INTO messages (tenant_id, id, case_id, message_id, raw_sha256, in_reply_to, refs, direction,
			author_kind, contact_id, user_id, from_addr, to_addrs, cc_addrs, subject, text_body, html_body,
			class, mailbox, raw_size, created_at)
		OVERRIDING SYSTEM VALUE
		SELECT $2, m.id, m.case_id,
			` + pick(anon, `left(`+mid("m.message_id")+`, 32) || '@anon.invalid'`, `m.message_id`) + `,
			` + pick(anon, `sha256($5 || m.raw_sha256)`, `m.raw_sha256`) + `,
			` + pick(anon, `CASE WHEN m.in_reply_to = '' THEN '' ELSE left(`+mid("m.in_reply_to")+`, 32) || '@anon.invalid' END`, `m.in_reply_to`) + `,
			` + pick(anon, anonRefs, `m.refs`) + `,
			m.direction, m.author_kind,
			CASE WHEN m.contact_id <= ` + mark("contacts") + ` THEN m.contact_id END,
			CASE WHEN m.user_id <= ` + mark("users") + ` THEN m.user_id END,
			` + pick(anon, `casedesk_anon_addr($5, m.from_addr, $6, $7)`, `m.from_addr`) + `,
			` + pick(anon, `casedesk_anon_addrs($5, m.to_addrs, $6, $7)`, `m.to_addrs`) + `,
			` + pick(anon, `casedesk_anon_addrs($5, m.cc_addrs, $6, $7)`, `m.cc_addrs`) + `,
			` + pick(anon, `casedesk_anon_subject($5, m.subject)`, `m.subject`) + `,
			` + pick(anon, `CASE WHEN m.text_body = '' THEN '' ELSE
				'[text removed in the anonymised sandbox: ' || octet_length(m.text_body) || ' bytes]' END`, `m.text_body`) + `,
			` + pick(anon, `''`, `m.html_body`) + `,
			m.class, m.mailbox, m.raw_size, m.created_at
		FROM messages m WHERE m.tenant_id = $1 AND m.id > $3 AND m.id <= $4 AND m.case_id <= ` + mark("cases")
	}},
	{name: "attachments", table: "attachments", key: "message_id", markOf: "messages", data: true, sql: func(anon bool) string {
		// Metadata only: without content (sha256 NULL).
		return `
		INSERT INTO attachments (tenant_id, message_id, position, sha256, name, content_type, content_id, inline, size)
		SELECT $2, a.message_id, a.position, NULL,
			` + pick(anon, `'attachment-' || a.position || coalesce(substring(a.name from '\.[A-Za-z0-9]{1,10}$'), '')`, `a.name`) + `,
			a.content_type,
			` + pick(anon, `CASE WHEN a.content_id = '' THEN '' ELSE 'part' || a.position || '@anon.invalid' END`, `a.content_id`) + `,
			a.inline, a.size
		FROM attachments a
		WHERE a.tenant_id = $1 AND a.message_id > $3 AND a.message_id <= $4
			AND EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = $2 AND m.id = a.message_id)`
	}},
	{name: "search index", table: "message_search", key: "message_id", markOf: "messages", data: true, full: true, sql: func(bool) string {
		return `
		INSERT INTO message_search (tenant_id, message_id, vector)
		SELECT $2, s.message_id, s.vector FROM message_search s
		WHERE s.tenant_id = $1 AND s.message_id > $3 AND s.message_id <= $4
			AND EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = $2 AND m.id = s.message_id)`
	}},
	{name: "search queue", data: true, full: true, sql: func(bool) string {
		// Mail production had not indexed yet is indexed in the sandbox.
		return `
		INSERT INTO search_queue (message_id, tenant_id)
		SELECT m.id, $2 FROM messages m
		WHERE m.tenant_id = $2 AND m.author_kind <> 'system'
			AND NOT EXISTS (SELECT 1 FROM message_search s WHERE s.tenant_id = $2 AND s.message_id = m.id)
		ON CONFLICT DO NOTHING`
	}},
	{name: "events", table: "events", key: "id", markOf: "events", data: true, sql: func(anon bool) string {
		return `
		INSERT INTO events (tenant_id, id, case_id, kind, actor, data, created_at)
		OVERRIDING SYSTEM VALUE
		SELECT $2, e.id, e.case_id, e.kind,
			` + pick(anon, `casedesk_anon_event_data(e.actor)`, `e.actor`) + `,
			` + pick(anon, `casedesk_anon_event_data(e.data)`, `e.data`) + `,
			e.created_at
		FROM events e WHERE e.tenant_id = $1 AND e.id > $3 AND e.id <= $4
			AND EXISTS (SELECT 1 FROM cases c WHERE c.tenant_id = $2 AND c.id = e.case_id)`
	}},
	{name: "invoices", table: "invoices", key: "id", markOf: "invoices", data: true, sql: func(anon bool) string {
		// Amounts, dates and numbers stay; line descriptions may name the
		// client.
		return `
		INSERT INTO invoices (tenant_id, id, account_id, number, period_start, period_end, amount_minor, currency,
			status, due_date, lines, sent_at, created_at, updated_at, issue_date, reminded_at)
		OVERRIDING SYSTEM VALUE
		SELECT $2, i.id, i.account_id, i.number, i.period_start, i.period_end, i.amount_minor, i.currency,
			i.status, i.due_date,
			` + pick(anon, `coalesce((SELECT jsonb_agg(CASE WHEN jsonb_typeof(l) = 'object'
				THEN l || jsonb_build_object('description', 'Line ' || n) ELSE l END ORDER BY n)
				FROM jsonb_array_elements(i.lines) WITH ORDINALITY x (l, n)), '[]'::jsonb)`, `i.lines`) + `,
			i.sent_at, i.created_at, i.updated_at, i.issue_date, i.reminded_at
		FROM invoices i WHERE i.tenant_id = $1 AND i.id > $3 AND i.id <= $4 AND i.account_id <= ` + mark("accounts")
	}},
}

// markedTables are the tables whose highest ID a build records when it
// starts.
var markedTables = []string{"accounts", "contacts", "users", "cases", "messages", "events", "invoices"}

// stepsFor returns the steps of a mode, in order.
func stepsFor(mode casedesk.SandboxMode) []buildStep {
	var out []buildStep
	for _, s := range buildSteps {
		if s.data && mode == casedesk.SandboxEmpty || s.full && mode != casedesk.SandboxFull {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Build states before and after the steps.
const (
	stepMarks   = "" // queued: record the marks
	stepWaiting = "waiting for transactions"
	stepDone    = "done"
)

// BuildSandbox does the next step of a build.
func (t *tx) BuildSandbox(ctx context.Context, tenantID, jobID int64) (*casedesk.SandboxJob, error) {
	j, err := scanSandboxJob(t.tx.QueryRow(ctx, `SELECT `+sandboxJobColumns+` FROM sandbox_jobs j
		WHERE j.tenant_id = $1 AND j.id = $2 FOR UPDATE`, tenantID, jobID))
	if err != nil {
		return nil, notFound(err, "sandbox job %d not found", jobID)
	}
	if !j.Open() {
		return &j.SandboxJob, nil
	}
	// A chunk's statement is costly enough for PostgreSQL to JIT-compile
	// it, which takes longer than running it.
	if _, err := t.tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return nil, wrap(err, "build sandbox")
	}
	switch j.Step {
	case stepMarks:
		err = t.startBuild(ctx, j)
	case stepWaiting:
		err = t.awaitHorizon(ctx, j)
	default:
		err = t.advance(ctx, j)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox job %d, step %q: %w", j.ID, j.Step, err)
	}
	marks, err := json.Marshal(j.marks)
	if err != nil {
		return nil, err
	}
	_, err = t.tx.Exec(ctx, `UPDATE sandbox_jobs SET state = $3, step = $4, after_key = $5, progress = $6,
		total = $7, marks = $8, xid_horizon = $9, started_at = $10, finished_at = $11
		WHERE tenant_id = $1 AND id = $2`,
		j.TenantID, j.ID, j.State, j.Step, j.afterKey, j.Progress, j.Total, marks, j.xidHorizon,
		nullTime(j.StartedAt), nullTime(j.FinishedAt))
	if err != nil {
		return nil, wrap(err, "record sandbox progress")
	}
	return &j.SandboxJob, nil
}

// startBuild records the highest ID of each table: the build copies no row
// above them.
func (t *tx) startBuild(ctx context.Context, j *sandboxJob) error {
	var parts []string
	for _, tab := range markedTables {
		parts = append(parts, fmt.Sprintf(`'%s', coalesce(pg_sequence_last_value(pg_get_serial_sequence('%s', 'id')), 0)`, tab, tab))
	}
	var raw []byte
	if err := t.tx.QueryRow(ctx, `SELECT jsonb_build_object(`+strings.Join(parts, ", ")+`)`).Scan(&raw); err != nil {
		return wrap(err, "read marks")
	}
	if err := json.Unmarshal(raw, &j.marks); err != nil {
		return err
	}
	j.State, j.Step, j.StartedAt = casedesk.JobRunning, stepWaiting, t.now
	return nil
}

// awaitHorizon moves on once every transaction under way when the marks
// were read has ended: from then on no row at or below a mark can appear.
// The horizon is read in the call after the marks, so that a transaction
// which drew an ID before the marks has had its own ID long since. Then it
// counts the rows to copy.
func (t *tx) awaitHorizon(ctx context.Context, j *sandboxJob) error {
	if j.xidHorizon == 0 {
		return wrap(t.tx.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&j.xidHorizon),
			"read transaction horizon")
	}
	var oldest int64
	if err := t.tx.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&oldest); err != nil {
		return wrap(err, "read oldest transaction")
	}
	if oldest < j.xidHorizon {
		return nil // not yet
	}
	steps := stepsFor(j.Mode)
	var counts []string
	for _, s := range steps {
		if s.key != "" {
			counts = append(counts, fmt.Sprintf(`(SELECT count(*) FROM %s WHERE tenant_id = $1 AND %s <= %d)`,
				s.table, s.key, j.marks[s.markOf]))
		}
	}
	if len(counts) > 0 {
		if err := t.tx.QueryRow(ctx, `SELECT `+strings.Join(counts, " + "), j.TenantID).Scan(&j.Total); err != nil {
			return wrap(err, "count rows to copy")
		}
	}
	j.Step, j.afterKey = steps[0].name, 0
	return nil
}

// buildStepOf returns the job's current step and its index.
func buildStepOf(j *sandboxJob) (buildStep, int, error) {
	steps := stepsFor(j.Mode)
	for k, s := range steps {
		if s.name == j.Step {
			return s, k, nil
		}
	}
	return buildStep{}, -1, fmt.Errorf("unknown step %q", j.Step)
}

// advance runs a one-shot step, or splits a copying step into chunks
// (after_key 1 records that it did), or, once its chunks are copied, moves
// on to the next step; after the last the sandbox is ready.
func (t *tx) advance(ctx context.Context, j *sandboxJob) error {
	s, i, err := buildStepOf(j)
	if err != nil {
		return err
	}
	switch {
	case s.key == "":
		args, err := t.buildArgs(ctx, j)
		if err != nil {
			return err
		}
		if _, err := t.tx.Exec(ctx, stepSQL(s, j.Mode), args...); err != nil {
			return wrap(err, s.name)
		}
	case j.afterKey == 0:
		if j.Chunks, err = t.planChunks(ctx, j, s); err != nil {
			return err
		}
		j.afterKey = 1
		if j.Chunks > 0 {
			return nil
		}
	default:
		if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM sandbox_chunks
			WHERE tenant_id = $1 AND job_id = $2 AND step = $3 AND NOT done`, j.TenantID, j.ID, s.name).Scan(&j.Chunks); err != nil {
			return wrap(err, "count chunks")
		}
		if j.Chunks > 0 {
			return nil
		}
		if _, err := t.tx.Exec(ctx, `DELETE FROM sandbox_chunks WHERE tenant_id = $1 AND job_id = $2 AND step = $3`,
			j.TenantID, j.ID, s.name); err != nil {
			return wrap(err, "drop chunks")
		}
	}
	j.afterKey = 0
	steps := stepsFor(j.Mode)
	if i+1 < len(steps) {
		j.Step = steps[i+1].name
		return nil
	}
	if _, err := t.tx.Exec(ctx, `UPDATE tenants SET ready = true, updated_at = $2 WHERE id = $1 AND retired_at IS NULL`,
		j.SandboxTenantID, t.now); err != nil {
		return wrap(err, "mark the sandbox ready")
	}
	j.State, j.Step, j.FinishedAt = casedesk.JobDone, stepDone, t.now
	return nil
}

// planChunks splits the rows a step copies into key ranges of about
// sandboxChunk rows each and records them; it returns how many there are.
func (t *tx) planChunks(ctx context.Context, j *sandboxJob, s buildStep) (int64, error) {
	top := j.marks[s.markOf]
	rows, err := t.tx.Query(ctx, fmt.Sprintf(`SELECT k FROM (
			SELECT %[1]s AS k, row_number() OVER (ORDER BY %[1]s) AS n FROM %[2]s WHERE tenant_id = $1 AND %[1]s <= $2) x
		WHERE n %% $3 = 0 ORDER BY k`, s.key, s.table), j.TenantID, top, t.db.sandboxChunk)
	if err != nil {
		return 0, wrap(err, s.name+": plan chunks")
	}
	bounds, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, wrap(err, s.name+": plan chunks")
	}
	var lo, hi []int64
	last := int64(0)
	for _, b := range append(bounds, top) {
		if b > last {
			lo, hi = append(lo, last), append(hi, b)
			last = b
		}
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO sandbox_chunks (tenant_id, job_id, step, lo, hi)
		SELECT $1, $2, $3, l, h FROM unnest($4::bigint[], $5::bigint[]) AS c (l, h)`, j.TenantID, j.ID, s.name, lo, hi)
	return int64(len(lo)), wrap(err, s.name+": plan chunks")
}

// BuildSandboxChunk copies one chunk of the job's current step.
func (t *tx) BuildSandboxChunk(ctx context.Context, tenantID, jobID int64) (bool, error) {
	j, err := scanSandboxJob(t.tx.QueryRow(ctx, `SELECT `+sandboxJobColumns+` FROM sandbox_jobs j
		WHERE j.tenant_id = $1 AND j.id = $2`, tenantID, jobID))
	if err != nil {
		return false, notFound(err, "sandbox job %d not found", jobID)
	}
	if j.State != casedesk.JobRunning {
		return false, nil
	}
	s, _, err := buildStepOf(j)
	if err != nil || s.key == "" {
		return false, nil // waiting, or a one-shot step: nothing to take
	}
	var lo, hi int64
	err = t.tx.QueryRow(ctx, `SELECT lo, hi FROM sandbox_chunks
		WHERE tenant_id = $1 AND job_id = $2 AND step = $3 AND NOT done
		ORDER BY lo LIMIT 1 FOR UPDATE SKIP LOCKED`, tenantID, jobID, s.name).Scan(&lo, &hi)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "claim a chunk")
	}
	if _, err := t.tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return false, wrap(err, "build sandbox")
	}
	args, err := t.buildArgs(ctx, j)
	if err != nil {
		return false, err
	}
	args[2], args[3] = lo, hi
	tag, err := t.tx.Exec(ctx, stepSQL(s, j.Mode), args...)
	if err != nil {
		return false, fmt.Errorf("sandbox job %d, step %q, keys %d-%d: %w", jobID, s.name, lo+1, hi, wrap(err, s.name))
	}
	// Last, as it locks the job's row until the commit: a cancelled job
	// (DeleteSandbox) keeps no chunk copied after it.
	res, err := t.tx.Exec(ctx, `
		WITH c AS (UPDATE sandbox_chunks SET done = true WHERE tenant_id = $1 AND job_id = $2 AND step = $3 AND lo = $4)
		UPDATE sandbox_jobs SET progress = progress + $5
		WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND step = $3`,
		tenantID, jobID, s.name, lo, tag.RowsAffected())
	if err != nil {
		return false, wrap(err, "record chunk")
	}
	if res.RowsAffected() == 0 {
		return false, casedesk.Errorf(casedesk.EUNAVAILABLE, "sandbox job %d is no longer running", jobID)
	}
	return true, nil
}

// argTypes declares the types of $1-$8 in every statement, whichever of
// them it uses.
const argTypes = `args AS (SELECT $1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bytea, $6::text, $7::text, $8::jsonb)`

// stepSQL returns a step's statement with the argument types declared.
func stepSQL(s buildStep, mode casedesk.SandboxMode) string {
	q := strings.TrimSpace(s.sql(mode == casedesk.SandboxAnonymized))
	if rest, ok := strings.CutPrefix(q, "WITH "); ok {
		return "WITH " + argTypes + ", " + rest
	}
	return "WITH " + argTypes + " " + q
}

// buildArgs are the statements' arguments ($1-$8) but the chunk's range.
func (t *tx) buildArgs(ctx context.Context, j *sandboxJob) ([]any, error) {
	var secret []byte
	var support string
	err := t.tx.QueryRow(ctx, `SELECT s.token_secret, p.support_address FROM tenants s, tenants p
		WHERE s.id = $1 AND p.id = $2`, j.SandboxTenantID, j.TenantID).Scan(&secret, &support)
	if err != nil {
		return nil, notFound(err, "sandbox tenant %d not found", j.SandboxTenantID)
	}
	// The pseudonyms' key is the sandbox's own secret, hashed apart from
	// its use for case tokens; it is never shown.
	salt := sha256.Sum256(append([]byte("casedesk sandbox pseudonyms\x00"), secret...))
	local, domain, ok := strings.Cut(strings.ToLower(support), "@")
	if !ok || local == "" {
		local, domain = "@", "@" // matches no address
	}
	marks, err := json.Marshal(j.marks)
	if err != nil {
		return nil, err
	}
	return []any{j.TenantID, j.SandboxTenantID, int64(0), int64(0), salt[:], local, domain, marks}, nil
}

// purgeSteps delete a retired sandbox's rows, children before parents;
// each call deletes up to purgeChunk rows of the first table that has
// some. Links that would stop a delete are cut first.
var purgeSteps = []string{
	`message_search`, `search_queue`, `attachments`, `message_raw`, `outbox`, `events`, `case_participants`,
	`messages`,
	`UPDATE cases SET merged_into = NULL, follow_up_of = NULL
		WHERE tenant_id = $1 AND (merged_into IS NOT NULL OR follow_up_of IS NOT NULL)`,
	`cases`, `api_keys`, `audit_log`, `users`, `roles`,
	`UPDATE accounts SET billing_contact_id = NULL WHERE tenant_id = $1 AND billing_contact_id IS NOT NULL`,
	`contacts`, `invoices`, `accounts`, `blobs`, `quarantine`,
}

const purgeChunk = 50000

// PurgeRetiredTenant deletes part of one retired sandbox.
func (t *tx) PurgeRetiredTenant(ctx context.Context) (bool, error) {
	var id int64
	err := t.tx.QueryRow(ctx, `SELECT id FROM tenants WHERE retired_at IS NOT NULL
		ORDER BY retired_at, id LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "find a retired tenant")
	}
	// The append-only history of a deleted tenant may go (see migration
	// 00001).
	if _, err := t.tx.Exec(ctx, `SELECT set_config('casedesk.purge_tenant', $1, true)`, fmt.Sprint(id)); err != nil {
		return false, wrap(err, "purge")
	}
	for _, s := range purgeSteps {
		q := s
		if !strings.Contains(s, " ") {
			q = `DELETE FROM ` + s + ` WHERE ctid = ANY (ARRAY(SELECT ctid FROM ` + s + ` WHERE tenant_id = $1 LIMIT ` +
				fmt.Sprint(purgeChunk) + `))`
		}
		tag, err := t.tx.Exec(ctx, q, id)
		if err != nil {
			return false, wrap(err, "purge retired tenant")
		}
		if tag.RowsAffected() > 0 && tag.RowsAffected() == purgeChunk {
			return true, nil // more of this table in the next call
		}
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM sandbox_jobs WHERE sandbox_tenant_id = $1 AND state NOT IN ('queued', 'running')`, id); err != nil {
		return false, wrap(err, "purge retired tenant's jobs")
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, id); err != nil {
		return false, wrap(err, "purge retired tenant")
	}
	return true, nil
}
