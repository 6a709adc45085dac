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
-- starts. Queries call this same function, so they always match the index
-- expression (PostgreSQL inlines it in both).
CREATE FUNCTION casedesk_search_vector(subject text, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN to_tsvector('simple'::regconfig, left(subject || ' ' || body, 4000));

-- Maintained in the ingest transaction, which costs ingest dearly: with it
-- BenchmarkProcessor (batch 200, one mailbox) went from about 3,400 to 1,650
-- messages/s, nearly all of it computing the vectors. fastupdate (the
-- default) queues new entries in a pending list merged in bulk; the insert
-- that finds the list full does the merge and waits for it.
CREATE INDEX messages_search ON messages USING gin (casedesk_search_vector(subject, text_body));
-- The subject is not touched by the message_count bump, so that update
-- stays HOT.
CREATE INDEX cases_search ON cases USING gin (to_tsvector('simple'::regconfig, subject));
-- Merging repoints the cases merged into the merged case.
CREATE INDEX cases_merged ON cases (tenant_id, merged_into) WHERE merged_into IS NOT NULL;

-- Partial matches (ILIKE '%...%') of requester and account names.
CREATE INDEX contacts_search ON contacts USING gin (email gin_trgm_ops, name gin_trgm_ops);
CREATE INDEX accounts_search ON accounts USING gin (name gin_trgm_ops);

-- +goose Down
DROP INDEX accounts_search, contacts_search, cases_merged, cases_search, messages_search;
DROP FUNCTION casedesk_search_vector;
-- pg_trgm stays: dropping an extension could break objects made since.
