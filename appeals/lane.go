package appeals

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// lane is a connection a batcher keeps for its statements. The batcher
// runs one batch at a time, so a lane is never used by two at once and
// needs no lock.
//
// Its session plans the queue's statements once, generically
// (plan_cache_mode = force_generic_plan). Left to choose, Postgres weighs
// the generic plan against plans made for the values at hand, finds it
// dearer (it cannot know that an array holds three ids, nor what a LIMIT
// parameter is), and plans afresh on every run: in BenchmarkClaimAndResolve
// that planning was about a third of the database's time. The generic
// plans are the ones TestQueueStatementsReadTheirRows checks. The setting
// must not reach any other statement, so the connection never goes back
// to the pool: a lane that fails is discarded, and its batcher opens
// another on its next batch.
type lane struct {
	db    *sqlx.DB
	conn  *sqlx.Conn
	stmts map[hotQuery]*sqlx.Stmt
}

// stmt returns hot query q, prepared on the lane's connection, opening
// the connection first if the lane has none.
func (l *lane) stmt(ctx context.Context, q hotQuery) (*sqlx.Stmt, error) {
	if l.conn == nil {
		c, err := l.db.Connx(ctx)
		if err != nil {
			return nil, fmt.Errorf("appeals: lane: %w", err)
		}
		l.conn, l.stmts = c, map[hotQuery]*sqlx.Stmt{}
		if _, err := c.ExecContext(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
			l.drop()
			return nil, fmt.Errorf("appeals: lane: %w", err)
		}
	}
	if st := l.stmts[q]; st != nil {
		return st, nil
	}
	st, err := l.conn.PreparexContext(ctx, q.text())
	if err != nil {
		l.drop()
		return nil, fmt.Errorf("appeals: lane: prepare: %w", err)
	}
	l.stmts[q] = st
	return st, nil
}

// drop closes the lane's connection rather than return it, and its
// session with it, to the pool.
func (l *lane) drop() {
	if l.conn == nil {
		return
	}
	_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = l.conn.Close()
	l.conn, l.stmts = nil, nil
}
