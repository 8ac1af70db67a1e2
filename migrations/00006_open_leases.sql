-- Only an open appeal's lease matters: the release sweep and the assignee's
-- checks look at in_review and escalated appeals alone. The first version
-- of this index kept every lease ever granted, and resolved appeals keep
-- theirs, so it grew with the appeals' history; the planner, misled by
-- statistics taken while the queue was new, then used it for a resolution's
-- `lease_until > now` check and walked every past lease to find one row
-- (11 ms at 10,000 appeals, rising linearly).

-- +goose Up
DROP INDEX appeals_leases;
CREATE INDEX appeals_leases ON appeals (lease_until) WHERE state IN ('in_review', 'escalated');

-- +goose Down
DROP INDEX appeals_leases;
CREATE INDEX appeals_leases ON appeals (lease_until) WHERE lease_until IS NOT NULL;
