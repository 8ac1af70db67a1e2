package crashtest

import (
	"context"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDoRecordsFaults: a keyed request's attempts that answer a 5xx other
// than 503 are the Faults noFaults reports; a 503 is an outage's and is
// not, and a 2xx after them still acks the request.
func TestDoRecordsFaults(t *testing.T) {
	replies := []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusOK}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(replies[min(int(n.Add(1))-1, len(replies)-1)])
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	// Neither process runs: send, finding the one it drew down, takes
	// the other, so that every attempt reaches srv.
	l := &Load{Procs: []*Proc{NewProc("a", "", addr, "", nil), NewProc("b", "", addr, "", nil)},
		RetryFor: 10 * time.Second, HC: srv.Client()}
	op := &Op{Kind: KindResolve, Key: "k"}
	r := l.do(context.Background(), mrand.New(mrand.NewPCG(1, 2)), op, http.MethodPost, "/", "token", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, len(replies), op.Attempts)
	require.True(t, op.Acked())
	require.Equal(t, []int{http.StatusInternalServerError, http.StatusBadGateway}, op.Faults)
	require.Len(t, noFaults([]Op{*op}), 2)
}
