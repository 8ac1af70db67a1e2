package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Subject names the record an entry is about.
type Subject struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Entry is one change of state. Its JSON encoding, made once by Append, is
// the leaf data: those bytes are stored and hashed verbatim, never rebuilt.
type Entry struct {
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Subject Subject   `json:"subject"`
	// Refs name the records this entry answers: an appeal names its
	// decision, a reversal the appeal that caused it.
	Refs []Subject `json:"refs,omitempty"`
	// Record is the full record after the change.
	Record any `json:"record,omitempty"`
	// Keys are the index keys the writer gives the entry, name to value,
	// for exports to select it by (ExportFilter.Keys). They are not part
	// of the entry's bytes, so not of its leaf hash: the log stores them
	// beside the entry (audit_staging.keys) as an index, and knows
	// nothing of what they name.
	Keys map[string]string `json:"-"`
}

// Validate reports what is missing from an entry.
func (e Entry) Validate() error {
	switch {
	case e.Type == "":
		return errors.New("audit: entry type is empty")
	case e.Actor == "":
		return errors.New("audit: entry actor is empty")
	case e.Subject.Kind == "" || e.Subject.ID == "":
		return errors.New("audit: entry subject is incomplete")
	case e.Time.IsZero():
		return errors.New("audit: entry time is zero")
	}
	for k, v := range e.Keys {
		if k == "" || v == "" || strings.ContainsRune(k+v, 0) {
			return fmt.Errorf("audit: entry key %q=%q is empty or holds NUL", k, v)
		}
	}
	return nil
}

// AppendQuery stages one entry from the six parameters StageArgs gives;
// the xid that orders it is the column's default. Writers on a hot path
// prepare it once (parsing and planning it on every entry cost a busy
// 2-core machine more than the insert) and run it in their transaction.
const AppendQuery = `INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry, keys)
	VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`

// Params numbers the placeholders of one statement in the order its parts
// take them. A statement that makes a change and stages its entry is built
// by two packages, the domain's part and the log's (StageAfter,
// StageChanged); each takes its own placeholders from the same Params, so
// neither counts the other's, and the arguments follow in the same order:
// the domain's, then StageArgs' or StageArrays'.
type Params struct{ n int }

// Next returns the next placeholder, "$n".
func (p *Params) Next() string {
	p.n++
	return "$" + strconv.Itoa(p.n)
}

// StageAfter returns an INSERT that stages one entry for each row of from
// (a CTE of the caller's statement), from the next parameters of p, which
// StageArgs gives. A change and its entry then take one statement, so that
// a write needs no explicit transaction and a single round trip: its
// change CTE produces a row only when it changed something, and the entry
// is staged only then.
func StageAfter(from string, p *Params) string {
	return `INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry, keys)
	SELECT ` + p.Next() + `::text, ` + p.Next() + `::text, ` + p.Next() + `::text, ` + p.Next() + `::text, ` + p.Next() + `::bytea, ` + p.Next() + `::jsonb
	FROM ` + from + ` RETURNING id`
}

// StageChanged returns an INSERT that stages a list of entries, in order,
// from the next parameters of p, the arrays StageArrays gives, and that
// ends a statement whose CTEs make the changes, like StageAfter. The
// change may skip some subjects: only the entries whose subject id is
// among the ids of changed (one of those CTEs) are staged, so that an
// entry is never staged without its change. It returns the subject ids
// of the entries staged.
func StageChanged(p *Params, changed string) string {
	return `INSERT INTO audit_staging (type, actor, subject_kind, subject_id, entry, keys)
	SELECT t, a, k, i, e, y FROM unnest(` + p.Next() + `::text[], ` + p.Next() + `::text[], ` + p.Next() + `::text[], ` + p.Next() + `::text[], ` + p.Next() + `::bytea[], ` + p.Next() + `::jsonb[])
		WITH ORDINALITY AS x(t, a, k, i, e, y, n)
	WHERE x.i IN (SELECT id FROM ` + changed + `)
	ORDER BY n RETURNING subject_id`
}

// StageArrays validates and encodes es for StageChanged.
func StageArrays(es []Entry) ([]any, error) {
	types, actors, kinds, ids := make([]string, len(es)), make([]string, len(es)), make([]string, len(es)), make([]string, len(es))
	data, keys := make([][]byte, len(es)), make([]string, len(es))
	for i, e := range es {
		b, err := encode(e)
		if err != nil {
			return nil, err
		}
		types[i], actors[i], kinds[i], ids[i], data[i] = e.Type, e.Actor, e.Subject.Kind, e.Subject.ID, b
		if keys[i], err = encodeKeys(e.Keys); err != nil {
			return nil, err
		}
	}
	return []any{pq.StringArray(types), pq.StringArray(actors), pq.StringArray(kinds), pq.StringArray(ids),
		pq.ByteaArray(data), pq.StringArray(keys)}, nil
}

// Append stages an entry inside the caller's transaction, so that the entry
// commits if and only if the change it records commits. It returns the
// staging id, which is not the leaf index: indices are given later, densely,
// by the integrator.
func Append(ctx context.Context, tx sqlx.ExtContext, e Entry) (int64, error) {
	args, err := StageArgs(e)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := sqlx.GetContext(ctx, tx, &id, AppendQuery, args...); err != nil {
		return 0, fmt.Errorf("audit: append %s: %w", e.Type, err)
	}
	return id, nil
}

// StageArgs validates e and encodes it once, as the parameters of a
// staging insert (AppendQuery, StageAfter): type, actor, subject kind and
// id, the entry's bytes, and its index keys.
func StageArgs(e Entry) ([]any, error) {
	data, err := encode(e)
	if err != nil {
		return nil, err
	}
	keys, err := encodeKeys(e.Keys)
	if err != nil {
		return nil, err
	}
	return []any{e.Type, e.Actor, e.Subject.Kind, e.Subject.ID, data, keys}, nil
}

// encodeKeys encodes an entry's index keys as the JSON object the staging
// row keeps (an empty one when there are none). They are never part of
// the entry's bytes.
func encodeKeys(keys map[string]string) (string, error) {
	if len(keys) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(keys)
	if err != nil {
		return "", fmt.Errorf("audit: encode entry keys: %w", err)
	}
	return string(b), nil
}

// encode validates e and returns its bytes: the leaf data, stored and
// hashed verbatim.
func encode(e Entry) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	e.Time = e.Time.UTC()
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit: encode entry: %w", err)
	}
	return data, nil
}
