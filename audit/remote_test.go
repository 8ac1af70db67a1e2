package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
	"github.com/docket-dev/docket/internal/logtest"
)

// serveLog answers the two public endpoints VerifyRemote reads, as the API
// does.
func serveLog(t *testing.T, l *audit.Log) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audit/checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp, err := l.LatestCheckpoint(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(cp.Note)
	})
	mux.HandleFunc("GET /v1/audit/key", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, l.VerifierKey())
	})
	mux.HandleFunc("GET /v1/audit/proofs/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
		p, err := l.ConsistencyProof(r.Context(), from, to)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"from": from, "to": to, "hashes": p})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestVerifyRemote(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tl := newTamperedLog(t) // 40 entries, checkpoints every 4
	srv := serveLog(t, tl.l)

	cp, err := tl.l.LatestCheckpoint(ctx)
	require.NoError(t, err)
	saved := cp.Note
	res, err := audit.VerifyRemote(ctx, srv.Client(), srv.URL, tl.vkey, saved)
	require.NoError(t, err)
	require.EqualValues(t, 40, res.Latest.Size)

	appendTx(t, tl.db, true, entries("later", 9)...)
	logtest.Drain(t, tl.l)
	res, err = audit.VerifyRemote(ctx, srv.Client(), srv.URL, "", saved)
	require.NoError(t, err)
	require.EqualValues(t, 49, res.Latest.Size)
	require.Equal(t, tl.vkey, res.Key)

	// A rewrite re-signed with the real key over every checkpoint from
	// the entry on leaves the database self-consistent: only a checkpoint
	// kept outside catches it.
	tl.exec(t, "audit_staging", fmt.Sprintf(editEntry, tl.stagingID(t, 13)))
	tl.exec(t, "audit_leaves", `UPDATE audit_leaves l SET leaf_hash = sha256('\x00'::bytea || s.entry) FROM audit_staging s WHERE s.id = l.staging_id AND l.idx = 13`)
	tl.rebuildNodes(t)
	var sizes []int
	require.NoError(t, tl.db.Select(&sizes, `SELECT size FROM audit_checkpoints WHERE size > 13 ORDER BY size`))
	tl.resign(t, tl.signer, sizes...)
	_, err = audit.Verify(ctx, tl.db, tl.vkey, audit.VerifyOptions{Origin: testOrigin})
	require.NoError(t, err, "nothing inside the database contradicts a complete re-signing")
	_, err = audit.VerifyRemote(ctx, srv.Client(), srv.URL, tl.vkey, saved)
	require.ErrorContains(t, err, "not an extension")

	// A checkpoint from another key is refused outright.
	_, otherKey := testKeys(t)
	_, err = audit.VerifyRemote(ctx, srv.Client(), srv.URL, otherKey, saved)
	require.ErrorContains(t, err, "signature")
}
