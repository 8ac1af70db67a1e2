-- The NATS relay's cursor: the first audit index JetStream has not yet
-- acknowledged, per stream. Only the relay holding the advisory lock
-- writes it.

-- +goose Up
CREATE TABLE notify_cursor (
    stream     text PRIMARY KEY,
    next_index bigint NOT NULL DEFAULT 0 CHECK (next_index >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE notify_cursor;
