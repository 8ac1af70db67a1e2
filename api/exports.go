package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/appeals/dsa"
	"github.com/docket-dev/docket/audit"
)

// unboundWrite lifts the server's write deadline for a handler whose
// work, not its reader, is slow: the routes marked slow in routeTable.
func unboundWrite(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
}

// entryTypes are the audit entry types an export may select: the store's
// (appeals.EntryTypes) and the log's own.
var entryTypes = append(appeals.EntryTypes(), audit.EntryPredecessor)

// streamWriter buffers a streamed reply and pushes each full buffer to the
// client at once, so a long export arrives as it is made rather than at the end.
// Before each push it moves the connection's write deadline to extend past
// now: the server's WriteTimeout then bounds a reader that stalls, not the
// length of an export.
type streamWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	buf    *bufio.Writer
	wrote  bool
	extend time.Duration
}

func newStreamWriter(w http.ResponseWriter, extend time.Duration) *streamWriter {
	s := &streamWriter{w: w, rc: http.NewResponseController(w), extend: extend}
	s.buf = bufio.NewWriterSize(flushingWriter{s}, 64<<10)
	return s
}

type flushingWriter struct{ s *streamWriter }

func (f flushingWriter) Write(p []byte) (int, error) {
	f.s.wrote = true
	f.s.extendDeadline()
	n, err := f.s.w.Write(p)
	if err == nil {
		_ = f.s.rc.Flush()
	}
	return n, err
}

func (s *streamWriter) Write(p []byte) (int, error) { return s.buf.Write(p) }

func (s *streamWriter) extendDeadline() {
	if s.extend > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.extend))
	}
}

// end flushes what is left.
func (s *streamWriter) end() error {
	if err := s.buf.Flush(); err != nil {
		return err
	}
	s.extendDeadline()
	return s.rc.Flush()
}

// failStream ends a stream that broke after its first bytes: the status is
// sent already, so the connection is cut to show the client the reply is
// incomplete rather than letting it end as if whole.
func (s *Server) failStream(r *http.Request, sw *streamWriter, err error) error {
	if !sw.wrote {
		return err
	}
	s.logger.ErrorContext(r.Context(), "export broke off", slog.String("path", r.URL.Path), slog.Any("err", err))
	panic(http.ErrAbortHandler)
}

// exportBound reads from or to: an index (digits) or an RFC 3339 time.
func exportBound(r *http.Request, name string) (index *int64, at time.Time, err error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return nil, time.Time{}, invalidField(name, "must be a non-negative index or an RFC 3339 time")
		}
		return &n, time.Time{}, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return nil, time.Time{}, invalidField(name, "must be a non-negative index or an RFC 3339 time")
	}
	return nil, t, nil
}

// parseTime accepts an RFC 3339 time or a date (its midnight UTC), and
// returns it in UTC: Postgres refuses offsets beyond ±15:59, which RFC
// 3339 allows, and JSON (a report echoes its period) years beyond 9999,
// which a late time with a negative offset reaches in UTC.
func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		if t, err = time.Parse("2006-01-02", v); err != nil {
			return time.Time{}, err
		}
	}
	if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
		return time.Time{}, errors.New("api: time outside the years 0 to 9999 in UTC")
	}
	return t, nil
}

// auditExportFilter reads an audit export's parameters.
func auditExportFilter(r *http.Request) (audit.ExportFilter, audit.Format, error) {
	var f audit.ExportFilter
	q := r.URL.Query()
	var p docket.Problems
	fromIdx, fromAt, err := exportBound(r, "from")
	if err != nil {
		p = append(p, err.(*docket.Error).Fields...)
	}
	toIdx, toAt, err := exportBound(r, "to")
	if err != nil {
		p = append(p, err.(*docket.Error).Fields...)
	}
	if fromIdx != nil {
		f.FromIndex = *fromIdx
	}
	f.ToIndex, f.From, f.To = toIdx, fromAt, toAt
	for _, t := range q["type"] {
		for _, one := range strings.Split(t, ",") {
			if one = strings.TrimSpace(one); one == "" {
				continue
			}
			if !slices.Contains(entryTypes, one) {
				// Refused rather than matching nothing, so a typo is not
				// mistaken for an empty history.
				p.Add("type", "must be entry types among %s", strings.Join(entryTypes, ", "))
				break
			}
			f.Types = append(f.Types, one)
		}
	}
	advertiser := q.Get("advertiser_id")
	if advertiser != "" && !appeals.ValidPlatformID(advertiser) {
		p.Add("advertiser_id", "is not a valid advertiser id")
	}
	policy := q.Get("policy_code")
	if policy != "" && !appeals.ValidPolicyCode(policy) {
		p.Add("policy_code", "is not a valid policy code")
	}
	// The log indexes entries by the keys the domain gave them.
	f.Keys = appeals.AuditKeys(advertiser, policy)
	format, err := audit.ParseFormat(q.Get("format"))
	if err != nil {
		p.Add("format", "must be jsonl or csv")
	}
	return f, format, p.Err()
}

// exportAudit streams audit entries in index order as JSON lines or CSV.
func (s *Server) exportAudit(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	f, format, err := auditExportFilter(r)
	if err != nil {
		return err
	}
	if format == audit.CSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="docket-audit.`+string(format)+`"`)
	sw := newStreamWriter(w, s.limits.WriteTimeout)
	enc := audit.NewWriter(sw, format)
	err = audit.Export(r.Context(), s.store.DB(), f, -1, enc.Columns(), enc.Write)
	if err == nil {
		err = enc.Flush()
	}
	if err == nil {
		err = sw.end()
	}
	if err != nil {
		return s.failStream(r, sw, err)
	}
	return nil
}

// periodParams reads from and to as times (RFC 3339 or YYYY-MM-DD).
func periodParams(r *http.Request) (from, to time.Time, err error) {
	var p docket.Problems
	for _, name := range []string{"from", "to"} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		t, err := parseTime(v)
		if err != nil {
			p.Add(name, "must be an RFC 3339 time or a date YYYY-MM-DD")
			continue
		}
		if name == "from" {
			from = t
		} else {
			to = t
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		p.Add("to", "must be after from")
	}
	return from, to, p.Err()
}

// exportDSA streams statements of reasons as JSON lines.
func (s *Server) exportDSA(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	from, to, err := periodParams(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	sw := newStreamWriter(w, s.limits.WriteTimeout)
	enc := json.NewEncoder(sw)
	stats, err := s.store.ExportDSA(r.Context(), a, from, to, func(st *dsa.Statement) error { return enc.Encode(st) })
	if err == nil {
		err = sw.end()
	}
	if err != nil {
		return s.failStream(r, sw, err)
	}
	s.logger.InfoContext(r.Context(), "dsa export", slog.Int64("statements", stats.Statements), slog.Int64("outside_eea", stats.OutsideEEA))
	return nil
}

// reportAppeals answers the transparency figures as JSON, or CSV with format=csv.
func (s *Server) reportAppeals(w http.ResponseWriter, r *http.Request, a docket.Actor) error {
	from, to, err := periodParams(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		return invalidField("format", "must be json or csv")
	}
	rep, err := s.store.AppealsReport(r.Context(), a, appeals.Period{From: from, To: to})
	if err != nil {
		return err
	}
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		return rep.WriteCSV(w)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// BundleLine is one line of a bundle (audit.BundleFormat): the header
// (format, mode, key, checkpoint, filter), an entry (index, prev,
// leaf_hash, data, proof) or the trailer (end, count, last, sha256); for
// the document only.
type BundleLine struct {
	Format     string   `json:"format,omitempty" enumSet:"bundle_format"`
	Mode       string   `json:"mode,omitempty" enumSet:"bundle_mode"`
	Key        string   `json:"key,omitempty"`
	Checkpoint string   `json:"checkpoint,omitempty"`
	Filter     string   `json:"filter,omitempty"`
	Index      *int64   `json:"index,omitempty"`
	Prev       *int64   `json:"prev,omitempty"`
	LeafHash   []byte   `json:"leaf_hash,omitempty"`
	Data       []byte   `json:"data,omitempty"`
	Proof      [][]byte `json:"proof,omitempty"`
	End        string   `json:"end,omitempty" enumSet:"bundle_format"`
	Count      *int64   `json:"count,omitempty"`
	Last       *int64   `json:"last,omitempty"`
	SHA256     string   `json:"sha256,omitempty"`
}

// exportBundle streams a bundle of the entries the filters select, pinned
// to the latest signed checkpoint. Serving it needs no private key: the
// checkpoint is already signed, and the proofs come from the log's tree.
func (s *Server) exportBundle(w http.ResponseWriter, r *http.Request, _ docket.Actor) error {
	f, _, err := auditExportFilter(r)
	if err != nil {
		return err
	}
	l, cp, err := s.latestCheckpoint(r)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="docket-bundle.jsonl"`)
	sw := newStreamWriter(w, s.limits.WriteTimeout)
	src := audit.BundleSource{Checkpoint: cp.Note, Key: l.VerifierKey(), InclusionProof: l.InclusionProof}
	stats, err := audit.WriteBundle(r.Context(), s.store.DB(), sw, f, f.String(), src, nil)
	if err == nil {
		err = sw.end()
	}
	if err != nil {
		return s.failStream(r, sw, err)
	}
	s.logger.InfoContext(r.Context(), "bundle export", slog.String("mode", stats.Mode),
		slog.Int64("entries", stats.Entries), slog.Uint64("size", stats.Size))
	return nil
}
