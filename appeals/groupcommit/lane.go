package groupcommit

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Lane is a database connection kept for one Batcher's statements, out of
// the pool, with a session of its own. A Batcher runs one batch at a time,
// so a lane that only its run uses is never used by two at once, and
// needs no lock; it must not be shared with anything else (an AloneFunc
// included, which runs beside the batches).
//
// A lane opens its connection when first used, runs the session
// statements on it (settings that must not reach any other statement,
// such as a plan_cache_mode), and prepares each statement once, when
// first asked for. Because the session is its own, the connection never
// goes back to the pool: a lane whose work failed, with its connection in
// a state no one knows, is dropped (Drop), and opens another on its next
// use.
type Lane[K comparable] struct {
	db      *sqlx.DB
	text    func(K) string
	session []string

	conn  *sqlx.Conn
	stmts map[K]*sqlx.Stmt
}

// NewLane returns a lane on db whose statement k is text(k), with session
// run on each connection it opens.
func NewLane[K comparable](db *sqlx.DB, text func(K) string, session ...string) *Lane[K] {
	return &Lane[K]{db: db, text: text, session: session}
}

// Stmt returns statement k, prepared on the lane's connection, opening the
// connection first if the lane has none. A failure drops the connection.
func (l *Lane[K]) Stmt(ctx context.Context, k K) (*sqlx.Stmt, error) {
	if l.conn == nil {
		c, err := l.db.Connx(ctx)
		if err != nil {
			return nil, fmt.Errorf("groupcommit: lane: %w", err)
		}
		l.conn, l.stmts = c, map[K]*sqlx.Stmt{}
		for _, q := range l.session {
			if _, err := c.ExecContext(ctx, q); err != nil {
				l.Drop()
				return nil, fmt.Errorf("groupcommit: lane: session: %w", err)
			}
		}
	}
	if st := l.stmts[k]; st != nil {
		return st, nil
	}
	st, err := l.conn.PreparexContext(ctx, l.text(k))
	if err != nil {
		l.Drop()
		return nil, fmt.Errorf("groupcommit: lane: prepare: %w", err)
	}
	l.stmts[k] = st
	return st, nil
}

// Conn is the lane's connection, nil when it has none.
func (l *Lane[K]) Conn() *sqlx.Conn { return l.conn }

// Drop closes the lane's connection rather than return it, and its
// session with it, to the pool.
func (l *Lane[K]) Drop() {
	if l.conn == nil {
		return
	}
	_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = l.conn.Close()
	l.conn, l.stmts = nil, nil
}
