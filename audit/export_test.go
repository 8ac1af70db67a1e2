package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
	"github.com/docket-dev/docket/internal/pgtest"
)

// integrateForTest runs a real integrator over db until every staged
// entry is a leaf, so exports read a log whose tree is whole.
func integrateForTest(t testing.TB, db *sqlx.DB) {
	t.Helper()
	signer, vkey := testKeys(t)
	logtest.Drain(t, newTestLog(t, db, signer, vkey, audit.Options{}))
}

type seededExport struct {
	db      *sqlx.DB
	entries [][]byte // by index
	t0      time.Time
}

// seed appends a small history: policies, decisions for two tenants, an
// appeal and a reversal that refer to a decision. The writer keys each
// entry (tenant, rule) as a domain would; the log reads none of the
// records' fields.
func seedExport(t *testing.T) *seededExport {
	t.Helper()
	db := pgtest.New(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	es := []audit.Entry{
		{Type: "policy.revised", Time: at(0), Actor: "admin:ada", Subject: audit.Subject{Kind: "policy", ID: "crypto"}, Record: map[string]any{"code": "crypto", "version": 1},
			Keys: map[string]string{"rule": "crypto"}},
		{Type: "policy.revised", Time: at(1), Actor: "admin:ada", Subject: audit.Subject{Kind: "policy", ID: "gambling"}, Record: map[string]any{"code": "gambling", "version": 1},
			Keys: map[string]string{"rule": "gambling"}},
		{Type: "decision.recorded", Time: at(2), Actor: "enforcer:pipe", Subject: audit.Subject{Kind: "decision", ID: "d1"}, Record: map[string]any{"id": "d1"},
			Keys: map[string]string{"tenant": "acme", "rule": "crypto"}},
		{Type: "decision.recorded", Time: at(3), Actor: "enforcer:pipe", Subject: audit.Subject{Kind: "decision", ID: "d2"}, Record: map[string]any{"id": "d2"},
			Keys: map[string]string{"tenant": "globex", "rule": "gambling"}},
		{Type: "appeal.filed", Time: at(4), Actor: "advertiser:acme-owner", Subject: audit.Subject{Kind: "appeal", ID: "a1"},
			Refs: []audit.Subject{{Kind: "decision", ID: "d1"}}, Record: map[string]any{"id": "a1"},
			Keys: map[string]string{"tenant": "acme", "rule": "crypto"}},
		{Type: "decision.reversed", Time: at(5), Actor: "reviewer:rita", Subject: audit.Subject{Kind: "decision", ID: "d1"},
			Refs: []audit.Subject{{Kind: "appeal", ID: "a1"}}, Keys: map[string]string{"tenant": "acme", "rule": "crypto"}},
		{Type: "token.created", Time: at(6), Actor: "system:cli", Subject: audit.Subject{Kind: "token", ID: "t1"}, Record: map[string]any{"name": "x, \"quoted\"\nline"}},
	}
	for _, e := range es {
		tx, err := db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		_, err = audit.Append(ctx, tx, e)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	}
	integrateForTest(t, db)
	s := &seededExport{db: db, t0: t0}
	require.NoError(t, db.Select(&s.entries, `SELECT s.entry FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id ORDER BY l.idx`))
	require.Len(t, s.entries, len(es))
	return s
}

type jsonLine struct {
	Index    int64           `json:"index"`
	LeafHash string          `json:"leaf_hash"`
	Type     string          `json:"type"`
	Entry    json.RawMessage `json:"entry"`
}

func exportJSONL(t *testing.T, db *sqlx.DB, f audit.ExportFilter) []jsonLine {
	t.Helper()
	var buf bytes.Buffer
	w := audit.NewWriter(&buf, audit.JSONL)
	require.NoError(t, audit.Export(context.Background(), db, f, -1, w.Columns(), w.Write))
	require.NoError(t, w.Flush())
	var out []jsonLine
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l jsonLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
		out = append(out, l)
	}
	return out
}

func lineIndices(ls []jsonLine) []int64 {
	out := []int64{}
	for _, l := range ls {
		out = append(out, l.Index)
	}
	return out
}

func TestExportJSONLines(t *testing.T) {
	t.Parallel()
	s := seedExport(t)
	ls := exportJSONL(t, s.db, audit.ExportFilter{})
	require.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6}, lineIndices(ls))
	for i, l := range ls {
		// The entry is the exact leaf data, and the leaf hash is RFC 6962's.
		require.Equal(t, string(s.entries[i]), string(l.Entry))
		h := sha256.Sum256(append([]byte{0}, s.entries[i]...))
		require.Equal(t, base64.StdEncoding.EncodeToString(h[:]), l.LeafHash)
	}
	to := int64(5)
	at := func(m int) time.Time { return s.t0.Add(time.Duration(m) * time.Minute) }
	for name, c := range map[string]struct {
		f    audit.ExportFilter
		want []int64
	}{
		"index range":      {audit.ExportFilter{FromIndex: 2, ToIndex: &to}, []int64{2, 3, 4}},
		"type":             {audit.ExportFilter{Types: []string{"decision.recorded", "decision.reversed"}}, []int64{2, 3, 5}},
		"tenant":           {audit.ExportFilter{Keys: map[string]string{"tenant": "acme"}}, []int64{2, 4, 5}},
		"rule":             {audit.ExportFilter{Keys: map[string]string{"rule": "crypto"}}, []int64{0, 2, 4, 5}},
		"tenant and rule":  {audit.ExportFilter{Keys: map[string]string{"tenant": "globex", "rule": "gambling"}}, []int64{3}},
		"no such pair":     {audit.ExportFilter{Keys: map[string]string{"tenant": "globex", "rule": "crypto"}}, []int64{}},
		"unknown key name": {audit.ExportFilter{Keys: map[string]string{"colour": "acme"}}, []int64{}},
		"time range":       {audit.ExportFilter{From: at(1), To: at(4)}, []int64{1, 2, 3}},
		"time and tenant":  {audit.ExportFilter{From: at(3), Keys: map[string]string{"tenant": "acme"}}, []int64{4, 5}},
		"rule below index": {audit.ExportFilter{ToIndex: &to, Keys: map[string]string{"rule": "crypto"}}, []int64{0, 2, 4}},
		"nothing":          {audit.ExportFilter{Keys: map[string]string{"tenant": "nobody"}}, []int64{}},
	} {
		require.Equal(t, c.want, lineIndices(exportJSONL(t, s.db, c.f)), name)
		n, err := audit.CountExport(context.Background(), s.db, c.f, -1)
		require.NoError(t, err)
		require.EqualValues(t, len(c.want), n, name)
	}
}

func TestExportCSV(t *testing.T) {
	t.Parallel()
	s := seedExport(t)
	var buf bytes.Buffer
	w := audit.NewWriter(&buf, audit.CSV)
	require.NoError(t, audit.Export(context.Background(), s.db, audit.ExportFilter{}, -1, w.Columns(), w.Write))
	require.NoError(t, w.Flush())
	recs, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Equal(t, audit.CSVColumns(), recs[0])
	require.Len(t, recs, 8)
	for i, r := range recs[1:] {
		require.Equal(t, fmt.Sprint(i), r[0])
		require.Equal(t, string(s.entries[i]), r[7], "the entry column holds the exact bytes")
	}
	require.Equal(t, "token.created", recs[7][2])

	// An empty export still has its header.
	buf.Reset()
	w = audit.NewWriter(&buf, audit.CSV)
	require.NoError(t, audit.Export(context.Background(), s.db, audit.ExportFilter{Keys: map[string]string{"tenant": "nobody"}}, -1, w.Columns(), w.Write))
	require.NoError(t, w.Flush())
	require.Equal(t, "index,leaf_hash,type,actor,subject_kind,subject_id,staged_at,entry\n", buf.String())
}

// TestExportBatches crosses several keyset batches.
func TestExportBatches(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	n := 2*audit.ExportBatch + 17
	stageSeries(t, db, n)
	integrateForTest(t, db)
	var got int64
	prev := int64(-1)
	require.NoError(t, audit.Export(context.Background(), db, audit.ExportFilter{}, -1, audit.Narrow, func(r *audit.Row) error {
		require.Equal(t, prev+1, r.Index)
		prev = r.Index
		got++
		return nil
	}))
	require.EqualValues(t, n, got)
	got = 0
	require.NoError(t, audit.Export(context.Background(), db, audit.ExportFilter{Keys: map[string]string{"tenant": "adv-3"}}, -1, audit.Narrow, func(r *audit.Row) error {
		got++
		return nil
	}))
	want := 0
	for g := 0; g < n; g++ {
		if g%100 == 3 {
			want++
		}
	}
	require.EqualValues(t, want, got)
}

// treeSource builds the Merkle tree of the integrated leaves in memory and
// signs a checkpoint of it: a bundle source that needs no integrator.
func treeSource(t testing.TB, db *sqlx.DB) (audit.BundleSource, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "docket.test/audit")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	tree := testonly.New(rfc6962.DefaultHasher)
	var hashes [][]byte
	require.NoError(t, db.Select(&hashes, `SELECT leaf_hash FROM audit_leaves ORDER BY idx`))
	tree.Append(hashes...)
	cp := log.Checkpoint{Origin: "docket.test/audit", Size: tree.Size(), Hash: tree.Hash()}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(cp)}, signer)
	require.NoError(t, err)
	return audit.BundleSource{Checkpoint: signed, Key: vkey,
		InclusionProof: func(_ context.Context, index, size uint64) ([][]byte, error) { return tree.InclusionProof(index, size) },
	}, vkey
}

func TestWriteBundleVerifies(t *testing.T) {
	t.Parallel()
	s := seedExport(t)
	src, vkey := treeSource(t, s.db)
	ctx := context.Background()
	for name, c := range map[string]struct {
		f       audit.ExportFilter
		mode    string
		entries int64
	}{
		"full":       {audit.ExportFilter{}, audit.BundleFull, 7},
		"tenant":     {audit.ExportFilter{Keys: map[string]string{"tenant": "acme"}}, audit.BundleProofs, 3},
		"from index": {audit.ExportFilter{FromIndex: 3}, audit.BundleProofs, 4},
	} {
		var buf bytes.Buffer
		stats, err := audit.WriteBundle(ctx, s.db, &buf, c.f, c.f.String(), src, nil)
		require.NoError(t, err, name)
		require.Equal(t, c.mode, stats.Mode, name)
		require.Equal(t, c.entries, stats.Entries, name)
		res, err := audit.VerifyBundle(bytes.NewReader(buf.Bytes()), vkey, nil)
		require.NoError(t, err, name)
		require.Equal(t, c.entries, res.Entries, name)
		require.Equal(t, c.f.String(), res.Filter)

		// One changed byte in the middle of an entry's data is caught and named.
		b := buf.Bytes()
		at := bytes.LastIndex(b, []byte(`"data":"`)) + 30
		b[at] = flipB64(b[at])
		_, err = audit.VerifyBundle(bytes.NewReader(b), vkey, nil)
		require.Error(t, err, name)
		require.GreaterOrEqual(t, bundleErr(t, err).Index, int64(0))
	}
}

// newTestLog integrates everything staged with the real integrator,
// signing a checkpoint after every batch.
func exportTestLog(t testing.TB, db *sqlx.DB) *audit.Log {
	t.Helper()
	skey, vkey, err := audit.GenerateKey("docket.test/audit")
	require.NoError(t, err)
	signer, _, err := audit.ParseSignerKey(skey)
	require.NoError(t, err)
	l, err := audit.NewLog(db, signer, vkey, "docket.test/audit", audit.Options{CheckpointInterval: -1})
	require.NoError(t, err)
	logtest.DrainSigned(t, l)
	return l
}

// logSource is the bundle source a real log gives.
func exportLogSource(t testing.TB, l *audit.Log) audit.BundleSource {
	t.Helper()
	cp, err := l.LatestCheckpoint(context.Background())
	require.NoError(t, err)
	return audit.BundleSource{Checkpoint: cp.Note, Key: l.VerifierKey(), InclusionProof: l.InclusionProof}
}

// TestBundleFromLog makes bundles from the integrator's own tree and
// checkpoints, and verifies them offline with its verifier key.
func TestBundleFromLog(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	stageSeries(t, db, 3000)
	l := exportTestLog(t, db)
	src := exportLogSource(t, l)
	ctx := context.Background()
	for name, f := range map[string]audit.ExportFilter{
		"full":   {},
		"tenant": {Keys: map[string]string{"tenant": "adv-42"}},
		"rule":   {Keys: map[string]string{"rule": "policy-3"}, FromIndex: 1000},
	} {
		var buf bytes.Buffer
		stats, err := audit.WriteBundle(ctx, db, &buf, f, f.String(), src, nil)
		require.NoError(t, err, name)
		res, err := audit.VerifyBundle(bytes.NewReader(buf.Bytes()), l.VerifierKey(), nil)
		require.NoError(t, err, name)
		require.Equal(t, stats.Entries, res.Entries, name)
		require.EqualValues(t, 3000, res.Size, name)
	}
}

// TestKeysAreNotLeafBytes: an entry's index keys are stored beside it, never
// in its bytes, so the bytes and the leaf hash are those of the same entry
// without keys, and a log staged before keys existed verifies as before.
func TestKeysAreNotLeafBytes(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	e := audit.Entry{Type: "decision.recorded", Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Actor: "enforcer:pipe",
		Subject: audit.Subject{Kind: "decision", ID: "d1"}, Record: map[string]any{"id": "d1"}}
	plain, err := audit.StageArgs(e)
	require.NoError(t, err)
	keyed := e
	keyed.Keys = map[string]string{"tenant": "acme", "rule": "crypto"}
	withKeys, err := audit.StageArgs(keyed)
	require.NoError(t, err)
	want := `{"type":"decision.recorded","time":"2026-05-01T12:00:00Z","actor":"enforcer:pipe","subject":{"kind":"decision","id":"d1"},"record":{"id":"d1"}}`
	require.Equal(t, want, string(plain[4].([]byte)))
	require.Equal(t, want, string(withKeys[4].([]byte)), "keys are not part of the bytes")
	arrays, err := audit.StageArrays([]audit.Entry{keyed})
	require.NoError(t, err)
	require.Equal(t, want, string(arrays[4].(pq.ByteaArray)[0]))

	for _, x := range []audit.Entry{e, keyed} {
		tx, err := db.BeginTxx(ctx, nil)
		require.NoError(t, err)
		_, err = audit.Append(ctx, tx, x)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
	}
	integrateForTest(t, db)
	var rows []struct {
		Entry    []byte `db:"entry"`
		LeafHash []byte `db:"leaf_hash"`
		Keys     string `db:"keys"`
	}
	require.NoError(t, db.Select(&rows, `SELECT s.entry, l.leaf_hash, s.keys::text AS keys
		FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id ORDER BY l.idx`))
	require.Len(t, rows, 2)
	h := rfc6962.DefaultHasher.HashLeaf([]byte(want))
	for _, r := range rows {
		require.Equal(t, want, string(r.Entry))
		require.Equal(t, h, r.LeafHash)
	}
	require.Equal(t, "{}", rows[0].Keys)
	require.JSONEq(t, `{"tenant":"acme","rule":"crypto"}`, rows[1].Keys)

	// Incomplete keys are refused before anything is staged.
	keyed.Keys = map[string]string{"tenant": ""}
	_, err = audit.StageArgs(keyed)
	require.Error(t, err)
}
