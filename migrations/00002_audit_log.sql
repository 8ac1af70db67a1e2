-- The tamper-evident log: dense leaves, the Merkle tree's node hashes,
-- signed checkpoints. Only the integrator writes these tables, and only by
-- INSERT: triggers below reject every UPDATE, DELETE and TRUNCATE.
--
-- Least privilege: the service should connect as a login role that is a
-- member of docket_app (created here when absent; roles are cluster-wide):
--
--   CREATE ROLE docket LOGIN PASSWORD '...' IN ROLE docket_app;
--
-- docket_app may only INSERT and SELECT the log tables (audit_staging,
-- audit_leaves, audit_nodes, audit_checkpoints) and read and advance the
-- integrator's watermark (audit_integrator, which is bookkeeping, not
-- log). Migrations run as the owner; grants on the domain's own tables
-- belong to the migrations that create them. The triggers are the second
-- line: they hold even for the owner, and are ENABLE ALWAYS so that
-- session_replication_role = replica does not skip them. Only a superuser
-- or the owner, by ALTER TABLE ... DISABLE TRIGGER, can get around them,
-- and what they then change is what `docket verify` detects.

-- +goose Up
CREATE TABLE audit_leaves (
    idx           bigint PRIMARY KEY CHECK (idx >= 0),
    staging_id    bigint NOT NULL UNIQUE REFERENCES audit_staging (id),
    leaf_hash     bytea  NOT NULL,
    integrated_at timestamptz NOT NULL DEFAULT now()
);

-- Every complete subtree's hash above the leaves, so that a proof costs
-- O(log n) reads. Level 0, the leaf hashes, lives in audit_leaves.
CREATE TABLE audit_nodes (
    level int    NOT NULL CHECK (level > 0),
    idx   bigint NOT NULL,
    hash  bytea  NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_checkpoints (
    size       bigint PRIMARY KEY,
    root       bytea NOT NULL,
    note       text  NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The integrator's position in staging order (xid, id): every staging row
-- at or below (watermark, watermark_id) is a leaf. watermark_id is 0 after
-- a complete pass (every row with xid below watermark taken); a pass cut
-- short by the batch size stops in the middle of a transaction's rows and
-- records the last staging id taken.
CREATE TABLE audit_integrator (
    id   int PRIMARY KEY CHECK (id = 1),
    watermark xid8 NOT NULL,
    watermark_id bigint NOT NULL DEFAULT 0
);
INSERT INTO audit_integrator (id, watermark) VALUES (1, '0');

-- +goose StatementBegin
CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

-- Statement-level, so that even a change touching no row is refused.
CREATE TRIGGER audit_staging_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_staging
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
ALTER TABLE audit_staging ENABLE ALWAYS TRIGGER audit_staging_append_only;
ALTER TABLE audit_leaves ENABLE ALWAYS TRIGGER audit_leaves_append_only;
ALTER TABLE audit_nodes ENABLE ALWAYS TRIGGER audit_nodes_append_only;
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_append_only;

-- Several databases of one cluster (tests, side-by-side deployments) may
-- migrate at once: a concurrent CREATE ROLE surfaces as either error.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'docket_app') THEN
        CREATE ROLE docket_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON audit_staging, audit_leaves, audit_nodes, audit_checkpoints, audit_integrator FROM PUBLIC;
GRANT SELECT, INSERT ON audit_staging, audit_leaves, audit_nodes, audit_checkpoints TO docket_app;
GRANT USAGE ON SEQUENCE audit_staging_id_seq TO docket_app;
GRANT SELECT, UPDATE ON audit_integrator TO docket_app;

-- +goose Down
-- The role stays: it is cluster-wide and other databases may use it.
DROP TABLE audit_integrator;
DROP TABLE audit_checkpoints;
DROP TABLE audit_nodes;
DROP TABLE audit_leaves;
DROP TRIGGER audit_staging_append_only ON audit_staging;
DROP FUNCTION audit_reject_change();
