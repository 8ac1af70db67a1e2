-- One NAME is one actor. Before this, token names were free text: two
-- advertiser tokens named `acme` bound to different advertisers were one
-- actor, `advertiser:acme`, in the log, in separation of duties and in
-- idempotency, so one tenant could replay the other's Idempotency-Key and
-- read its record.
--
-- actor_names binds each NAME for good: tenant is the advertiser id for an
-- advertiser's NAME, '' for a staff NAME (admin, enforcer, reviewers,
-- auditor). The primary key is what makes two concurrent creations of one
-- NAME for two tenants unable to both win; the foreign key from tokens
-- makes a token that disagrees with its NAME's binding impossible to insert,
-- whatever writes it.

-- +goose Up
CREATE TABLE actor_names (
    name       text PRIMARY KEY,
    tenant     text NOT NULL,
    bound_at   timestamptz NOT NULL,
    bound_by   text NOT NULL,
    -- The target of tokens' composite foreign key.
    UNIQUE (name, tenant)
);

ALTER TABLE tokens ADD COLUMN tenant text GENERATED ALWAYS AS (coalesce(advertiser_id, '')) STORED;

-- The first token of a NAME decides what the NAME is. A database that
-- already holds conflicting tokens keeps them (they are history, named in
-- token.created entries), but a token that disagrees with its NAME's
-- binding no longer authenticates: Authenticate joins the binding.
INSERT INTO actor_names (name, tenant, bound_at, bound_by)
SELECT DISTINCT ON (name) name, tenant, created_at, created_by FROM tokens ORDER BY name, created_at, id;

-- NOT VALID: checked for every new token, not for the conflicting old ones
-- the backfill could not bind.
ALTER TABLE tokens ADD CONSTRAINT tokens_name_binding
    FOREIGN KEY (name, tenant) REFERENCES actor_names (name, tenant) NOT VALID;

-- Idempotency keys are scoped by the caller's actor and tenant. Rows kept
-- from before carry tenant '': an advertiser's retry across the upgrade is
-- a fresh request (its writes are state-guarded: a second filing or
-- withdrawal is a 409), never the reply of a same-named other tenant.
ALTER TABLE idempotency_keys ADD COLUMN tenant text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (actor, tenant, key);

-- +goose Down
DELETE FROM idempotency_keys WHERE tenant <> '';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys DROP COLUMN tenant;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (actor, key);
ALTER TABLE tokens DROP CONSTRAINT tokens_name_binding;
ALTER TABLE tokens DROP COLUMN tenant;
DROP TABLE actor_names;
