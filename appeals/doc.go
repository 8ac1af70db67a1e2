// Package appeals is Docket's domain: policies and their versions, the
// enforcement decisions taken under them, appeals against those decisions,
// the workflow's rules, the tokens allowed to act, and their Postgres
// store. Who acts (docket.Actor, docket.Role) and how a failure is told
// (*docket.Error and its codes) are the module's shared vocabulary, in
// the root package docket; this package returns *docket.Error for every
// expected failure. Every change of state commits together with its audit
// entry (audit.Append in the same transaction), and hands the log the
// entry's index keys (keys.go: the decision's advertiser and policy on
// everything about a decision or its appeals), since the log reads no
// field of a record. It knows nothing of HTTP.
//
// Actors. A token's NAME is one person or system for good: its first token
// binds it (table actor_names) to one advertiser, or to staff, and a token
// that disagrees is refused when made and when used. So "role:name", the
// form the log records, separation of duties compares and idempotency keys
// are scoped by, never stands for two tenants, and no one is both a tenant
// and its reviewer. Idempotency keys are scoped by the tenant as well, so
// that a replay answers only the caller that wrote the reply.
//
// Idempotency is part of a write's call, not of its context: each write
// method a client may retry takes WriteOptions, and Idempotent(k) binds
// that one write to the client's key (api passes the Idempotency-Key
// header's). The reply, status and headers as the caller renders them, is
// kept in the write's own transaction, so a retry after a crash, or one
// racing the first, gets a *Replay of it instead of a second write. The
// store's own writes (releasing lapsed leases, a bulk reversal's job and
// batches) take no key, so none can answer for a client's.
//
// Views. What the store returns to an advertiser shows staff by role only
// and omits escalation reasons (view.go); it is also what an idempotent
// reply keeps. The log keeps every name.
//
// No string reaches Postgres unchecked (input.go): ids and codes are vetted
// before any SQL, and before a call joins a queue batch; one call's failure
// in a batch fails the batch as a whole (inLane), and groupcommit then
// answers every call of it alone, so one bad call never fails another.
//
// Statements of reasons. The EU DSA Transparency Database's statement
// format, its closed sets of values and its rules are package
// appeals/dsa, which knows nothing of decisions; dsa.go here maps a
// decision onto a statement (StatementOf) and exports one per decision
// (ExportDSA), each checked against the database's rules first. The
// transparency figures of Art. 15 and 24 (complaints, handling times,
// reversals) are report.go's, read from the same tables.
//
// Group commit. The reviewers' queue (queue.go) answers concurrent claims
// and resolutions in batches, through appeals/groupcommit: one Batcher for
// claims and one for resolutions, each with its Lane (a connection whose
// session plans the queue's statements generically). groupcommit holds
// the batching, the bounds on a batch, cancellation, deadlines and the
// retry alone; this package holds what a batch does (claimBatch,
// resolveBatch) and what a call alone does (claimAlone, resolveAlone).
// Writes with an Idempotency-Key, and reversals, go alone directly.
package appeals
