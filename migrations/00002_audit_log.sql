-- The tamper-evident log: dense leaves, the Merkle tree's node hashes,
-- signed checkpoints. Only the integrator writes these tables.

-- +goose Up
CREATE TABLE audit_leaves (
    idx           bigint PRIMARY KEY CHECK (idx >= 0),
    staging_id    bigint NOT NULL UNIQUE REFERENCES audit_staging (id),
    leaf_hash     bytea  NOT NULL,
    integrated_at timestamptz NOT NULL DEFAULT now()
);

-- Every complete subtree's hash above the leaves, so that a proof costs
-- O(log n) reads.
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

-- The integrator's watermark: every staging row with xid below it is a leaf.
CREATE TABLE audit_integrator (
    id   int PRIMARY KEY CHECK (id = 1),
    watermark xid8 NOT NULL
);
INSERT INTO audit_integrator (id, watermark) VALUES (1, '0');

-- +goose Down
DROP TABLE audit_integrator;
DROP TABLE audit_checkpoints;
DROP TABLE audit_nodes;
DROP TABLE audit_leaves;
