-- +goose Up
-- The whole domain. Every tenant-scoped table has tenant_id first in its
-- primary key, in every unique key and lookup index, and in every foreign key
-- between tenant tables, so the schema can be distributed by tenant.

CREATE TABLE tenants (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug             text NOT NULL UNIQUE,
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('production', 'sandbox')),
    parent_id        bigint REFERENCES tenants (id),
    support_address  text NOT NULL DEFAULT '',
    token_secret     bytea NOT NULL CHECK (length(token_secret) >= 32),
    settings         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CHECK ((kind = 'sandbox') = (parent_id IS NOT NULL))
);
-- A production tenant has at most one sandbox.
CREATE UNIQUE INDEX tenants_one_sandbox ON tenants (parent_id) WHERE kind = 'sandbox';

-- One row per tenant, updated with RETURNING inside the case-creating
-- transaction: numbers are gapless and never repeat.
CREATE TABLE case_counters (
    tenant_id    bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_number  bigint NOT NULL DEFAULT 0
);

CREATE TABLE accounts (
    tenant_id           bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    name                text NOT NULL,
    domains             text[] NOT NULL DEFAULT '{}',
    sla_tier            text NOT NULL DEFAULT '',
    billing_contact_id  bigint,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX accounts_domains ON accounts USING gin (domains);
CREATE INDEX accounts_name ON accounts (tenant_id, lower(name));

CREATE TABLE contacts (
    tenant_id       bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    email           text NOT NULL,
    name            text NOT NULL DEFAULT '',
    phone           text NOT NULL DEFAULT '',
    account_id      bigint,
    bouncing_since  timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, lower(email));
CREATE INDEX contacts_account ON contacts (tenant_id, account_id) WHERE account_id IS NOT NULL;

ALTER TABLE accounts ADD FOREIGN KEY (tenant_id, billing_contact_id)
    REFERENCES contacts (tenant_id, id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE roles (
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    name         text NOT NULL,
    permissions  text[] NOT NULL DEFAULT '{}',
    built_in     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE users (
    tenant_id       bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    email           text NOT NULL,
    name            text NOT NULL DEFAULT '',
    role_id         bigint NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    last_active_at  timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id)
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email));

-- API keys carry their tenant in the key text, so the lookup is by
-- (tenant_id, hash) and stays tenant-local.
CREATE TABLE api_keys (
    tenant_id     bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    user_id       bigint NOT NULL,
    name          text NOT NULL DEFAULT '',
    hash          bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

CREATE TABLE cases (
    tenant_id            bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                   bigint GENERATED ALWAYS AS IDENTITY,
    number               bigint NOT NULL CHECK (number > 0),
    subject              text NOT NULL DEFAULT '',
    status               text NOT NULL CHECK (status IN ('new', 'open', 'pending', 'solved', 'closed')),
    priority             text NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    category             text NOT NULL,
    requester_id         bigint NOT NULL,
    account_id           bigint,
    assignee_id          bigint,
    fields               jsonb NOT NULL DEFAULT '{}',
    follow_up_of         bigint,
    merged_into          bigint,
    error_fingerprint    text,
    occurrences          integer NOT NULL DEFAULT 1,
    message_count        integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    first_response_at    timestamptz,
    pending_since        timestamptz,
    solved_at            timestamptz,
    closed_at            timestamptz,
    last_agent_reply_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, requester_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id),
    FOREIGN KEY (tenant_id, follow_up_of) REFERENCES cases (tenant_id, id),
    FOREIGN KEY (tenant_id, merged_into) REFERENCES cases (tenant_id, id)
) WITH (fillfactor = 80);
-- Every appended message bumps message_count and updated_at. No index
-- covers those columns and pages keep free space (fillfactor), so the
-- update is HOT: it touches none of the indexes below. For the same reason
-- there is deliberately no index on updated_at.
CREATE INDEX cases_status ON cases (tenant_id, status, created_at);
CREATE INDEX cases_created ON cases (tenant_id, created_at, id);
CREATE INDEX cases_requester ON cases (tenant_id, requester_id);
CREATE INDEX cases_account ON cases (tenant_id, account_id) WHERE account_id IS NOT NULL;
CREATE INDEX cases_assignee ON cases (tenant_id, assignee_id) WHERE assignee_id IS NOT NULL;
-- Auto-resolve scans waiting cases, however old.
CREATE INDEX cases_waiting ON cases (tenant_id, status, last_agent_reply_at)
    WHERE status IN ('pending', 'solved');
-- Repeats of an error join the open error-report case.
CREATE INDEX cases_fingerprint ON cases (tenant_id, error_fingerprint)
    WHERE error_fingerprint IS NOT NULL AND status NOT IN ('solved', 'closed');

CREATE TABLE case_participants (
    tenant_id   bigint NOT NULL,
    case_id     bigint NOT NULL,
    contact_id  bigint NOT NULL,
    added_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, case_id, contact_id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id)
);
CREATE INDEX case_participants_contact ON case_participants (tenant_id, contact_id);

CREATE TABLE messages (
    tenant_id    bigint NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    case_id      bigint NOT NULL,
    message_id   text CHECK (message_id <> ''),
    raw_sha256   bytea,
    in_reply_to  text NOT NULL DEFAULT '',
    refs         text[] NOT NULL DEFAULT '{}',
    direction    text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'note')),
    author_kind  text NOT NULL CHECK (author_kind IN ('customer', 'agent', 'system')),
    contact_id   bigint,
    user_id      bigint,
    from_addr    jsonb NOT NULL DEFAULT '{}',
    to_addrs     jsonb NOT NULL DEFAULT '[]',
    cc_addrs     jsonb NOT NULL DEFAULT '[]',
    subject      text NOT NULL DEFAULT '',
    text_body    text NOT NULL DEFAULT '',
    html_body    text NOT NULL DEFAULT '',
    class        text NOT NULL DEFAULT '',
    mailbox      text NOT NULL DEFAULT '',
    raw_size     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);
-- "Which message has this Message-ID": rule 1 (duplicates) and rule 3.
CREATE UNIQUE INDEX messages_message_id ON messages (tenant_id, message_id)
    WHERE message_id IS NOT NULL;
-- Mail without a Message-ID is deduplicated by its raw bytes.
CREATE UNIQUE INDEX messages_raw_sha256 ON messages (tenant_id, raw_sha256)
    WHERE message_id IS NULL AND raw_sha256 IS NOT NULL;
CREATE INDEX messages_case ON messages (tenant_id, case_id, id);

-- Raw RFC 5322 bytes, compressed by the application (zstd), kept apart so
-- listings never read them. STORAGE EXTERNAL: already compressed, so
-- PostgreSQL should not try again.
CREATE TABLE message_raw (
    tenant_id    bigint NOT NULL,
    message_id   bigint NOT NULL,
    compression  text NOT NULL CHECK (compression IN ('zstd', 'none')),
    data         bytea NOT NULL,
    PRIMARY KEY (tenant_id, message_id),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE message_raw ALTER COLUMN data SET STORAGE EXTERNAL;

-- Attachment content, stored once per tenant and addressed by sha256.
CREATE TABLE blobs (
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sha256       bytea NOT NULL CHECK (length(sha256) = 32),
    size         bigint NOT NULL,
    compression  text NOT NULL CHECK (compression IN ('zstd', 'none')),
    data         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, sha256)
);
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE attachments (
    tenant_id     bigint NOT NULL,
    message_id    bigint NOT NULL,
    position      integer NOT NULL,
    sha256        bytea NOT NULL,
    name          text NOT NULL DEFAULT '',
    content_type  text NOT NULL DEFAULT 'application/octet-stream',
    content_id    text NOT NULL DEFAULT '',
    inline        boolean NOT NULL DEFAULT false,
    size          bigint NOT NULL,
    PRIMARY KEY (tenant_id, message_id, position),
    FOREIGN KEY (tenant_id, message_id) REFERENCES messages (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, sha256) REFERENCES blobs (tenant_id, sha256)
);
CREATE INDEX attachments_blob ON attachments (tenant_id, sha256);

CREATE TABLE events (
    tenant_id   bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    case_id     bigint NOT NULL,
    kind        text NOT NULL,
    actor       jsonb NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);
CREATE INDEX events_case ON events (tenant_id, case_id, id);

CREATE TABLE audit_log (
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    user_id      bigint,
    action       text NOT NULL,
    target_kind  text NOT NULL DEFAULT '',
    target_id    text NOT NULL DEFAULT '',
    data         jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_created ON audit_log (tenant_id, created_at);
CREATE INDEX audit_log_target ON audit_log (tenant_id, target_kind, target_id);

-- Events and the audit log are append-only. The only way to remove rows is
-- deleting a whole tenant (a sandbox), which must name that tenant first:
--   SET LOCAL casedesk.purge_tenant = '<id>'
-- +goose StatementBegin
CREATE FUNCTION forbid_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.tenant_id::text = current_setting('casedesk.purge_tenant', true) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_history_change();
-- +goose StatementBegin
CREATE FUNCTION forbid_history_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_truncate();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_truncate();

CREATE TABLE outbox (
    tenant_id        bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    case_id          bigint,
    kind             text NOT NULL,
    state            text NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    to_addr          text NOT NULL,
    message_id       text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}',
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_error       text NOT NULL DEFAULT '',
    claimed_at       timestamptz,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, message_id),
    FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)
);
-- Workers claim due rows of every tenant; the index holds only waiting rows.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_sending ON outbox (claimed_at) WHERE state = 'sending';
-- Acknowledgement rate limit per recipient.
CREATE INDEX outbox_recipient ON outbox (tenant_id, lower(to_addr), kind, created_at);

CREATE TABLE mailbox_checkpoints (
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mailbox      text NOT NULL,
    uidvalidity  bigint NOT NULL,
    last_uid     bigint NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, mailbox)
);

-- Mail that could not be processed: kept raw, never dropped.
CREATE TABLE quarantine (
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    mailbox      text NOT NULL DEFAULT '',
    uid          bigint NOT NULL DEFAULT 0,
    error        text NOT NULL,
    size         integer NOT NULL,
    raw_sha256   bytea NOT NULL,
    compression  text NOT NULL CHECK (compression IN ('zstd', 'none')),
    raw          bytea NOT NULL,
    received_at  timestamptz NOT NULL,
    resolved_at  timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, raw_sha256)
);
ALTER TABLE quarantine ALTER COLUMN raw SET STORAGE EXTERNAL;
CREATE INDEX quarantine_open ON quarantine (tenant_id, received_at) WHERE resolved_at IS NULL;

-- Per-tenant template overrides, validated before they are saved.
CREATE TABLE template_overrides (
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL,
    lang        text NOT NULL,
    subject     text NOT NULL DEFAULT '',
    text_body   text NOT NULL,
    html_body   text NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name, lang)
);

CREATE TABLE invoices (
    tenant_id     bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    account_id    bigint NOT NULL,
    number        text NOT NULL,
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    amount_minor  bigint NOT NULL,
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status        text NOT NULL CHECK (status IN ('open', 'paid', 'overdue', 'void')),
    due_date      date NOT NULL,
    lines         jsonb NOT NULL DEFAULT '[]',
    sent_at       timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id),
    CHECK (period_end >= period_start)
);
CREATE INDEX invoices_account ON invoices (tenant_id, account_id);
CREATE INDEX invoices_due ON invoices (tenant_id, status, due_date);

CREATE TABLE sandbox_jobs (
    tenant_id          bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                 bigint GENERATED ALWAYS AS IDENTITY,
    sandbox_tenant_id  bigint,
    kind               text NOT NULL CHECK (kind IN ('create_empty', 'clone_anonymised', 'clone_full', 'delete')),
    state              text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    progress           bigint NOT NULL DEFAULT 0,
    total              bigint NOT NULL DEFAULT 0,
    error              text NOT NULL DEFAULT '',
    requested_by       bigint,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX sandbox_jobs_queued ON sandbox_jobs (created_at) WHERE state = 'queued';

-- +goose Down
DROP TABLE sandbox_jobs, invoices, template_overrides, quarantine,
    mailbox_checkpoints, outbox, audit_log, events, attachments, blobs,
    message_raw, messages, case_participants, cases, api_keys, users, roles,
    accounts, contacts, case_counters, tenants CASCADE;
DROP FUNCTION forbid_history_change, forbid_history_truncate;
