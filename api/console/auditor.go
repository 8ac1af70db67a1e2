package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// auditReaders may read the log's entries, as in the API.
var auditReaders = docket.Auditors

// auditPage is how many entries a page of the log shows.
const auditPage = 50

// entryRow is one entry as the log's table shows it: the fields every
// entry has, read from its exact bytes.
type entryRow struct {
	Index    int64
	LeafHash string
	Type     string
	Time     time.Time
	Actor    string
	Subject  struct{ Kind, ID string }
}

func rowOf(l audit.Leaf) entryRow {
	r := entryRow{Index: l.Index, LeafHash: base64.StdEncoding.EncodeToString(l.LeafHash), Type: l.Type}
	var e struct {
		Time    time.Time `json:"time"`
		Actor   string    `json:"actor"`
		Subject struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
		} `json:"subject"`
	}
	if json.Unmarshal(l.Data, &e) == nil {
		r.Time, r.Actor, r.Subject.Kind, r.Subject.ID = e.Time, e.Actor, e.Subject.Kind, e.Subject.ID
	}
	return r
}

type checkpointView struct {
	Size      uint64
	Root      string
	Note      string
	CreatedAt time.Time
}

type auditView struct {
	Checkpoint  *checkpointView
	Key         string
	Size        uint64
	Entries     []entryRow
	Prev, Next  string
	Start, Last int64
}

func (c *Console) auditLog() (*audit.Log, error) {
	if c.audit == nil {
		return nil, errNoAudit
	}
	return c.audit, nil
}

func checkpointOf(ctx *http.Request, l *audit.Log) (*checkpointView, error) {
	cp, err := l.LatestCheckpoint(ctx.Context())
	if errors.Is(err, audit.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &checkpointView{Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root), Note: string(cp.Note), CreatedAt: cp.CreatedAt}, nil
}

// auditIndex shows the latest signed checkpoint, the verifier key and a
// page of entries from ?start= on.
func (c *Console) auditIndex(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	l, err := c.auditLog()
	if err != nil {
		return err
	}
	var start int64
	if v := r.URL.Query().Get("start"); v != "" {
		if start, err = strconv.ParseInt(v, 10, 64); err != nil || start < 0 {
			return docket.Errorf(docket.Invalid, "start must be a non-negative whole number")
		}
	}
	v := auditView{Key: l.VerifierKey(), Start: start}
	if v.Checkpoint, err = checkpointOf(r, l); err != nil {
		return err
	}
	if v.Size, err = l.Size(r.Context()); err != nil {
		return err
	}
	leaves, err := l.Entries(r.Context(), uint64(start), auditPage)
	if err != nil {
		return err
	}
	for _, leaf := range leaves {
		v.Entries = append(v.Entries, rowOf(leaf))
	}
	if start > 0 {
		v.Prev = "/ui/audit?start=" + strconv.FormatInt(max(0, start-auditPage), 10)
	}
	if next := start + int64(len(leaves)); len(leaves) == auditPage && uint64(next) < v.Size {
		v.Next = "/ui/audit?start=" + strconv.FormatInt(next, 10)
	}
	if len(leaves) > 0 {
		v.Last = leaves[len(leaves)-1].Index
	}
	c.render(w, r, http.StatusOK, "audit", view{Session: s, Title: "Audit log", Data: v})
	return nil
}

type entryView struct {
	Row        entryRow
	JSON       string
	SHA256     string
	Checkpoint *checkpointView
	// Proof is the inclusion proof in the latest checkpoint's tree, and
	// Included says it was checked against that checkpoint's root.
	Proof    []string
	Included bool
	// Data is the entry's exact bytes (standard base64) and Key the log's
	// verifier key, for the check made in the browser (static/verify.js).
	Data, Key string
}

// auditEntry shows one entry's exact bytes (indented for reading; the
// leaf hash is of the bytes as stored) and its inclusion in the latest
// signed checkpoint.
func (c *Console) auditEntry(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	l, err := c.auditLog()
	if err != nil {
		return err
	}
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 63)
	if err != nil {
		return docket.Errorf(docket.NotFound, "there is no entry %q", r.PathValue("index"))
	}
	leaf, err := l.Entry(r.Context(), index)
	if errors.Is(err, audit.ErrNotFound) {
		return docket.Errorf(docket.NotFound, "there is no entry %d", index)
	}
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, leaf.Data, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(leaf.Data)
	}
	sum := sha256.Sum256(leaf.Data)
	v := entryView{Row: rowOf(leaf), JSON: pretty.String(), SHA256: base64.StdEncoding.EncodeToString(sum[:]),
		Data: base64.StdEncoding.EncodeToString(leaf.Data), Key: l.VerifierKey()}
	if v.Checkpoint, err = checkpointOf(r, l); err != nil {
		return err
	}
	if cp := v.Checkpoint; cp != nil && index < cp.Size {
		hashes, err := l.InclusionProof(r.Context(), index, cp.Size)
		if err != nil {
			return err
		}
		for _, h := range hashes {
			v.Proof = append(v.Proof, base64.StdEncoding.EncodeToString(h))
		}
		root, _ := base64.StdEncoding.DecodeString(cp.Root)
		v.Included = proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, leaf.LeafHash, hashes, root) == nil &&
			bytes.Equal(leaf.LeafHash, rfc6962.DefaultHasher.HashLeaf(leaf.Data))
	}
	c.render(w, r, http.StatusOK, "entry", view{Session: s, Title: "Audit entry " + strconv.FormatUint(index, 10), Data: v})
	return nil
}

// auditConsistency answers static/verify.js: the consistency proof (JSON,
// hashes in standard base64) from a tree of size ?from= (the checkpoint
// the auditor holds) to one of size ?to= (the server's latest). The
// browser checks it against the roots it holds; the server checks nothing.
func (c *Console) auditConsistency(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	l, err := c.auditLog()
	if err != nil {
		return err
	}
	var from, to uint64
	for name, p := range map[string]*uint64{"from": &from, "to": &to} {
		if *p, err = strconv.ParseUint(r.URL.Query().Get(name), 10, 63); err != nil {
			return docket.Errorf(docket.Invalid, "%s must be a tree size", name)
		}
	}
	hashes, err := l.ConsistencyProof(r.Context(), from, to)
	if errors.Is(err, audit.ErrInvalid) || errors.Is(err, audit.ErrNotFound) {
		return docket.Errorf(docket.Invalid, "there is no consistency proof from size %d to size %d", from, to)
	}
	if err != nil {
		return err
	}
	out := struct {
		From   uint64   `json:"from"`
		To     uint64   `json:"to"`
		Hashes []string `json:"hashes"`
	}{From: from, To: to, Hashes: []string{}}
	for _, h := range hashes {
		out.Hashes = append(out.Hashes, base64.StdEncoding.EncodeToString(h))
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(out)
}
