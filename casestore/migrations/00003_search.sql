-- +goose Up
-- Case search: full text over case subjects and the mail on cases, and
-- partial, case-insensitive matching of contact and account names.

-- pg_trgm is a trusted extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The words of a message that search sees: its subject and the first 4,000
-- characters of its text. The cut keeps to_tsvector far from its 1 MB limit
-- (a longer tsvector is an error, which would refuse the mail) and bounds
-- the work per message, which grows with the text (about 65 us per KB on
-- the 2-core test machine). Replies quote the thread below the new text,
-- and the quoted messages are on the same case, indexed with their own
-- starts. The indexer calls it.
CREATE FUNCTION casedesk_search_vector(subject text, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN to_tsvector('simple'::regconfig, left(subject || ' ' || body, 4000));

-- Message text is indexed after the fact, not in the ingest transaction:
-- computing the vectors there halved ingest (BenchmarkProcessor, batch 200,
-- one mailbox: about 3,400 -> 1,650 messages/s), and the GIN pending-list
-- merge stalled the insert that found the list full. Ingest only queues the
-- new message's id (one small row, no tsvector work); the search indexer
-- (IndexMessageText) moves queued messages into message_search in batches.
-- Search therefore lags ingest by the indexer's delay, seconds at most.
-- The queue has no foreign key, so the insert checks nothing; the indexer
-- joins messages and drops ids that have gone.
CREATE TABLE search_queue (
    message_id bigint PRIMARY KEY,
    tenant_id  bigint NOT NULL
);

CREATE TABLE message_search (
    tenant_id  bigint NOT NULL,
    message_id bigint NOT NULL,
    vector     tsvector NOT NULL,
    PRIMARY KEY (tenant_id, message_id),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX message_search_vector ON message_search USING gin (vector);

-- Mail stored before this migration is queued once, oldest first.
INSERT INTO search_queue (message_id, tenant_id) SELECT id, tenant_id FROM messages;

-- The subject is not touched by the message_count bump, so that update
-- stays HOT.
CREATE INDEX cases_search ON cases USING gin (to_tsvector('simple'::regconfig, subject));
-- Merging repoints the cases merged into the merged case.
CREATE INDEX cases_merged ON cases (tenant_id, merged_into) WHERE merged_into IS NOT NULL;

-- Partial matches (ILIKE '%...%') of requester and account names.
CREATE INDEX contacts_search ON contacts USING gin (email gin_trgm_ops, name gin_trgm_ops);
CREATE INDEX accounts_search ON accounts USING gin (name gin_trgm_ops);

-- +goose Down
DROP INDEX accounts_search, contacts_search, cases_merged, cases_search;
DROP TABLE message_search, search_queue;
DROP FUNCTION casedesk_search_vector;
-- pg_trgm stays: dropping an extension could break objects made since.
