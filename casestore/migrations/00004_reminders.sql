-- +goose Up
-- Auto-resolve (package jobs) sends one reminder per wait on the customer.
-- reminded_for is the start of the wait the last reminder was for (the
-- case's waiting clock: the later of last_agent_reply_at and
-- pending_since); a reminder is due again only when the clock has moved,
-- because an agent wrote again or the case was set pending again. No index
-- covers it, so marking a case keeps the update HOT.
ALTER TABLE cases ADD COLUMN reminded_for timestamptz;

-- The job pages through each tenant's waiting cases by ID (keyset) and
-- locks the due ones; closed and merged cases, nearly all of a tenant's
-- history, stay out of the index.
CREATE INDEX cases_due ON cases (tenant_id, id)
    WHERE status IN ('pending', 'solved') AND merged_into IS NULL;

-- +goose Down
DROP INDEX cases_due;
ALTER TABLE cases DROP COLUMN reminded_for;
