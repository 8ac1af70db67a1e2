-- +goose Up
-- A replayed reply carries the headers of the first (Location, say), not
-- only its status and body.
ALTER TABLE idempotency_keys ADD COLUMN headers jsonb;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN headers;
