-- +goose Up
-- Sandboxes: a tenant of kind sandbox, built in the background by a job
-- that copies its production tenant in steps (casestore/sandbox.go).

-- A sandbox being built is not ready: its keys are refused until the last
-- step marks it ready, in the same transaction that finishes the job.
ALTER TABLE tenants ADD COLUMN ready boolean NOT NULL DEFAULT true;
-- A replaced or deleted sandbox is retired at once (its keys stop working,
-- a new sandbox may take its place) and purged in the background.
ALTER TABLE tenants ADD COLUMN retired_at timestamptz;
DROP INDEX tenants_one_sandbox;
CREATE UNIQUE INDEX tenants_one_sandbox ON tenants (parent_id)
    WHERE kind = 'sandbox' AND retired_at IS NULL;
CREATE INDEX tenants_retired ON tenants (retired_at) WHERE retired_at IS NOT NULL;

-- Where a build stands: the step it is in and whether that step's chunks
-- are planned (after_key 1; see sandbox_chunks); the highest ID of each
-- source table when the build began (rows added later are not copied, so
-- what is copied is closed under references); and the first transaction
-- ID not yet assigned then: the build copies only once every transaction
-- older than that has ended.
ALTER TABLE sandbox_jobs
    ADD COLUMN step text NOT NULL DEFAULT '',
    ADD COLUMN after_key bigint NOT NULL DEFAULT 0,
    ADD COLUMN marks jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN xid_horizon bigint NOT NULL DEFAULT 0;
CREATE INDEX sandbox_jobs_sandbox ON sandbox_jobs (tenant_id, created_at);

-- The chunks of the step a build is in: key ranges (lo, hi] of the table
-- it copies, claimed FOR UPDATE SKIP LOCKED by concurrent builders, each
-- marked done in the transaction that copies it.
CREATE TABLE sandbox_chunks (
    tenant_id  bigint NOT NULL,
    job_id     bigint NOT NULL,
    step       text NOT NULL,
    lo         bigint NOT NULL,
    hi         bigint NOT NULL,
    done       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, job_id, step, lo),
    FOREIGN KEY (tenant_id, job_id) REFERENCES sandbox_jobs (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sandbox_jobs_open ON sandbox_jobs (created_at) WHERE state IN ('queued', 'running');

-- Attachments are not copied into sandboxes: their metadata is, without
-- content (sha256 NULL).
ALTER TABLE attachments ALTER COLUMN sha256 DROP NOT NULL;

-- A sandbox copy of a message keeps its ID (IDs are unique per tenant),
-- so the search queue is keyed by tenant too.
ALTER TABLE search_queue DROP CONSTRAINT search_queue_pkey;
ALTER TABLE search_queue ADD PRIMARY KEY (message_id, tenant_id);

-- Pseudonyms for anonymised sandboxes: a keyed hash (the key is the
-- sandbox's own secret, never shown), so the same address gets the same
-- pseudonym everywhere in the sandbox and nothing leads back to it.
--
-- The functions are STABLE (convert_to and jsonb_build_object are), so that
-- PostgreSQL inlines them into the copying statements: called as functions
-- they cost 10-50 us a row, which is most of a million-message clone. Those
-- that need a subquery (over JSON arrays and objects) cannot be inlined;
-- they run only for the rare values that need them.
CREATE FUNCTION casedesk_pseudo(salt bytea, v text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN encode(sha256(salt || convert_to(lower(btrim(v)), 'UTF8')), 'hex');

CREATE FUNCTION casedesk_anon_domain(salt bytea, domain text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN coalesce(domain, '') = '' THEN '' ELSE
        'd' || left(casedesk_pseudo(salt, 'domain:' || domain), 10) || '.example' END;

CREATE FUNCTION casedesk_anon_email(salt bytea, email text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN coalesce(email, '') = '' THEN '' ELSE
        'p' || left(casedesk_pseudo(salt, 'email:' || email), 16) || '@' ||
        casedesk_anon_domain(salt, split_part(email, '@', 2)) END;

-- A person's name comes from their address: every message from one person
-- shows the same name, whatever their mail client put in From.
CREATE FUNCTION casedesk_anon_name(salt bytea, email text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN coalesce(email, '') = '' THEN '' ELSE
        'Person ' || upper(left(casedesk_pseudo(salt, 'email:' || email), 6)) END;

-- The support address and its plus-addresses (keep_local, keep_domain)
-- stay as they are: they are the vendor's, not a client's.
CREATE FUNCTION casedesk_anon_addr(salt bytea, a jsonb, keep_local text, keep_domain text) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE
        WHEN jsonb_typeof(a) IS DISTINCT FROM 'object' OR coalesce(a->>'email', '') = '' THEN '{}'::jsonb
        WHEN lower(split_part(a->>'email', '@', 2)) = keep_domain
            AND (lower(split_part(a->>'email', '@', 1)) = keep_local
                 OR lower(split_part(a->>'email', '@', 1)) LIKE keep_local || '+%') THEN a
        ELSE jsonb_build_object('name', casedesk_anon_name(salt, a->>'email'),
                                'email', casedesk_anon_email(salt, a->>'email')) END;

CREATE FUNCTION casedesk_anon_addr_list(salt bytea, a jsonb, keep_local text, keep_domain text) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT coalesce(jsonb_agg(casedesk_anon_addr(salt, e, keep_local, keep_domain) ORDER BY i), '[]'::jsonb)
            FROM jsonb_array_elements(a) WITH ORDINALITY AS x (e, i));

CREATE FUNCTION casedesk_anon_addrs(salt bytea, a jsonb, keep_local text, keep_domain text) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE
        WHEN jsonb_typeof(a) IS DISTINCT FROM 'array' OR jsonb_array_length(a) = 0 THEN '[]'::jsonb
        WHEN jsonb_array_length(a) = 1 THEN jsonb_build_array(casedesk_anon_addr(salt, a->0, keep_local, keep_domain))
        ELSE casedesk_anon_addr_list(salt, a, keep_local, keep_domain) END;

-- "Re: Printer on fire" and "[Case #7] Printer on fire" get the
-- pseudonym of "Printer on fire", so a thread still reads as one.
CREATE FUNCTION casedesk_anon_subject(salt bytea, s text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN btrim(coalesce(s, '')) = '' THEN '' ELSE
        CASE WHEN s ~* '^\s*(re|aw|sv|antw|fwd?|fw|wg|tr)\s*:' THEN 'Re: ' ELSE '' END ||
        'Subject ' || upper(left(casedesk_pseudo(salt, 'subject:' || regexp_replace(
            s, '^\s*((re|aw|sv|antw|fwd?|fw|wg|tr)\s*:\s*|\[[^]]*\]\s*)*', '', 'i')), 8)) END;

-- Event details keep numbers, booleans and the short lower-case words of a
-- few known keys (statuses, kinds); any other value is replaced.
CREATE FUNCTION casedesk_anon_event_object(d jsonb) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT coalesce(jsonb_object_agg(k, CASE
            WHEN jsonb_typeof(v) IN ('number', 'boolean', 'null') THEN v
            WHEN jsonb_typeof(v) = 'string'
                AND k IN ('from', 'to', 'status', 'kind', 'priority', 'category', 'reason', 'action', 'state')
                AND v #>> '{}' ~ '^[a-z0-9_.]{1,32}$' THEN v
            ELSE '"[anonymised]"'::jsonb END), '{}'::jsonb)
         FROM jsonb_each(d) AS x (k, v));

CREATE FUNCTION casedesk_anon_event_data(d jsonb) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN jsonb_typeof(d) IS DISTINCT FROM 'object' OR d = '{}'::jsonb THEN '{}'::jsonb
        ELSE casedesk_anon_event_object(d) END;

-- Custom case fields (error reports: product, error id, stack, the user's
-- words) keep their keys; every value but numbers and booleans goes.
CREATE FUNCTION casedesk_anon_fields_object(d jsonb) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT coalesce(jsonb_object_agg(k, CASE
            WHEN jsonb_typeof(v) IN ('number', 'boolean', 'null') THEN v
            ELSE '"[anonymised]"'::jsonb END), '{}'::jsonb)
         FROM jsonb_each(d) AS x (k, v));

CREATE FUNCTION casedesk_anon_fields(d jsonb) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN CASE WHEN jsonb_typeof(d) IS DISTINCT FROM 'object' OR d = '{}'::jsonb THEN '{}'::jsonb
        ELSE casedesk_anon_fields_object(d) END;

-- +goose Down
DROP FUNCTION casedesk_anon_fields, casedesk_anon_fields_object, casedesk_anon_event_data,
    casedesk_anon_event_object, casedesk_anon_subject, casedesk_anon_addrs, casedesk_anon_addr_list,
    casedesk_anon_addr, casedesk_anon_name, casedesk_anon_email, casedesk_anon_domain, casedesk_pseudo;
ALTER TABLE search_queue DROP CONSTRAINT search_queue_pkey;
ALTER TABLE search_queue ADD PRIMARY KEY (message_id);
DELETE FROM attachments WHERE sha256 IS NULL;
ALTER TABLE attachments ALTER COLUMN sha256 SET NOT NULL;
DROP TABLE sandbox_chunks;
DROP INDEX sandbox_jobs_open, sandbox_jobs_sandbox;
ALTER TABLE sandbox_jobs DROP COLUMN xid_horizon, DROP COLUMN marks, DROP COLUMN after_key, DROP COLUMN step;
DROP INDEX tenants_retired, tenants_one_sandbox;
CREATE UNIQUE INDEX tenants_one_sandbox ON tenants (parent_id) WHERE kind = 'sandbox';
ALTER TABLE tenants DROP COLUMN retired_at, DROP COLUMN ready;
