-- Index keys: audit knows no domain field names. Until now exports found
-- an entry's advertiser and policy by parsing its JSON (record.advertiser_id,
-- record.policy_code, and an appeal's decision_id to inherit its decision's
-- advertiser and policy). From now on the writer hands the log an entry's
-- index keys when it stages it (audit.Entry.Keys), and the log stores them
-- beside the entry, never in its bytes: the entries, their leaf hashes and
-- every checkpoint stay exactly as they are.
--
-- 1. audit_staging.keys: the keys, name to value, a JSON object.
-- 2. Its backfill for the rows already staged, from their JSON. This is a
--    one-off migration of existing data, and the only place outside the
--    domain that names the domain's fields: the names below are the ones
--    the appeals package gives today (advertiser, policy), the fields are
--    those its entries have always carried.
-- 3. appeals.policy_code: an appeal's decision's policy, copied like
--    decider_name, so that every appeal entry can carry its policy key
--    without a join.
-- 4. The export side index, reshaped: one (name, value, idx) row per key
--    of each leaf, and the entry times apart. It is derived data, filled
--    lazily by exports (audit.RefreshExportKeys): it starts empty here.

-- +goose Up
ALTER TABLE audit_staging ADD COLUMN keys jsonb NOT NULL DEFAULT '{}';

-- The backfill reads entries as JSON; one that is not (a tampered row,
-- which `docket verify` reports) gets no keys rather than failing the
-- migration.
-- +goose StatementBegin
CREATE FUNCTION audit_backfill_entry(e bytea) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN convert_from(e, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- audit_staging is append-only (migration 00002): its trigger refuses any
-- UPDATE. The backfill is the one change this migration makes to rows of
-- the log, and it writes the new column alone: type, actor, subject and
-- the entry's bytes are untouched, so `docket verify` still holds. The
-- trigger is off only inside this migration's transaction (ALTER TABLE
-- holds the table's ACCESS EXCLUSIVE lock until commit, so no other
-- session can write meanwhile) and is back, ENABLE ALWAYS, before commit.
ALTER TABLE audit_staging DISABLE TRIGGER audit_staging_append_only;

WITH e AS (
    SELECT s.id,
        j->'record'->>'advertiser_id' AS adv,
        coalesce(j->'record'->>'policy_code',
            CASE WHEN j->'subject'->>'kind' = 'policy' THEN j->'subject'->>'id' END) AS pol,
        coalesce(CASE WHEN j->'subject'->>'kind' = 'decision' THEN j->'subject'->>'id' END,
            j->'record'->>'decision_id',
            (SELECT r->>'id' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j->'refs') = 'array' THEN j->'refs' ELSE '[]' END) r
             WHERE r->>'kind' = 'decision' LIMIT 1)) AS dec
    FROM audit_staging s, LATERAL (SELECT audit_backfill_entry(s.entry) AS j) x
    WHERE jsonb_typeof(j) = 'object'),
-- An entry about a decision inherits the decision's advertiser and policy
-- from the first entry that names them, as exports did.
da AS (SELECT DISTINCT ON (dec) dec, adv FROM e WHERE dec IS NOT NULL AND adv IS NOT NULL ORDER BY dec, id),
dp AS (SELECT DISTINCT ON (dec) dec, pol FROM e WHERE dec IS NOT NULL AND pol IS NOT NULL ORDER BY dec, id),
k AS (
    SELECT e.id, jsonb_strip_nulls(jsonb_build_object(
        'advertiser', coalesce(e.adv, da.adv), 'policy', coalesce(e.pol, dp.pol))) AS keys
    FROM e LEFT JOIN da ON da.dec = e.dec LEFT JOIN dp ON dp.dec = e.dec)
UPDATE audit_staging s SET keys = k.keys FROM k WHERE s.id = k.id AND k.keys <> '{}';

ALTER TABLE audit_staging ENABLE ALWAYS TRIGGER audit_staging_append_only;
DROP FUNCTION audit_backfill_entry(bytea);

ALTER TABLE appeals ADD COLUMN policy_code text;
UPDATE appeals a SET policy_code = d.policy_code FROM decisions d WHERE d.id = a.decision_id;
ALTER TABLE appeals ALTER COLUMN policy_code SET NOT NULL;

-- The side index, generic: which leaves have key name = value, in index
-- order (the primary key is the range a filtered export scans), and each
-- leaf's own "time" (the time filter, and how far the index is filled).
DROP TABLE audit_export_keys;
CREATE TABLE audit_export_times (
    idx        bigint PRIMARY KEY,
    -- the entry's own "time", not when it was staged or integrated
    entry_time timestamptz
);
CREATE INDEX audit_export_times_time ON audit_export_times (entry_time, idx);
CREATE TABLE audit_export_keys (
    name  text   NOT NULL,
    value text   NOT NULL,
    idx   bigint NOT NULL,
    PRIMARY KEY (name, value, idx)
);
REVOKE ALL ON audit_export_times, audit_export_keys FROM PUBLIC;
GRANT SELECT, INSERT ON audit_export_times, audit_export_keys TO docket_app;

-- +goose Down
DROP TABLE audit_export_keys;
DROP TABLE audit_export_times;
CREATE TABLE audit_export_keys (
    idx           bigint PRIMARY KEY,
    entry_time    timestamptz,
    advertiser_id text,
    policy_code   text,
    decision_id   text
);
CREATE INDEX audit_export_keys_advertiser ON audit_export_keys (advertiser_id, idx);
CREATE INDEX audit_export_keys_policy ON audit_export_keys (policy_code, idx);
CREATE INDEX audit_export_keys_time ON audit_export_keys (entry_time, idx);
CREATE INDEX audit_export_keys_decision ON audit_export_keys (decision_id) WHERE decision_id IS NOT NULL;
REVOKE ALL ON audit_export_keys FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON audit_export_keys TO docket_app;
ALTER TABLE appeals DROP COLUMN policy_code;
-- Dropping a column is no UPDATE: the append-only trigger does not fire.
ALTER TABLE audit_staging DROP COLUMN keys;
