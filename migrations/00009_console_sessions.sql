-- Console sessions (api/console): a signed-in browser holds a random
-- 256-bit session id in an HttpOnly cookie; only its SHA-256 is kept here,
-- as tokens keep theirs. A session stands for the token it was opened
-- with: revoking the token ends it (the look-up joins tokens and refuses a
-- revoked one), and so does its idle or its absolute expiry, or signing out.

-- +goose Up
CREATE TABLE console_sessions (
    id_hash      bytea PRIMARY KEY,
    token_id     text NOT NULL REFERENCES tokens (id),
    -- The per-session CSRF token every state-changing form carries.
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    -- The session ends idle_seconds after it was last used, and at expires_at whatever happens.
    idle_seconds integer NOT NULL CHECK (idle_seconds > 0),
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz
);
CREATE INDEX console_sessions_token ON console_sessions (token_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
