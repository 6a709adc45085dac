-- +goose Up
-- The outbox and the search queue are queues: every row is written, then
-- updated or deleted soon after, and the claims scan their partial indexes
-- from the oldest entry. Until VACUUM removes them, the entries of rows
-- long done stay in those indexes and every claim walks over them. A
-- scale factor of 0 has them vacuumed after a fixed number of dead rows
-- rather than after 20% of a table that only grows (the outbox keeps sent
-- items). casedesk's db-maintenance job reads the same settings when
-- autovacuum is off.
ALTER TABLE outbox SET (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
ALTER TABLE search_queue SET (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

-- Every message stored on a case updates its counters (message_count,
-- updated_at), no indexed column among them: room left on each page lets
-- that new row version stay on the page (a HOT update) and skip the
-- case's ten indexes. Pages written from now on keep 20% free.
ALTER TABLE cases SET (fillfactor = 80);

-- +goose Down
ALTER TABLE cases RESET (fillfactor);
ALTER TABLE outbox RESET (autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor);
ALTER TABLE search_queue RESET (autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor);
