package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api/client"

	"github.com/docket-dev/docket/internal/pgtest"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix(StandardMix)
	require.NoError(t, err)
	require.Equal(t, Mix{OpDecisions: 70, OpAppeals: 10, OpClaims: 10, OpReads: 10}, m)
	require.Equal(t, "appeals=10,claims=10,decisions=70,reads=10", m.String())
	for _, bad := range []string{"", "decisions=0", "decisions", "decisions=-1", "writes=3", "decisions=x"} {
		_, err := ParseMix(bad)
		require.Error(t, err, bad)
	}
}

func TestCheckURL(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "https://[::1]:443/x", "http://127.9.9.9"} {
		_, err := CheckURL(ok, false)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"http://10.0.0.1", "http://example.com", "ftp://127.0.0.1", "127.0.0.1:8080", "http://"} {
		_, err := CheckURL(bad, false)
		require.Error(t, err, bad)
	}
	_, err := CheckURL("http://example.com", true)
	require.NoError(t, err)
}

func TestParseCheckpointSize(t *testing.T) {
	n, err := ParseCheckpointSize([]byte("docket.local/audit\n42\nAAAA\n\n— docket.local/audit xyz\n"))
	require.NoError(t, err)
	require.EqualValues(t, 42, n)
	_, err = ParseCheckpointSize([]byte("origin\nx\nroot\n"))
	require.Error(t, err)
	_, err = ParseCheckpointSize([]byte("origin\n"))
	require.Error(t, err)
}

func TestIntegrationLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	writes := []write{
		{ack: at(10), entries: 1},
		{ack: at(5), entries: 1},
		{ack: at(30), entries: 2},
		{ack: at(90), entries: 1}, // never covered
	}
	obs := []observation{
		{at(0), 100}, {at(8), 101}, {at(20), 102}, {at(40), 103}, {at(60), 104}, {at(100), 104},
	}
	lats, uncovered := integrationLag(100, writes, obs)
	require.Equal(t, 1, uncovered)
	// ack 5 needs 101: seen at 8; ack 10 needs 102: seen at 20; ack 30 needs 104: seen at 60.
	require.Equal(t, []time.Duration{3 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond}, lats)
}

func TestDistribution(t *testing.T) {
	var lats []time.Duration
	for i := 100; i >= 1; i-- {
		lats = append(lats, time.Duration(i)*time.Millisecond)
	}
	d := distribution(lats)
	require.Equal(t, Latency{P50: 50, P90: 90, P99: 99, Max: 100}, d)
	require.Equal(t, Latency{}, distribution(nil))
}

// fakeDocket answers the contract's routes just enough for the generator,
// and publishes a checkpoint that grows by the entries each write appends.
type fakeDocket struct {
	size    atomic.Int64
	mu      sync.Mutex
	pending []string
	n       int
}

func (f *fakeDocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/audit/checkpoint" {
		fmt.Fprintf(w, "test/log\n%d\nAAAA\n\n— test/log sig\n", f.size.Load())
		return
	}
	if r.Header.Get("Authorization") == "" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("id-%d", f.n)
	switch {
	case r.Method == http.MethodPut:
		f.size.Add(1)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{}`)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/decisions":
		f.size.Add(1)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, id)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/appeals"):
		f.size.Add(1)
		f.pending = append(f.pending, id)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, id)
	case r.URL.Path == "/v1/appeals/claim":
		if len(f.pending) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		f.size.Add(1)
		fmt.Fprintf(w, `{"id":%q}`, f.pending[0])
		f.pending = f.pending[1:]
	case strings.HasSuffix(r.URL.Path, "/resolve"):
		var in struct{ Outcome string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.size.Add(1)
		if in.Outcome == "reversed" {
			f.size.Add(1)
		}
		fmt.Fprint(w, `{}`)
	default:
		fmt.Fprint(w, `{}`)
	}
}

func TestRunAgainstFake(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(&fakeDocket{})
	defer srv.Close()
	mix, err := ParseMix(StandardMix)
	require.NoError(t, err)
	rep, err := Run(context.Background(), Config{URL: srv.URL, Duration: 700 * time.Millisecond, Clients: 4, Mix: mix,
		PollInterval: 10 * time.Millisecond,
		Tokens: Tokens{Admin: "a", Enforcer: "e", Reviewers: []string{"r"},
			Advertisers: []Advertiser{{ID: "x", Token: "x"}, {ID: "y", Token: "y"}}}})
	require.NoError(t, err)
	for _, row := range []string{rowDecision, rowAppeal, rowClaim, rowRead} {
		o, ok := rep.Op(row)
		require.True(t, ok, row)
		require.Positive(t, o.Requests, row)
		require.Zero(t, o.Errors, row)
	}
	require.NotNil(t, rep.Integration)
	require.Positive(t, rep.Integration.Samples)
	require.Zero(t, rep.Integration.Uncovered)
	for _, n := range rep.Notes {
		require.NotContains(t, n, "checkpoint size", "the counting disagreed with the fake: %v", rep.Notes)
	}
	var sb strings.Builder
	require.NoError(t, rep.WriteText(&sb))
	require.Contains(t, sb.String(), "integration lag")
}

// BenchmarkRunAgainstFake measures the bench's own cost per request: a
// fake that answers at once leaves only the client side, what issuing
// requests through api/client could slow down. It reports requests/s.
func BenchmarkRunAgainstFake(b *testing.B) {
	srv := httptest.NewServer(&fakeDocket{})
	defer srv.Close()
	mix, err := ParseMix(StandardMix)
	require.NoError(b, err)
	var reqs int64
	var secs float64
	for b.Loop() {
		rep, err := Run(context.Background(), Config{URL: srv.URL, Duration: time.Second, Clients: 4, Mix: mix,
			PollInterval: 10 * time.Millisecond,
			Tokens: Tokens{Admin: "a", Enforcer: "e", Reviewers: []string{"r"},
				Advertisers: []Advertiser{{ID: "x", Token: "x"}, {ID: "y", Token: "y"}}}})
		require.NoError(b, err)
		for _, o := range rep.Ops {
			reqs += int64(o.Requests)
		}
		secs += rep.DurationS
	}
	b.ReportMetric(float64(reqs)/secs, "req/s")
}

func TestRunBaseline(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b, err := RunBaseline(context.Background(), db.DB, 2, 300*time.Millisecond, DecisionPayload("acme", "p", "ad-1", 1))
	require.NoError(t, err)
	require.Positive(t, b.Inserts)
	require.Zero(t, b.Errors)
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM pg_tables WHERE tablename = $1`, b.Table))
	require.Zero(t, n, "scratch table not dropped")
}

func TestRunRefusesRemote(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "http://192.0.2.1", Duration: time.Second, Clients: 1,
		Mix: Mix{OpDecisions: 1}, Tokens: Tokens{Admin: "a", Enforcer: "e", Reviewers: []string{"r"}, Advertisers: []Advertiser{{"x", "x"}}}})
	require.ErrorContains(t, err, "loopback")
}

func TestExactLag(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	obs := []observation{{at(0), 10}, {at(20), 12}, {at(40), 15}}
	lats, uncovered := exactLag([]write{
		{ack: at(5), index: 11},  // size 12 at 20
		{ack: at(1), index: 9},   // size 10 covers, first after ack at 20
		{ack: at(30), index: 15}, // never
		{ack: at(30), index: -1}, // unknown: skipped
	}, obs)
	require.Equal(t, []time.Duration{15 * time.Millisecond, 19 * time.Millisecond}, lats)
	require.Equal(t, 1, uncovered)
}

// TestDecisionPayloadIsTheBenchsDecision: the baseline inserts the bytes
// the bench sends.
func TestDecisionPayloadIsTheBenchsDecision(t *testing.T) {
	t.Parallel()
	var in client.DecisionInput
	require.NoError(t, json.Unmarshal(DecisionPayload("adv", "pol", "ad-1-2", 2), &in))
	require.Equal(t, decisionInput("adv", "pol", "ad-1-2", 2), in)
}
