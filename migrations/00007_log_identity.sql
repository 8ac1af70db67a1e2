-- The log's identity: the origin and the verifier key of its checkpoints.
-- The integrator records it with the first checkpoint it signs (or adopts
-- it from the latest checkpoint of a log that predates this table), and
-- from then on signs only with that key: a second key, say from a replica
-- with a fresh data directory, would split one log into two that no
-- verifier can follow. It is guarded like the other log tables: INSERT
-- only, one row, ever.

-- +goose Up
CREATE TABLE audit_log_identity (
    id           int  PRIMARY KEY CHECK (id = 1),
    origin       text NOT NULL,
    verifier_key text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_log_identity_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log_identity
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
ALTER TABLE audit_log_identity ENABLE ALWAYS TRIGGER audit_log_identity_append_only;

REVOKE ALL ON audit_log_identity FROM PUBLIC;
GRANT SELECT, INSERT ON audit_log_identity TO docket_app;

-- +goose Down
DROP TABLE audit_log_identity;
