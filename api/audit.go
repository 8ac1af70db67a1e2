package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// AuditEntry is one leaf: data is the entry's exact bytes (the leaf data),
// entry the same bytes as JSON.
type AuditEntry struct {
	Index    int64           `json:"index"`
	LeafHash []byte          `json:"leaf_hash"`
	Data     []byte          `json:"data"`
	Entry    json.RawMessage `json:"entry"`
}

// AuditEntries is a page of leaves; next_start is where the next page (or
// the next poll for new entries) begins.
type AuditEntries struct {
	Items     []AuditEntry `json:"items"`
	NextStart int64        `json:"next_start"`
}

// AuditExportLine is one line of the audit export in JSON lines (audit.Writer
// writes it); for the document only.
type AuditExportLine struct {
	Index    int64           `json:"index" required:"true"`
	LeafHash []byte          `json:"leaf_hash" required:"true"`
	Type     string          `json:"type" required:"true"`
	Entry    json.RawMessage `json:"entry" required:"true"`
}

// The proofs' wire shapes are the log's own (one declaration for the
// server and its clients).
type (
	InclusionProof   = audit.InclusionProof
	ConsistencyProof = audit.ConsistencyProof
)

func auditEntry(l audit.Leaf) AuditEntry {
	return AuditEntry{Index: l.Index, LeafHash: l.LeafHash, Data: l.Data, Entry: l.Data}
}

// auditError maps the log's errors to the domain's codes.
func auditError(err error) error {
	switch {
	case errors.Is(err, audit.ErrNotFound):
		return docket.Errorf(docket.NotFound, "%s", err.Error())
	case errors.Is(err, audit.ErrInvalid):
		return docket.Errorf(docket.Invalid, "%s", err.Error())
	}
	return err
}

func (s *Server) auditLog() (*audit.Log, error) {
	if s.audit == nil {
		return nil, &httpError{status: http.StatusServiceUnavailable, slug: "unavailable", detail: "the audit log is not running"}
	}
	return s.audit, nil
}

func writeText(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// getAuditCheckpoint serves the latest signed checkpoint, byte for byte.
func (s *Server) getAuditCheckpoint(w http.ResponseWriter, r *http.Request) error {
	_, cp, err := s.latestCheckpoint(r)
	if err != nil {
		return err
	}
	writeText(w, cp.Note)
	return nil
}

// latestCheckpoint is the running log and its latest signed checkpoint,
// or the error to answer when there is none to serve.
func (s *Server) latestCheckpoint(r *http.Request) (*audit.Log, audit.Checkpoint, error) {
	l, err := s.auditLog()
	if err != nil {
		return nil, audit.Checkpoint{}, err
	}
	cp, err := l.LatestCheckpoint(r.Context())
	if err != nil {
		return nil, audit.Checkpoint{}, auditError(err)
	}
	return l, cp, nil
}

func (s *Server) getAuditKey(w http.ResponseWriter, r *http.Request) error {
	l, err := s.auditLog()
	if err != nil {
		return err
	}
	writeText(w, []byte(l.VerifierKey()+"\n"))
	return nil
}

func (s *Server) listAuditEntries(w http.ResponseWriter, r *http.Request, _ docket.Actor) error {
	l, err := s.auditLog()
	if err != nil {
		return err
	}
	start, err := queryInt(r, "start", 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		return err
	}
	if limit < 1 || limit > appeals.MaxLimit {
		return invalidField("limit", "must be a whole number from 1 to 500")
	}
	leaves, err := l.Entries(r.Context(), uint64(start), int(limit))
	if err != nil {
		return auditError(err)
	}
	page := AuditEntries{Items: make([]AuditEntry, 0, len(leaves)), NextStart: start}
	for _, lf := range leaves {
		page.Items = append(page.Items, auditEntry(lf))
		page.NextStart = lf.Index + 1
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) getAuditEntry(w http.ResponseWriter, r *http.Request, _ docket.Actor) error {
	l, err := s.auditLog()
	if err != nil {
		return err
	}
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 63)
	if err != nil {
		return docket.Errorf(docket.NotFound, "no entry at index %q", r.PathValue("index"))
	}
	lf, err := l.Entry(r.Context(), index)
	if err != nil {
		return auditError(err)
	}
	writeJSON(w, http.StatusOK, auditEntry(lf))
	return nil
}

// sizeParam reads a tree size, defaulting to the latest checkpoint's so
// that a proof verifies against what GET /v1/audit/checkpoint serves.
func (s *Server) sizeParam(r *http.Request, l *audit.Log, name string) (uint64, error) {
	if r.URL.Query().Get(name) == "" {
		cp, err := l.LatestCheckpoint(r.Context())
		if err != nil {
			return 0, auditError(err)
		}
		return cp.Size, nil
	}
	n, err := queryInt(r, name, 0)
	return uint64(n), err
}

func requiredUint(r *http.Request, name string) (uint64, error) {
	if r.URL.Query().Get(name) == "" {
		return 0, invalidField(name, "is required")
	}
	n, err := queryInt(r, name, 0)
	return uint64(n), err
}

func (s *Server) getInclusionProof(w http.ResponseWriter, r *http.Request) error {
	l, err := s.auditLog()
	if err != nil {
		return err
	}
	// Both parameters are read before either error is returned, so that
	// one 400 names every bad one.
	index, ierr := requiredUint(r, "index")
	size, err := s.sizeParam(r, l, "size")
	if err = joinInvalid(ierr, err); err != nil {
		return err
	}
	if index >= size {
		return invalidField("index", "must be below size ("+strconv.FormatUint(size, 10)+")")
	}
	hashes, err := l.InclusionProof(r.Context(), index, size)
	if err != nil {
		return auditError(err)
	}
	lf, err := l.Entry(r.Context(), index)
	if err != nil {
		return auditError(err)
	}
	writeJSON(w, http.StatusOK, InclusionProof{Index: index, Size: size, LeafHash: lf.LeafHash, Hashes: hashes})
	return nil
}

func (s *Server) getConsistencyProof(w http.ResponseWriter, r *http.Request) error {
	l, err := s.auditLog()
	if err != nil {
		return err
	}
	from, ferr := requiredUint(r, "from")
	to, err := s.sizeParam(r, l, "to")
	if err = joinInvalid(ferr, err); err != nil {
		return err
	}
	if from > to {
		return invalidField("from", "must not be above to ("+strconv.FormatUint(to, 10)+")")
	}
	hashes, err := l.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		return auditError(err)
	}
	writeJSON(w, http.StatusOK, ConsistencyProof{From: from, To: to, Hashes: hashes})
	return nil
}

// auditOps documents the Audit log routes for /openapi.json.
func auditOps() map[string]op {
	return map[string]op{
		"GET /v1/audit/checkpoint": op{Summary: "The latest signed checkpoint: a C2SP tlog-checkpoint (origin, size, base64 root) as a C2SP signed note, Ed25519",
			Status: http.StatusOK, Content: []string{"text/plain"}, Headers: []string{"Cache-Control"}, Errors: []int{404, 503}},
		"GET /v1/audit/key": op{Summary: "The note verifier key (name+hash+base64key) of the checkpoint signer",
			Status: http.StatusOK, Content: []string{"text/plain"}, Headers: []string{"Cache-Control"}, Errors: []int{503}},
		"GET /v1/audit/entries": op{Summary: "Leaves from index start on: the exact bytes (data, base64) and the same parsed (entry); next_start continues",
			Reply: AuditEntries{}, Status: http.StatusOK, Query: []string{"start", "limit"}, Errors: []int{503}},
		"GET /v1/audit/entries/{index}": op{Summary: "One leaf",
			Reply: AuditEntry{}, Status: http.StatusOK, Errors: []int{404, 503}},
		"GET /v1/audit/proofs/inclusion": op{Summary: "RFC 6962 inclusion proof of the leaf at index in the tree of size (default: the latest checkpoint's)",
			Reply: InclusionProof{}, Status: http.StatusOK, Query: []string{"index", "size"}, Errors: []int{404, 503}},
		"GET /v1/audit/proofs/consistency": op{Summary: "RFC 6962 consistency proof between tree sizes from and to (default: the latest checkpoint's)",
			Reply: ConsistencyProof{}, Status: http.StatusOK, Query: []string{"from", "to"}, Errors: []int{404, 503}},
	}
}

// joinInvalid joins parameter errors: the field errors of every Invalid
// one, since bad input is the caller's to fix first; else the first error.
func joinInvalid(errs ...error) error {
	var fields []docket.FieldError
	var other error
	for _, err := range errs {
		var de *docket.Error
		switch {
		case err == nil:
		case errors.As(err, &de) && de.Code == docket.Invalid:
			fields = append(fields, de.Fields...)
		case other == nil:
			other = err
		}
	}
	if len(fields) == 0 {
		return other
	}
	return &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields", Fields: fields}
}
