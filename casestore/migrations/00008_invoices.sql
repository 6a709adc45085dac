-- +goose Up
-- Invoices (casedesk.InvoiceOps). An invoice has an issue date, from which
-- the invoices job sends it, and the day before it is due; rows written
-- before this migration take the day they were created, or their due date
-- if that is earlier, so that every row keeps due_date >= issue_date.
ALTER TABLE invoices ADD COLUMN issue_date date;
UPDATE invoices SET issue_date = least((created_at AT TIME ZONE 'UTC')::date, due_date);
ALTER TABLE invoices ALTER COLUMN issue_date SET NOT NULL;
ALTER TABLE invoices ADD CONSTRAINT invoices_due_after_issue CHECK (due_date >= issue_date);

-- reminded_at is when the overdue reminder was queued, in the transaction
-- that queued it; with sent_at it makes the job's mail once-only.
ALTER TABLE invoices ADD COLUMN reminded_at timestamptz;

-- Numbers are one path segment of the API and part of a file name.
-- NOT VALID: rows written before keep their numbers (the API sanitises
-- those where it must); every new or changed row is checked.
ALTER TABLE invoices ADD CONSTRAINT invoices_number_format
    CHECK (number ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$') NOT VALID;

-- The job pages through each tenant's invoices that may still need mail,
-- by ID; paid and void invoices, and those sent and reminded, stay out of
-- the index, so it holds only a tenant's current invoices.
CREATE INDEX invoices_mail_due ON invoices (tenant_id, id)
    WHERE status IN ('open', 'overdue') AND (sent_at IS NULL OR reminded_at IS NULL);

-- Listings filter by period.
CREATE INDEX invoices_period ON invoices (tenant_id, period_start, period_end);

-- +goose Down
DROP INDEX invoices_period;
DROP INDEX invoices_mail_due;
ALTER TABLE invoices DROP CONSTRAINT invoices_number_format;
ALTER TABLE invoices DROP COLUMN reminded_at;
ALTER TABLE invoices DROP CONSTRAINT invoices_due_after_issue;
ALTER TABLE invoices DROP COLUMN issue_date;
