-- +goose Up
-- The instance name of the notify worker that holds a claim; NULL when the
-- item is not claimed, or when its worker has no name. A running worker
-- holds a session advisory lock named after its instance, so a sweeper
-- that can take that lock knows the worker is gone and hands its claims
-- out again at once, instead of after the claim timeout. Few rows are in
-- "sending" at any time, and the outbox_sending index finds them.
ALTER TABLE outbox ADD COLUMN claimed_by text;

-- +goose Down
ALTER TABLE outbox DROP COLUMN claimed_by;
