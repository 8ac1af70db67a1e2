package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ExportFilter selects integrated entries for an export. Zero fields match
// everything; every bound is in index order, so an export is always a
// subsequence of the log.
type ExportFilter struct {
	// FromIndex is the first index included.
	FromIndex int64
	// ToIndex, when set, is the first index excluded.
	ToIndex *int64
	// From and To bound the entry's own "time": From <= time < To.
	From, To time.Time
	// Types keeps entries of these types only.
	Types []string
	// Keys keeps entries that have every one of these index keys, name
	// to value, as their writer gave them (Entry.Keys). What the names
	// mean is the writer's business.
	Keys map[string]string
}

// needsKeys reports whether the filter reads the side index of entry
// times and keys (audit_export_times, audit_export_keys) rather than the
// log's own columns.
func (f ExportFilter) needsKeys() bool {
	return !f.From.IsZero() || !f.To.IsZero() || len(f.Keys) > 0
}

// keyNames returns the filter's key names, sorted.
func (f ExportFilter) keyNames() []string {
	names := make([]string, 0, len(f.Keys))
	for k := range f.Keys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Indexed reports whether the filter is a plain index range: every entry
// from FromIndex up to ToIndex.
func (f ExportFilter) Indexed() bool {
	return !f.needsKeys() && len(f.Types) == 0
}

// Row is one exported entry. Its slices point into the driver's buffers
// and are valid only until the callback returns: one that keeps them must
// copy.
type Row struct {
	Index int64
	// LeafHash is the leaf hash in standard base64.
	LeafHash []byte
	// Type is the entry type.
	Type []byte
	// Data is the entry's exact bytes, the leaf data.
	Data []byte
	// The wide columns, read only when asked for.
	Actor, SubjectKind, SubjectID []byte
	StagedAt                      time.Time
}

// Columns says which of a Row's fields an export reads.
type Columns int

const (
	// Narrow reads index, leaf hash, type and data.
	Narrow Columns = iota
	// Wide reads the actor, subject and staging time as well.
	Wide
)

// ExportBatch is how many rows one keyset query reads: large enough to
// amortize the round trip, small enough that memory does not depend on the
// size of the log.
const ExportBatch = 5000

// Export streams the entries f selects, in index order, below size (the
// checkpoint the export is pinned to; a negative size means every
// integrated entry). It reads in keyset batches, so memory stays constant
// whatever the log's length, and stops at the first error fn returns.
func Export(ctx context.Context, db *sqlx.DB, f ExportFilter, size int64, cols Columns, fn func(*Row) error) error {
	if f.needsKeys() {
		if err := RefreshExportKeys(ctx, db); err != nil {
			return err
		}
	}
	query, args := exportQuery(f, size, cols)
	// One connection and one prepared statement for the whole export: the
	// batches share a plan, and parallel workers (whose start-up costs more
	// than a batch of index lookups saves) are off for this session only.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET max_parallel_workers_per_gather = 0`); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `RESET max_parallel_workers_per_gather`)
	stmt, err := conn.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer stmt.Close()
	return exportBatches(ctx, stmt, f.FromIndex, args, cols, fn)
}

// exportBatches runs the prepared keyset query from index next on, a
// batch at a time, handing each row to fn. The row and its byte slices
// are reused: they are valid only until fn returns.
func exportBatches(ctx context.Context, stmt *sql.Stmt, next int64, args []any, cols Columns, fn func(*Row) error) error {
	var (
		row                     Row
		hash, typ, data         sql.RawBytes
		actor, subjKind, subjID sql.RawBytes
		dest                    = []any{&row.Index, &hash, &typ, &data}
	)
	if cols == Wide {
		dest = append(dest, &actor, &subjKind, &subjID, &row.StagedAt)
	}
	scan := func(rows *sql.Rows) error {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("audit: export: scan: %w", err)
		}
		// Hash and type arrive as JSON strings (see exportQuery).
		row.LeafHash, row.Type, row.Data = unquote(hash), unquote(typ), data
		row.Actor, row.SubjectKind, row.SubjectID = actor, subjKind, subjID
		return fn(&row)
	}
	for {
		rows, err := stmt.QueryContext(ctx, append([]any{next}, args...)...)
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		n := 0
		for rows.Next() {
			n++
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		if n < ExportBatch {
			return nil
		}
		next = row.Index + 1
	}
}

// unquote strips a JSON string's quotes; the strings here (base64, entry
// types) hold nothing that needs escaping, and one that does is decoded.
func unquote(b []byte) []byte {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		if bytes.IndexByte(b, '\\') < 0 {
			return b[1 : len(b)-1]
		}
		var s string
		if json.Unmarshal(b, &s) == nil {
			return []byte(s)
		}
	}
	return b
}

// exportQuery builds the keyset query; $1 is the next index to read.
//
// The narrow columns come back typed json so that lib/pq hands over the
// wire bytes as they are: text would be copied into a string, and bytea
// sent as hex and decoded. The entry cast to json keeps its exact bytes
// (json, unlike jsonb, stores its input verbatim).
func exportQuery(f ExportFilter, size int64, cols Columns) (string, []any) {
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)+1) }
	// Drive the scan from the side index when it narrows by a key or by
	// time, so each batch is one range of a composite index: the first
	// key's (name, value, idx), or the times'.
	key := "l.idx"
	from := `audit_leaves l JOIN audit_staging s ON s.id = l.staging_id`
	names := f.keyNames()
	timed := !f.From.IsZero() || !f.To.IsZero()
	switch {
	case len(names) > 0:
		key = "k.idx"
		from = `audit_export_keys k JOIN audit_leaves l ON l.idx = k.idx JOIN audit_staging s ON s.id = l.staging_id`
		if timed {
			from += ` JOIN audit_export_times t ON t.idx = k.idx`
		}
	case timed:
		key = "t.idx"
		from = `audit_export_times t JOIN audit_leaves l ON l.idx = t.idx JOIN audit_staging s ON s.id = l.staging_id`
	}
	where := []string{key + " >= $1"}
	// The first key drives the scan; each other one is a primary-key probe
	// of the row at hand.
	for i, name := range names {
		if i == 0 {
			where = append(where, "k.name = "+arg(name), "k.value = "+arg(f.Keys[name]))
			continue
		}
		ki := "k" + strconv.Itoa(i)
		where = append(where, "EXISTS (SELECT 1 FROM audit_export_keys "+ki+" WHERE "+ki+".name = "+arg(name)+
			" AND "+ki+".value = "+arg(f.Keys[name])+" AND "+ki+".idx = k.idx)")
	}
	if f.ToIndex != nil {
		where = append(where, key+" < "+arg(*f.ToIndex))
	}
	if size >= 0 {
		where = append(where, key+" < "+arg(size))
	}
	if len(f.Types) > 0 {
		where = append(where, "s.type = ANY("+arg(pq.StringArray(f.Types))+")")
	}
	if !f.From.IsZero() {
		where = append(where, "t.entry_time >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "t.entry_time < "+arg(f.To))
	}
	sel := `l.idx, to_json(encode(l.leaf_hash, 'base64')), to_json(s.type), convert_from(s.entry, 'UTF8')::json`
	if cols == Wide {
		sel += `, s.actor, s.subject_kind, s.subject_id, s.created_at`
	}
	return `SELECT ` + sel + ` FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY ` + key + ` LIMIT ` + strconv.Itoa(ExportBatch), args
}

// CountExport counts the entries f selects below size, for progress bars.
func CountExport(ctx context.Context, db *sqlx.DB, f ExportFilter, size int64) (int64, error) {
	if f.Indexed() {
		hi := size
		if hi < 0 {
			var err error
			if hi, err = LeafCount(ctx, db); err != nil {
				return 0, fmt.Errorf("audit: count export: %w", err)
			}
		}
		if f.ToIndex != nil && *f.ToIndex < hi {
			hi = *f.ToIndex
		}
		return max(hi-f.FromIndex, 0), nil
	}
	if f.needsKeys() {
		if err := RefreshExportKeys(ctx, db); err != nil {
			return 0, err
		}
	}
	q, args := exportQuery(f, size, Narrow)
	q = "SELECT count(*) FROM" + q[strings.Index(q, " FROM ")+5:strings.LastIndex(q, "ORDER BY")]
	var n int64
	if err := db.GetContext(ctx, &n, q, append([]any{f.FromIndex}, args...)...); err != nil {
		return 0, fmt.Errorf("audit: count export: %w", err)
	}
	return n, nil
}

// RefreshExportKeys brings the side index of entry times and keys up to
// the last integrated leaf. It is derived data, filled here rather than by
// a trigger so that neither writers nor the integrator pay for exports;
// concurrent callers serialize on an advisory lock and the second finds
// nothing to do. The keys are the ones each entry's writer staged it with
// (audit_staging.keys), copied as they are: the log reads no field of an
// entry but its own "time".
func RefreshExportKeys(ctx context.Context, db *sqlx.DB) error {
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("audit: refresh export keys: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtextextended('docket:audit_export_keys', 0))`); err != nil {
		return fmt.Errorf("audit: refresh export keys: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended('docket:audit_export_keys', 0))`)
	const batch = 50000
	for {
		n, err := refreshBatch(ctx, conn, batch)
		if err != nil {
			return fmt.Errorf("audit: refresh export keys: %w", err)
		}
		if n < batch {
			return nil
		}
	}
}

// refreshBatch indexes the next batch of leaves, their times and their
// keys in one transaction, so that the times (which say how far the index
// goes) never get ahead of the keys.
func refreshBatch(ctx context.Context, conn *sqlx.Conn, batch int64) (int64, error) {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var next int64
	if err := tx.GetContext(ctx, &next, `SELECT coalesce(max(idx) + 1, 0) FROM audit_export_times`); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `
		INSERT INTO audit_export_times (idx, entry_time)
		SELECT l.idx, CASE WHEN t ~ '^\d{4}-\d\d-\d\dT' THEN t::timestamptz END
		FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id,
			LATERAL (SELECT convert_from(s.entry, 'UTF8')::jsonb->>'time' AS t) e
		WHERE l.idx >= $1 AND l.idx < $1 + $2
		ORDER BY l.idx`, next, batch)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO audit_export_keys (name, value, idx)
		SELECT k.key, k.value, l.idx
		FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id, jsonb_each_text(s.keys) k
		WHERE l.idx >= $1 AND l.idx < $1 + $2 AND s.keys <> '{}'`, next, batch); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// Format is an export's encoding.
type Format string

const (
	// JSONL writes one object per line: index, leaf_hash (standard
	// base64), type and entry (the exact bytes, which are JSON).
	JSONL Format = "jsonl"
	// CSV writes a header and one record per entry; the entry column
	// holds the exact bytes.
	CSV Format = "csv"
)

// ParseFormat accepts "jsonl" (the default when empty) or "csv".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "", "jsonl", "json":
		return JSONL, nil
	case "csv":
		return CSV, nil
	}
	return "", fmt.Errorf("audit: unknown export format %q (want jsonl or csv)", s)
}

// CSVColumns names the CSV export's columns.
func CSVColumns() []string {
	return []string{"index", "leaf_hash", "type", "actor", "subject_kind", "subject_id", "staged_at", "entry"}
}

// Columns is what the writer's format needs read.
func (x *Writer) Columns() Columns {
	if x.format == CSV {
		return Wide
	}
	return Narrow
}

// Writer encodes exported rows in one format. Flush must be called at the end.
type Writer struct {
	w      io.Writer
	format Format
	csv    *csv.Writer
	buf    []byte
	rec    []string
}

// NewWriter returns a Writer of format onto w. The CSV header is written
// with the first row, or by Flush when there is none.
func NewWriter(w io.Writer, format Format) *Writer {
	x := &Writer{w: w, format: format}
	if format == CSV {
		x.csv = csv.NewWriter(w)
		x.rec = make([]string, len(CSVColumns()))
	}
	return x
}

func (x *Writer) header() error {
	if x.csv != nil && x.rec[0] == "" {
		x.rec[0] = "-"
		return x.csv.Write(CSVColumns())
	}
	return nil
}

// Write encodes one row.
func (x *Writer) Write(r *Row) error {
	if x.format == CSV {
		if err := x.header(); err != nil {
			return fmt.Errorf("audit: csv: %w", err)
		}
		x.rec[0] = strconv.FormatInt(r.Index, 10)
		x.rec[1] = string(r.LeafHash)
		x.rec[2], x.rec[3], x.rec[4], x.rec[5] = string(r.Type), string(r.Actor), string(r.SubjectKind), string(r.SubjectID)
		x.rec[6] = r.StagedAt.UTC().Format(time.RFC3339Nano)
		x.rec[7] = string(r.Data)
		if err := x.csv.Write(x.rec); err != nil {
			return fmt.Errorf("audit: csv: %w", err)
		}
		return nil
	}
	b := x.buf[:0]
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, r.Index, 10)
	b = append(b, `,"leaf_hash":"`...)
	b = append(b, r.LeafHash...)
	b = append(b, `","type":`...)
	b = appendJSONString(b, r.Type)
	b = append(b, `,"entry":`...)
	// The entry is JSON already: embedding it verbatim keeps its exact
	// bytes, so a reader can hash them again.
	b = append(b, r.Data...)
	b = append(b, "}\n"...)
	x.buf = b
	if _, err := x.w.Write(b); err != nil {
		return fmt.Errorf("audit: jsonl: %w", err)
	}
	return nil
}

// Flush writes out anything buffered.
func (x *Writer) Flush() error {
	if x.csv != nil {
		if err := x.header(); err != nil {
			return fmt.Errorf("audit: csv: %w", err)
		}
		x.csv.Flush()
		if err := x.csv.Error(); err != nil {
			return fmt.Errorf("audit: csv: %w", err)
		}
	}
	return nil
}

// appendJSONString appends s as a JSON string. Entry types are short ASCII
// names, so the common case copies them through.
func appendJSONString(b []byte, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(string(s))
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
