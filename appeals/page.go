package appeals

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/docket-dev/docket"
)

// PageRequest asks for one page of a keyset-paginated list.
type PageRequest struct {
	Limit  int
	Cursor string
}

// DefaultLimit and MaxLimit bound list pages.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Validate checks the limit and the cursor's form: the cursor of a list
// of records by id (decisions, appeals). ListPolicies checks its own.
func (r PageRequest) Validate() error {
	var p docket.Problems
	if r.Limit < 0 || r.Limit > MaxLimit {
		p.Add("limit", "must be between 1 and %d", MaxLimit)
	}
	if _, err := r.after(ValidPlatformID); err != nil {
		p.Merge(err)
	}
	return p.Err()
}

func (r PageRequest) limit() int {
	if r.Limit <= 0 {
		return DefaultLimit
	}
	return min(r.Limit, MaxLimit)
}

// after decodes the cursor: the sort key of the last item already seen.
// A cursor is strictly parsed rather than signed, so that every replica
// reads every other's without a shared secret: the canonical unpadded
// base64url (as makePage writes it, and no other spelling) of a key that
// valid accepts, which is the shape of every key a list can hold. Any
// other cursor was not given by a server and is refused, never read as
// the first page; a well-formed key that no list gave is only a place in
// the keyset order, which reveals nothing the caller may not list.
func (r PageRequest) after(valid func(string) bool) (string, error) {
	if r.Cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(r.Cursor)
	if err != nil || len(b) == 0 || base64.RawURLEncoding.EncodeToString(b) != r.Cursor || !valid(string(b)) {
		return "", &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
			Fields: []docket.FieldError{{Field: "cursor", Message: "is not a cursor this server gave"}}}
	}
	return string(b), nil
}

// Page is one page of a list.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// makePage trims the one extra row fetched to learn whether more follow.
func makePage[T any](rows []T, limit int, key func(T) string) Page[T] {
	p := Page[T]{Items: rows}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(rows) > limit {
		p.Items = rows[:limit]
		p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(rows[limit-1])))
	}
	return p
}

// filterSQL builds the WHERE clause of a list's query with numbered
// placeholders, then the newest-first keyset page over id.
type filterSQL struct {
	where []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (q *filterSQL) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

func (q *filterSQL) add(cond string) { q.where = append(q.where, cond) }

// eq adds col = v when the filter names a value.
func (q *filterSQL) eq(col, v string) {
	if v != "" {
		q.add(col + " = " + q.arg(v))
	}
}

// page finishes selectFrom with the conditions, the cursor and one row
// more than limit (to learn whether another page follows).
func (q *filterSQL) page(selectFrom, after string, limit int) (string, []any) {
	if after != "" {
		q.add("id < " + q.arg(after))
	}
	query := selectFrom
	if len(q.where) > 0 {
		query += " WHERE " + strings.Join(q.where, " AND ")
	}
	return query + " ORDER BY id DESC LIMIT " + q.arg(limit+1), q.args
}

// list runs a list's query, selectFrom narrowed by q, and returns the
// requested page, with derive applied to each item.
func list[T any](ctx context.Context, db sqlx.QueryerContext, q *filterSQL, selectFrom string, r PageRequest,
	key func(T) string, derive func(*T)) (Page[T], error) {
	after, err := r.after(ValidPlatformID)
	if err != nil {
		return Page[T]{}, err
	}
	query, args := q.page(selectFrom, after, r.limit())
	var items []T
	if err := sqlx.SelectContext(ctx, db, &items, query, args...); err != nil {
		return Page[T]{}, fmt.Errorf("appeals: list: %w", err)
	}
	for i := range items {
		derive(&items[i])
	}
	return makePage(items, r.limit(), key), nil
}
