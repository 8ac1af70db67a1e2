package api_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
)

const testOrigin = logtest.Origin

// testAuditLog is a log that signs a checkpoint after every batch.
func testAuditLog(t testing.TB, db *sqlx.DB) *audit.Log {
	t.Helper()
	return logtest.New(t, db, audit.Options{})
}

// integrateLog makes every committed entry a leaf under a signed checkpoint,
// waiting out transactions elsewhere in the cluster that hold back the
// integrator's horizon.
func (e *env) integrateLog() {
	e.t.Helper()
	logtest.Drain(e.t, e.log)
}

// auditRows are the Audit log routes' rows of the authorization matrix.
func auditRows() map[string]authzRow {
	m := map[string]authzRow{}
	integrated := func(path string) call {
		return func(e *env, _ string) (string, string, any) {
			e.integrateLog()
			return "GET", path, nil
		}
	}
	auditors := map[string]int{"admin": 200, "auditor": 200}
	m["GET /v1/audit/checkpoint"] = authzRow{call: integrated("/v1/audit/checkpoint"), public: true, want: map[string]int{"none": 200}}
	m["GET /v1/audit/key"] = authzRow{call: get("/v1/audit/key"), public: true, want: map[string]int{"none": 200}}
	m["GET /v1/audit/entries"] = authzRow{call: integrated("/v1/audit/entries"), want: auditors}
	m["GET /v1/audit/entries/{index}"] = authzRow{call: integrated("/v1/audit/entries/0"), want: auditors}
	m["GET /v1/audit/proofs/inclusion"] = authzRow{call: integrated("/v1/audit/proofs/inclusion?index=0"), public: true, want: map[string]int{"none": 200}}
	m["GET /v1/exports/bundle"] = authzRow{call: integrated("/v1/exports/bundle"), want: auditors}
	m["GET /v1/audit/proofs/consistency"] = authzRow{call: integrated("/v1/audit/proofs/consistency?from=0"), public: true, want: map[string]int{"none": 200}}
	return m
}

type apiEntry struct {
	Index    int64           `json:"index"`
	LeafHash []byte          `json:"leaf_hash"`
	Data     []byte          `json:"data"`
	Entry    json.RawMessage `json:"entry"`
}

// TestAuditAPI fetches everything as a client would and verifies it with
// the transparency-dev libraries against the signed checkpoint.
func TestAuditAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	for i := 0; i < 6; i++ {
		d := validDecision("crypto")
		d["ad_id"] = fmt.Sprintf("ad-%d", i)
		e.decision(d)
	}
	e.integrateLog()

	r := e.do("GET", "/v1/audit/key", "", nil)
	require.Equal(t, 200, r.Status)
	require.Contains(t, r.Header.Get("Content-Type"), "text/plain")
	v, err := note.NewVerifier(string(bytes.TrimSpace(r.Body)))
	require.NoError(t, err)

	checkpoint := func() *log.Checkpoint {
		r := e.do("GET", "/v1/audit/checkpoint", "", nil)
		require.Equal(t, 200, r.Status)
		require.Contains(t, r.Header.Get("Content-Type"), "text/plain")
		cp, _, _, err := log.ParseCheckpoint(r.Body, testOrigin, v)
		require.NoError(t, err, "%s", r.Body)
		return cp
	}
	first := checkpoint()
	require.GreaterOrEqual(t, first.Size, uint64(7))

	// Entries: exact bytes, their hash, the same parsed.
	r = e.do("GET", "/v1/audit/entries?start=0&limit=3", "auditor", nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var page struct {
		Items     []apiEntry `json:"items"`
		NextStart int64      `json:"next_start"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &page))
	require.Len(t, page.Items, 3)
	require.EqualValues(t, 3, page.NextStart)
	var all []apiEntry
	for start := int64(0); ; {
		r := e.do("GET", fmt.Sprintf("/v1/audit/entries?start=%d&limit=2", start), "admin", nil)
		require.Equal(t, 200, r.Status)
		page.Items = nil
		require.NoError(t, json.Unmarshal(r.Body, &page))
		if len(page.Items) == 0 {
			break
		}
		all = append(all, page.Items...)
		start = page.NextStart
	}
	require.Len(t, all, int(first.Size))
	for i, it := range all {
		require.EqualValues(t, i, it.Index)
		require.Equal(t, rfc6962.DefaultHasher.HashLeaf(it.Data), it.LeafHash)
		require.JSONEq(t, string(it.Data), string(it.Entry))
		var m map[string]any
		require.NoError(t, json.Unmarshal(it.Data, &m))
		for _, k := range []string{"type", "time", "actor", "subject"} {
			require.Contains(t, m, k)
		}
	}
	r = e.do("GET", "/v1/audit/entries/2", "auditor", nil)
	require.Equal(t, 200, r.Status)
	var one apiEntry
	require.NoError(t, json.Unmarshal(r.Body, &one))
	require.Equal(t, all[2].Data, one.Data)
	require.Equal(t, 404, e.do("GET", "/v1/audit/entries/999", "auditor", nil).Status)
	require.Equal(t, 404, e.do("GET", "/v1/audit/entries/x", "auditor", nil).Status)
	require.Equal(t, 400, e.do("GET", "/v1/audit/entries?limit=501", "auditor", nil).Status)

	// More history, then every proof against the new checkpoint.
	d := validDecision("crypto")
	d["ad_id"] = "ad-late"
	e.decision(d)
	e.integrateLog()
	latest := checkpoint()
	require.Greater(t, latest.Size, first.Size)
	for i := uint64(0); i < latest.Size; i++ {
		r := e.do("GET", fmt.Sprintf("/v1/audit/proofs/inclusion?index=%d", i), "", nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		var p struct {
			Index, Size uint64
			LeafHash    []byte   `json:"leaf_hash"`
			Hashes      [][]byte `json:"hashes"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &p))
		require.Equal(t, latest.Size, p.Size, "size defaults to the latest checkpoint's")
		require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, i, p.Size, p.LeafHash, p.Hashes, latest.Hash), "index %d", i)
		if i < first.Size {
			require.Equal(t, all[i].LeafHash, p.LeafHash)
		}
	}
	r = e.do("GET", fmt.Sprintf("/v1/audit/proofs/inclusion?index=1&size=%d", first.Size), "", nil)
	require.Equal(t, 200, r.Status)
	var p struct {
		Hashes []string `json:"hashes"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &p))
	hashes := make([][]byte, len(p.Hashes))
	for i, h := range p.Hashes {
		hashes[i], err = base64.StdEncoding.DecodeString(h)
		require.NoError(t, err, "hashes are standard base64")
	}
	require.NoError(t, proof.VerifyInclusion(rfc6962.DefaultHasher, 1, first.Size, all[1].LeafHash, hashes, first.Hash))

	for from := uint64(0); from <= latest.Size; from++ {
		r := e.do("GET", fmt.Sprintf("/v1/audit/proofs/consistency?from=%d&to=%d", from, latest.Size), "", nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		var c struct {
			From, To uint64
			Hashes   [][]byte `json:"hashes"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &c))
		if from == first.Size {
			require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, from, latest.Size, c.Hashes, first.Hash, latest.Hash))
		}
	}
	r = e.do("GET", fmt.Sprintf("/v1/audit/proofs/consistency?from=%d", first.Size), "", nil)
	require.Equal(t, 200, r.Status)

	for path, want := range map[string]int{
		"/v1/audit/proofs/inclusion":                     400,
		"/v1/audit/proofs/inclusion?index=-1":            400,
		"/v1/audit/proofs/inclusion?index=5&size=5":      400,
		"/v1/audit/proofs/inclusion?index=5&size=100000": 404,
		"/v1/audit/proofs/consistency":                   400,
		"/v1/audit/proofs/consistency?from=5&to=4":       400,
		"/v1/audit/proofs/consistency?from=1&to=100000":  404,
	} {
		r := e.do("GET", path, "", nil)
		require.Equal(t, want, r.Status, "%s: %s", path, r.Body)
		require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	}
}

// checkpointNote finds the stored signed note of an earlier checkpoint, as
// an auditor who saved it would have it.
func (e *env) checkpointNote(cp *log.Checkpoint, v note.Verifier) string {
	var n string
	require.NoError(e.t, e.db.Get(&n, `SELECT note FROM audit_checkpoints WHERE size = $1`, cp.Size))
	_, err := note.Open([]byte(n), note.VerifierList(v))
	require.NoError(e.t, err)
	return n
}
