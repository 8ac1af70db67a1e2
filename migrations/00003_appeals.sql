-- Appeals against decisions (DSA Art. 20), the reviewers' queue, and the
-- bulk re-review of decisions taken under withdrawn policy versions.

-- +goose Up
CREATE TABLE appeals (
    id                text PRIMARY KEY,
    decision_id       text NOT NULL REFERENCES decisions (id),
    advertiser_id     text NOT NULL,
    -- the NAME of the decision's decider, copied so that the queue can skip
    -- a reviewer's own decisions without a join (separation of duties)
    decider_name      text NOT NULL,
    state             text NOT NULL CHECK (state IN ('pending', 'in_review', 'escalated', 'upheld', 'reversed', 'withdrawn')),
    statement         text NOT NULL,
    evidence          jsonb NOT NULL DEFAULT '[]',
    filed_by          text NOT NULL,
    filed_at          timestamptz NOT NULL,
    due_at            timestamptz NOT NULL,
    assigned_to       text,
    claimed_at        timestamptz,
    lease_until       timestamptz,
    escalation_reason text,
    escalated_by      text,
    escalated_at      timestamptz,
    outcome           text CHECK (outcome IN ('upheld', 'reversed')),
    rationale         text,
    resolved_by       text,
    resolved_at       timestamptz,
    withdrawn_at      timestamptz,
    CHECK ((state IN ('upheld', 'reversed')) = (outcome IS NOT NULL AND resolved_at IS NOT NULL AND rationale IS NOT NULL)),
    CHECK (outcome IS NULL OR outcome = state),
    CHECK ((assigned_to IS NULL) = (lease_until IS NULL)),
    CHECK (state <> 'pending' OR assigned_to IS NULL),
    CHECK (state <> 'in_review' OR assigned_to IS NOT NULL)
);

-- At most one open appeal per decision, even when two filings race.
CREATE UNIQUE INDEX appeals_one_open ON appeals (decision_id)
    WHERE state IN ('pending', 'in_review', 'escalated');
-- The queue: open appeals by review deadline (claims, overdue lists).
CREATE INDEX appeals_queue ON appeals (due_at, id)
    WHERE state IN ('pending', 'in_review', 'escalated');
-- Leases to release: claimed appeals by lease end.
CREATE INDEX appeals_leases ON appeals (lease_until) WHERE lease_until IS NOT NULL;
-- Lists are keyset-paginated on id (UUIDv7) within a filter.
CREATE INDEX appeals_decision ON appeals (decision_id, id);
CREATE INDEX appeals_advertiser ON appeals (advertiser_id, id);
CREATE INDEX appeals_state ON appeals (state, id);
-- The transparency report selects the cohort filed in a period.
CREATE INDEX appeals_filed_at ON appeals (filed_at);

-- A bulk reversal is a job named by its request, so that re-running the
-- same request after a crash resumes it: each batch of reversals commits
-- on its own, and the decisions it reversed name the job.
CREATE TABLE policy_reversals (
    id           text PRIMARY KEY,
    policy_code  text NOT NULL,
    versions     int[] NOT NULL,
    rationale    text NOT NULL,
    requested_by text NOT NULL,
    created_at   timestamptz NOT NULL,
    completed_at timestamptz
);
ALTER TABLE decisions ADD COLUMN reversed_by_reversal text REFERENCES policy_reversals (id);
CREATE INDEX decisions_reversal ON decisions (reversed_by_reversal) WHERE reversed_by_reversal IS NOT NULL;

-- +goose Down
DROP INDEX decisions_reversal;
ALTER TABLE decisions DROP COLUMN reversed_by_reversal;
DROP TABLE policy_reversals;
DROP TABLE appeals;
