package appeals

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals/groupcommit"
	"github.com/docket-dev/docket/audit"
)

// Options tune the workflow's rules; zero values take the defaults.
type Options struct {
	// Now is the clock; tests drive deadlines with it instead of sleeping.
	Now func() time.Time
	// AppealWindow is how long after a decision its advertiser may appeal
	// (DSA Art. 20(1): at least six months). Default: 6 months.
	AppealWindow time.Duration
	// ReviewDue is how long reviewers have to resolve an appeal. Default 7 days.
	ReviewDue time.Duration
	// ClaimLease is how long a claim holds an appeal before it returns to the queue. Default 30 minutes.
	ClaimLease time.Duration
	// FurtherAppeals is how many appeals may follow a resolved one. Default 1.
	FurtherAppeals *int
}

// IdempotencyTTL is how long a stored reply answers retries.
const IdempotencyTTL = 24 * time.Hour

// Store is the domain's Postgres store. Each write method runs in one
// transaction that also appends the change's audit entry.
type Store struct {
	db   *sqlx.DB
	opts Options
	hot  *hot
	pins *pins
	// claims and resolves batch the queue's calls (group commit), each
	// on its own lane.
	claims                 *groupcommit.Batcher[claimReq, *Appeal]
	resolves               *groupcommit.Batcher[resolveReq, Appeal]
	claimLane, resolveLane *lane
}

// NewStore returns a Store on db.
func NewStore(db *sqlx.DB, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReviewDue == 0 {
		opts.ReviewDue = 7 * 24 * time.Hour
	}
	if opts.ClaimLease == 0 {
		opts.ClaimLease = 30 * time.Minute
	}
	if opts.FurtherAppeals == nil {
		one := 1
		opts.FurtherAppeals = &one
	}
	s := &Store{db: db, opts: opts, hot: &hot{}, pins: &pins{}, claimLane: newLane(db), resolveLane: newLane(db)}
	batches := groupcommit.Options{MaxBatch: maxBatch}
	s.claims = groupcommit.New(batches, s.claimBatch, s.claimAlone)
	s.resolves = groupcommit.New(batches, s.resolveBatch, s.resolveAlone)
	return s
}

// lane is a connection a queue batcher keeps for its statements (see
// groupcommit.Lane).
//
// Its session plans the queue's statements once, generically
// (plan_cache_mode = force_generic_plan). Left to choose, Postgres weighs
// the generic plan against plans made for the values at hand, finds it
// dearer (it cannot know that an array holds three ids, nor what a LIMIT
// parameter is), and plans afresh on every run: in BenchmarkClaimAndResolve
// that planning was about a third of the database's time. The generic
// plans are the ones TestQueueStatementsReadTheirRows checks. The setting
// must not reach any other statement, which the lane sees to: its
// connection never goes back to the pool.
type lane = groupcommit.Lane[hotQuery]

func newLane(db *sqlx.DB) *lane {
	return groupcommit.NewLane(db, hotQuery.text, `SET plan_cache_mode = force_generic_plan`)
}

// hotQuery names a statement of the busiest writes (the queue's claims
// and resolutions, recording decisions). On a busy 2-core machine, parsing
// and planning them anew on every call cost more than running them, so
// they are prepared once for the pool (database/sql prepares each again
// the first time it runs on a connection), and the queue's batches
// prepare theirs on their lanes.
type hotQuery int

const (
	qRecord hotQuery = iota
	qCandidates
	qCandidatesSenior
	qPeek
	qPeekSenior
	qApplyClaims
	qReadAppeals
	qLockAppeals
	qApplyResolutions
	qAppend
	nHotQueries
)

func (q hotQuery) text() string {
	switch q {
	case qRecord:
		return recordQuery()
	case qCandidates:
		return candidatesQuery(false)
	case qCandidatesSenior:
		return candidatesQuery(true)
	case qPeek:
		return peekQuery(false)
	case qPeekSenior:
		return peekQuery(true)
	case qApplyClaims:
		return applyClaimsQuery()
	case qReadAppeals:
		return readAppealsQuery
	case qLockAppeals:
		return lockAppealsQuery
	case qApplyResolutions:
		return applyResolutionsQuery()
	case qAppend:
		return audit.AppendQuery
	}
	panic(fmt.Sprintf("appeals: no hot query %d", q))
}

// hot holds the prepared hot statements.
type hot struct {
	mu    sync.Mutex
	ready atomic.Bool
	stmts [nHotQueries]*sqlx.Stmt
}

// prepare readies the hot statements once. It runs before a transaction
// begins, never inside one: preparing takes a connection of its own, and
// transactions waiting inside for one could starve a full pool.
func (h *hot) prepare(ctx context.Context, db *sqlx.DB) error {
	if h.ready.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ready.Load() {
		return nil
	}
	var stmts [nHotQueries]*sqlx.Stmt
	for q := range nHotQueries {
		st, err := db.PreparexContext(ctx, q.text())
		if err != nil {
			for _, st := range stmts[:q] {
				st.Close()
			}
			return fmt.Errorf("appeals: prepare: %w", err)
		}
		stmts[q] = st
	}
	h.stmts = stmts
	h.ready.Store(true)
	return nil
}

// stmt returns hot query q, prepared, bound to tx.
func (s *Store) stmt(ctx context.Context, tx *sqlx.Tx, q hotQuery) *sqlx.Stmt {
	return tx.StmtxContext(ctx, s.hot.stmts[q])
}

// append stages an audit entry in tx, with the prepared insert.
func (s *Store) append(ctx context.Context, tx *sqlx.Tx, e audit.Entry) error {
	args, err := audit.StageArgs(e)
	if err != nil {
		return err
	}
	if _, err := s.stmt(ctx, tx, qAppend).ExecContext(ctx, args...); err != nil {
		return fmt.Errorf("appeals: append %s: %w", e.Type, err)
	}
	return nil
}

// DB returns the store's connection pool.
func (s *Store) DB() *sqlx.DB { return s.db }

func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// appealDeadline is decided + the appeal window (6 calendar months by default).
func (s *Store) appealDeadline(decided time.Time) time.Time {
	if s.opts.AppealWindow > 0 {
		return decided.Add(s.opts.AppealWindow)
	}
	return decided.AddDate(0, 6, 0)
}

// Idempotency binds a write to a client's retry key: the reply is stored in
// the same transaction as the change, so a retry after a crash or a
// concurrent retry replays it instead of writing twice.
//
// A key is scoped by the caller's actor and tenant (Tenant: the advertiser
// id of an advertiser, else empty), so a replay only ever answers the
// caller that wrote the reply: another caller's use of the same key is a
// fresh request of its own, never a view of someone else's record.
type Idempotency struct {
	Actor       string
	Tenant      string
	Key         string
	RequestHash []byte
	// Reply renders the write's result as the reply to keep, with the
	// headers a replay must carry too (Location, say); it runs inside the
	// transaction, before commit.
	Reply func(result any) (status int, headers map[string]string, body []byte, err error)
}

// Replay is returned instead of writing when the key was used before with
// the same request: it carries the first reply.
type Replay struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

func (r *Replay) Error() string {
	return fmt.Sprintf("replay of an earlier reply (status %d)", r.Status)
}

// WriteOption qualifies one call of a write method of the Store. It is
// an explicit part of the call, never a value carried by the context, so
// a write the store makes on its own (a lease's release, a reversal's
// batches) can never inherit a caller's key.
type WriteOption func(*writeOptions)

type writeOptions struct{ idem *Idempotency }

// Idempotent makes the write idempotent under k: its reply is kept with
// the change, and a retry with the same key and request gets a *Replay
// of it instead of writing again. A nil k leaves the write as it is.
func Idempotent(k *Idempotency) WriteOption {
	return func(o *writeOptions) { o.idem = k }
}

// idempotencyOf returns the key the options bind the write to, or nil.
func idempotencyOf(opts []WriteOption) *Idempotency {
	var o writeOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o.idem
}

// write runs fn in one transaction, under idem when it is not nil.
func write[T any](ctx context.Context, s *Store, idem *Idempotency, fn func(tx *sqlx.Tx, now time.Time) (T, error)) (T, error) {
	var zero T
	if err := s.hot.prepare(ctx, s.db); err != nil {
		return zero, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return zero, fmt.Errorf("appeals: begin: %w", err)
	}
	defer tx.Rollback()
	now := s.now()
	if idem != nil {
		if err := claimKey(ctx, tx, idem, now); err != nil {
			return zero, err
		}
	}
	v, err := fn(tx, now)
	if err != nil {
		return zero, err
	}
	if idem != nil {
		status, headers, body, err := idem.Reply(v)
		if err != nil {
			return zero, fmt.Errorf("appeals: render reply: %w", err)
		}
		hj, err := json.Marshal(headers)
		if err != nil {
			return zero, fmt.Errorf("appeals: render reply: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET status = $4, body = $5, headers = $6 WHERE actor = $1 AND tenant = $2 AND key = $3`,
			idem.Actor, idem.Tenant, idem.Key, status, body, string(hj)); err != nil {
			return zero, fmt.Errorf("appeals: keep reply: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return zero, fmt.Errorf("appeals: commit: %w", err)
	}
	return v, nil
}

// claimKey inserts the key's row. A concurrent transaction holding the same
// key makes the insert wait until it ends; if it committed, its reply is
// replayed, and if it rolled back, this one proceeds.
func claimKey(ctx context.Context, tx *sqlx.Tx, k *Idempotency, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE actor = $1 AND tenant = $2 AND key = $3 AND created_at < $4`,
		k.Actor, k.Tenant, k.Key, now.Add(-IdempotencyTTL)); err != nil {
		return fmt.Errorf("appeals: expire key: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (actor, tenant, key, request_hash, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, k.Actor, k.Tenant, k.Key, k.RequestHash, now)
	if err != nil {
		return fmt.Errorf("appeals: claim key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var row struct {
		Hash    []byte `db:"request_hash"`
		Status  sql.NullInt64
		Body    []byte
		Headers []byte
	}
	if err := tx.GetContext(ctx, &row, `SELECT request_hash, status, body, headers FROM idempotency_keys WHERE actor = $1 AND tenant = $2 AND key = $3`,
		k.Actor, k.Tenant, k.Key); err != nil {
		return fmt.Errorf("appeals: read key: %w", err)
	}
	if !bytes.Equal(row.Hash, k.RequestHash) {
		return docket.Errorf(docket.KeyReused, "Idempotency-Key %q was used with a different request", k.Key)
	}
	rp := &Replay{Status: int(row.Status.Int64), Body: row.Body}
	if len(row.Headers) > 0 {
		if err := json.Unmarshal(row.Headers, &rp.Headers); err != nil {
			return fmt.Errorf("appeals: read key: headers: %w", err)
		}
	}
	return rp
}

// notFound turns sql.ErrNoRows into a NotFound error.
func notFound(err error, what, id string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return docket.Errorf(docket.NotFound, "%s %q not found", what, id)
	}
	return fmt.Errorf("appeals: read %s: %w", what, err)
}
