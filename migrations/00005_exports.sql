-- Exports and reports: the DSA category each policy maps to, and a side
-- index of the audit log that lets exports filter by entry time, advertiser
-- and policy in index order without parsing every entry. The log's own
-- tables stay untouched: the side index is derived from them, filled lazily
-- by the export code (audit.RefreshExportKeys), and can be rebuilt at will.

-- +goose Up
-- A STATEMENT_CATEGORY_* of the DSA Transparency Database; NULL means the
-- default (STATEMENT_CATEGORY_OTHER_VIOLATION_TC).
ALTER TABLE policies ADD COLUMN dsa_category text;

CREATE TABLE audit_export_keys (
    idx           bigint PRIMARY KEY,
    -- the entry's own "time", not when it was staged or integrated
    entry_time    timestamptz,
    -- record.advertiser_id, or the advertiser of the decision it refers to
    advertiser_id text,
    -- record.policy_code, a policy subject, or the policy of the decision it refers to
    policy_code   text,
    -- the decision the entry is about or refers to
    decision_id   text
);
CREATE INDEX audit_export_keys_advertiser ON audit_export_keys (advertiser_id, idx);
CREATE INDEX audit_export_keys_policy ON audit_export_keys (policy_code, idx);
CREATE INDEX audit_export_keys_time ON audit_export_keys (entry_time, idx);
CREATE INDEX audit_export_keys_decision ON audit_export_keys (decision_id) WHERE decision_id IS NOT NULL;
-- Exports fill the side index as they run (it is derived data, not log).
REVOKE ALL ON audit_export_keys FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON audit_export_keys TO docket_app;

-- The DSA export and the transparency figures read decisions by time.
CREATE INDEX decisions_decided_at ON decisions (decided_at, id);

-- +goose Down
DROP INDEX decisions_decided_at;
DROP TABLE audit_export_keys;
ALTER TABLE policies DROP COLUMN dsa_category;
