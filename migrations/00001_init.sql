-- The foundation: tokens, versioned policies, enforcement decisions, the
-- idempotency ledger, and the audit log's staging table that every change
-- of state writes to in its own transaction.

-- +goose Up
CREATE TABLE tokens (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL,
    advertiser_id text,
    -- SHA-256 of the bearer secret; the secret itself is shown once and never stored.
    hash          bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    created_by    text NOT NULL,
    revoked_at    timestamptz,
    CHECK ((role = 'advertiser') = (advertiser_id IS NOT NULL))
);
CREATE INDEX tokens_name ON tokens (name);

CREATE TABLE policies (
    code        text NOT NULL,
    version     int  NOT NULL CHECK (version > 0),
    title       text NOT NULL,
    text        text NOT NULL,
    text_sha256 text NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL,
    PRIMARY KEY (code, version)
);

CREATE TABLE decisions (
    id                  text PRIMARY KEY,
    advertiser_id       text NOT NULL,
    ad_id               text,
    action              text NOT NULL,
    policy_code         text NOT NULL,
    policy_version      int  NOT NULL,
    policy_text_sha256  text NOT NULL,
    ground              text NOT NULL,
    legal_reference     text,
    explanation         text NOT NULL,
    facts               text NOT NULL,
    source              text NOT NULL,
    automated_detection boolean NOT NULL,
    automated_decision  text NOT NULL,
    territorial_scope   text[] NOT NULL DEFAULT '{}',
    content_type        text[] NOT NULL DEFAULT '{}',
    ends_at             timestamptz,
    status              text NOT NULL,
    decided_by          text NOT NULL,
    decided_at          timestamptz NOT NULL,
    appeal_deadline     timestamptz NOT NULL,
    reversed_at         timestamptz,
    reversed_by_appeal  text,
    -- when the statement of reasons reached the advertiser (notice.delivered)
    notified_at         timestamptz,
    FOREIGN KEY (policy_code, policy_version) REFERENCES policies (code, version)
);
-- Lists are keyset-paginated on id (UUIDv7, so time-ordered) within a filter.
CREATE INDEX decisions_advertiser ON decisions (advertiser_id, id);
CREATE INDEX decisions_policy ON decisions (policy_code, policy_version, id);

-- A retried write with the same key replays the reply stored here; the row
-- commits in the same transaction as the change it answers.
CREATE TABLE idempotency_keys (
    actor        text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status       int,
    body         bytea,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (actor, key)
);

-- Writers append here concurrently, in their own transactions; the
-- integrator gives committed rows their dense leaf indices later. xid is
-- the writing transaction's id: every row with xid below the oldest running
-- transaction is final, which lets the integrator take them without a gap.
CREATE TABLE audit_staging (
    id           bigserial PRIMARY KEY,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    type         text NOT NULL,
    actor        text NOT NULL,
    subject_kind text NOT NULL,
    subject_id   text NOT NULL,
    entry        bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_staging_xid ON audit_staging (xid, id);

-- +goose Down
DROP TABLE audit_staging;
DROP TABLE idempotency_keys;
DROP TABLE decisions;
DROP TABLE policies;
DROP TABLE tokens;
