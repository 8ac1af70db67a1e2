package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/docket-dev/docket/api/client"
	"github.com/docket-dev/docket/appeals"
)

// Entries the contract says each write appends to the audit log; the
// integration lag is measured by counting them (see the package comment).
const (
	entriesDecision       = 1 // decision.recorded
	entriesAppeal         = 1 // appeal.filed
	entriesClaim          = 1 // appeal.claimed
	entriesResolve        = 1 // appeal.resolved
	entriesResolveReverse = 2 // appeal.resolved and decision.reversed
)

// reverseShare is the share of resolutions that reverse the decision, so
// that the reversal path is under load too.
const reverseShare = 0.2

type runner struct {
	cfg  Config
	base string
	hc   *http.Client
	log  *slog.Logger
	// The API clients, one per token: every request of the run goes
	// through api/client, as an integrator's would.
	admin, enforcer *client.Client
	reviewers       []*client.Client
	advertisers     []*client.Client
	pool            pool
	available       map[string]bool
	pick            picker

	serverVersion string

	notesMu sync.Mutex
	notes   []string
}

func (r *runner) note(format string, args ...any) {
	r.notesMu.Lock()
	defer r.notesMu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// sample is one request's outcome.
type opSamples struct {
	lat    []time.Duration
	status map[int]int
}

// write is a successful state change, for the lag measurements.
type write struct {
	ack        time.Time
	entries    int
	decisionID string // set for decisions, to match notifications
	index      int64  // leaf index when a notification told it, else -1
}

type clientStats struct {
	ops       map[string]*opSamples
	writes    []write
	fallbacks map[string]int
}

func (c *clientStats) record(op string, d time.Duration, status int) {
	s := c.ops[op]
	if s == nil {
		s = &opSamples{status: map[int]int{}}
		c.ops[op] = s
	}
	s.lat = append(s.lat, d)
	s.status[status]++
}

// Rows of the report: an operation of the mix may issue more than one
// kind of request.
const (
	rowDecision = "decision"
	rowAppeal   = "appeal"
	rowClaim    = "claim"
	rowResolve  = "resolve"
	rowRead     = "read"
	rowList     = "list"
)

var rowEndpoint = map[string]string{
	rowDecision: "POST /v1/decisions",
	rowAppeal:   "POST /v1/decisions/{id}/appeals",
	rowClaim:    "POST /v1/appeals/claim",
	rowResolve:  "POST /v1/appeals/{id}/resolve",
	rowRead:     "GET /v1/decisions/{id}",
	rowList:     "GET /v1/decisions?advertiser_id=",
}

var rowOrder = []string{rowDecision, rowAppeal, rowClaim, rowResolve, rowRead, rowList}

// Run creates the bench's policy, drives the service for cfg.Duration and
// returns the report. The baseline is separate: see RunBaseline. It runs
// in phases: connect, set up, start the watchers, drive, measure the lags.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	r, err := newRunner(cfg)
	if err != nil {
		return nil, err
	}
	defer r.hc.CloseIdleConnections()
	mix, err := r.prepare(ctx)
	if err != nil {
		return nil, err
	}
	w := r.watch(ctx)
	defer w.stop()

	r.log.Info("bench running", slog.String("url", r.base), slog.Int("clients", r.cfg.Clients),
		slog.String("mix", mix.String()), slog.Duration("duration", r.cfg.Duration))
	start := time.Now()
	stats := r.drive(ctx, start.Add(r.cfg.Duration))
	elapsed := time.Since(start)

	rep := &Report{URL: r.base, StartedAt: start.UTC(), DurationS: elapsed.Seconds(), Clients: r.cfg.Clients,
		Mix: r.cfg.Mix.String(), PolicyCode: r.cfg.PolicyCode, ServerVersion: r.serverVersion}
	rep.Ops = summarizeOps(stats, elapsed)
	writes := r.collect(stats)
	if ctx.Err() != nil {
		// Waiting for the log to catch up would hold an operator who asked to stop.
		r.note("interrupted after %.1fs: lags not measured", elapsed.Seconds())
	} else {
		r.measureLags(ctx, rep, w, writes)
	}
	r.notesMu.Lock()
	rep.Notes = append(rep.Notes, r.notes...)
	r.notesMu.Unlock()
	return rep, nil
}

// newRunner checks cfg, fills its defaults and makes one API client per
// token.
func newRunner(cfg Config) (*runner, error) {
	if cfg.Clients < 1 {
		return nil, errors.New("loadgen: clients must be at least 1")
	}
	if cfg.Duration <= 0 {
		return nil, errors.New("loadgen: duration must be positive")
	}
	if cfg.Tokens.Admin == "" || cfg.Tokens.Enforcer == "" || len(cfg.Tokens.Reviewers) == 0 || len(cfg.Tokens.Advertisers) == 0 {
		return nil, errors.New("loadgen: need admin, enforcer, reviewer and advertiser tokens")
	}
	u, err := CheckURL(cfg.URL, cfg.AllowRemote)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 25 * time.Millisecond
	}
	if cfg.PolicyCode == "" {
		cfg.PolicyCode = "bench-load"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	u.Path, u.RawQuery, u.Fragment = "", "", ""
	r := &runner{cfg: cfg, base: u.String(), hc: newHTTPClient(cfg.Clients), log: cfg.Logger}
	api, err := client.New(r.base, "", r.hc)
	if err != nil {
		r.hc.CloseIdleConnections()
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	r.admin, r.enforcer = api.WithToken(cfg.Tokens.Admin), api.WithToken(cfg.Tokens.Enforcer)
	for _, t := range cfg.Tokens.Reviewers {
		r.reviewers = append(r.reviewers, api.WithToken(t))
	}
	for _, a := range cfg.Tokens.Advertisers {
		r.advertisers = append(r.advertisers, api.WithToken(a.Token))
	}
	return r, nil
}

// prepare creates the bench's records and keeps the operations of the
// mix that the set-up made possible.
func (r *runner) prepare(ctx context.Context) (Mix, error) {
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	mix := Mix{}
	for op, w := range r.cfg.Mix {
		if r.available[op] {
			mix[op] = w
		}
	}
	if mix.total() == 0 {
		return nil, errors.New("loadgen: no operation of the mix is available")
	}
	r.pick = newPicker(mix)
	return mix, nil
}

// watchers observe the log's checkpoints and, when a NATS URL is set, its
// notifications, for the lag measurements; either may be missing.
type watchers struct {
	cp     *checkpointWatcher // nil when the log never settled
	s0     int64              // the checkpoint size before the run
	nw     *natsWatcher
	stopCP context.CancelFunc
	cpDone sync.WaitGroup
}

// stop ends the checkpoint poll and the NATS connection; it may be called
// twice.
func (w *watchers) stop() {
	if w.stopCP != nil {
		w.stopCP()
		w.cpDone.Wait()
	}
	if w.nw != nil {
		w.nw.close()
		w.nw = nil
	}
}

func (r *runner) watch(ctx context.Context) *watchers {
	w := &watchers{}
	cp := newCheckpointWatcher(r.hc, r.base, r.cfg.PollInterval)
	if size, err := cp.settle(ctx, time.Second, 10*time.Second); err != nil {
		r.note("integration lag not measured: %v", err)
	} else {
		w.cp, w.s0 = cp, size
		pollCtx, stop := context.WithCancel(ctx)
		w.stopCP = stop
		w.cpDone.Add(1)
		go func() { defer w.cpDone.Done(); cp.poll(pollCtx) }()
	}
	if r.cfg.NATSURL == "" {
		return w
	}
	var auth []nats.Option
	var err error
	if r.cfg.NATSAuth != nil {
		auth, err = r.cfg.NATSAuth()
	}
	if err == nil {
		w.nw, err = newNATSWatcher(r.cfg.NATSURL, r.cfg.AllowRemote, auth...)
	}
	if err != nil {
		r.note("notification lag not measured: %v", err)
	}
	return w
}

// drive runs the clients until deadline.
func (r *runner) drive(ctx context.Context, deadline time.Time) []*clientStats {
	stats := make([]*clientStats, r.cfg.Clients)
	var wg sync.WaitGroup
	for i := range stats {
		stats[i] = &clientStats{ops: map[string]*opSamples{}, fallbacks: map[string]int{}}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r.client(ctx, i, deadline, stats[i])
		}(i)
	}
	wg.Wait()
	return stats
}

// collect gathers the clients' writes and notes the operations that had
// to turn into decisions.
func (r *runner) collect(stats []*clientStats) []write {
	var writes []write
	fallbacks := map[string]int{}
	for _, s := range stats {
		writes = append(writes, s.writes...)
		for k, v := range s.fallbacks {
			fallbacks[k] += v
		}
	}
	for _, op := range []string{OpAppeals, OpReads} {
		if n := fallbacks[op]; n > 0 {
			r.note("%d %s turned into decisions: no decision of the bench was waiting for them", n, op)
		}
	}
	return writes
}

// measureLags fills the report's notification and integration lags.
func (r *runner) measureLags(ctx context.Context, rep *Report, w *watchers, writes []write) {
	var acks []write
	for _, wr := range writes {
		if wr.decisionID != "" {
			acks = append(acks, wr)
		}
	}
	if w.nw != nil {
		// Before the checkpoint poll stops: the indices it learns are
		// matched against the polled checkpoints below.
		lats, missing := w.nw.lag(ctx, acks, 10*time.Second)
		rep.Notification = lagReport(lats, missing, "NATS docket.decision.recorded arrival minus the decision's 201, matched by subject id")
	}
	if w.cp == nil {
		return
	}
	want := w.s0
	for _, wr := range writes {
		want += int64(wr.entries)
	}
	final := w.cp.waitFor(ctx, want, 10*time.Second)
	w.stopCP()
	w.cpDone.Wait()
	obs := w.cp.observations()
	lats, uncovered := integrationLag(w.s0, writes, obs)
	rep.Integration = lagReport(lats, uncovered, "counting: S0 + entries acknowledged so far vs polled checkpoint size, every "+r.cfg.PollInterval.String())
	if final != want {
		r.note("checkpoint size %d after the run, expected %d (S0 %d + %d entries counted): another writer, or a different number of entries per write than counted; integration lag is approximate",
			final, want, w.s0, want-w.s0)
	}
	if w.nw != nil {
		if lats, uncovered := exactLag(acks, obs); len(lats) > 0 {
			rep.IntegrationExact = lagReport(lats, uncovered, "decisions only: leaf index from the notification's Docket-Index vs polled checkpoint size")
		}
	}
}

// WaitReady waits up to limit for GET /readyz to answer 200: for a server
// started just before the bench, which creates its database as it starts.
func WaitReady(ctx context.Context, rawURL string, allowRemote bool, limit time.Duration) error {
	u, err := CheckURL(rawURL, allowRemote)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	u.Path, u.RawQuery, u.Fragment = "/readyz", "", ""
	hc := newHTTPClient(1)
	defer hc.CloseIdleConnections()
	end := time.Now().Add(limit)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(end) {
			return fmt.Errorf("loadgen: %s not ready after %s: %w", u, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setup creates the policy and finds which parts of the mix the server has.
func (r *runner) setup(ctx context.Context) error {
	if _, _, err := r.admin.PutPolicy(ctx, r.cfg.PolicyCode, client.PolicyInput{Title: "Docket bench load policy",
		Text: "Synthetic policy cited by decisions that `docket bench` records to measure the service."}); err != nil {
		return fmt.Errorf("loadgen: create policy: %w", err)
	}
	if st, raw, _, err := r.do(ctx, http.MethodGet, "/healthz", "", nil); err == nil && st == http.StatusOK {
		var h struct {
			Version string `json:"version"`
		}
		_ = json.Unmarshal(raw, &h)
		r.serverVersion = h.Version
	}
	// A request without a token meets the authentication of a route that
	// exists (401) and the mux's 404 or 405 of one not built yet.
	probes := []struct {
		op, method, path string
	}{
		{OpDecisions, http.MethodPost, "/v1/decisions"},
		{OpAppeals, http.MethodPost, "/v1/decisions/bench-probe/appeals"},
		{OpClaims, http.MethodPost, "/v1/appeals/claim"},
		{rowResolve, http.MethodPost, "/v1/appeals/bench-probe/resolve"},
		{OpReads, http.MethodGet, "/v1/decisions/bench-probe"},
	}
	r.available = map[string]bool{}
	for _, p := range probes {
		st, _, _, err := r.do(ctx, p.method, p.path, "", nil)
		if err != nil {
			return fmt.Errorf("loadgen: probe %s %s: %w", p.method, p.path, err)
		}
		r.available[p.op] = st != http.StatusNotFound && st != http.StatusMethodNotAllowed
		if !r.available[p.op] && (r.cfg.Mix[p.op] > 0 || p.op == rowResolve && r.cfg.Mix[OpClaims] > 0) {
			r.note("%s skipped: %s %s answers %d (not built yet)", p.op, p.method, p.path, st)
		}
	}
	if !r.available[OpDecisions] {
		return errors.New("loadgen: POST /v1/decisions is not available")
	}
	return nil
}

// do sends one raw request and reads the whole answer: for the probes,
// which look for routes without a token.
func (r *runner) do(ctx context.Context, method, path, token string, body []byte) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	t0 := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, nil, time.Since(t0), err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, time.Since(t0), err
}

// client is one closed-loop user: it sends the next request when the last
// has returned, until the deadline.
func (r *runner) client(ctx context.Context, i int, deadline time.Time, st *clientStats) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
	reviewer := r.reviewers[i%len(r.reviewers)]
	seq := 0
	for ctx.Err() == nil && time.Now().Before(deadline) {
		seq++
		op := r.pick.pick(rng)
		switch op {
		case OpAppeals:
			if d, ok := r.pool.takeUnappealed(); ok {
				r.appeal(ctx, st, d)
				continue
			}
			st.fallbacks[op]++
		case OpClaims:
			r.claim(ctx, st, rng, reviewer)
			continue
		case OpReads:
			if d, ok := r.pool.random(rng); ok {
				r.read(ctx, st, d, seq%5 == 0)
				continue
			}
			st.fallbacks[op]++
		}
		r.decision(ctx, st, rng, i, seq)
	}
}

// statusOf is the answer's status: ok when the call succeeded, the
// problem's status when the server refused, 0 for a transport error.
func statusOf(err error, ok int) int {
	if err == nil {
		return ok
	}
	return client.StatusOf(err)
}

// outcome records a request; transport errors count under status 0. A
// refusal of the server is an answer, recorded by its status.
func (r *runner) outcome(ctx context.Context, st *clientStats, row string, status int, d time.Duration, err error) bool {
	if status != 0 {
		err = nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return false // interrupted by the operator, not a failure of the service
		}
		st.record(row, d, 0)
		r.log.Debug("bench request failed", slog.String("op", row), slog.Any("err", err))
		return false
	}
	st.record(row, d, status)
	return true
}

func (r *runner) decision(ctx context.Context, st *clientStats, rng *rand.Rand, worker, seq int) {
	adv := rng.IntN(len(r.cfg.Tokens.Advertisers))
	in := decisionInput(r.cfg.Tokens.Advertisers[adv].ID, r.cfg.PolicyCode, fmt.Sprintf("ad-%d-%d", worker, seq), seq)
	t0 := time.Now()
	got, err := r.enforcer.CreateDecision(ctx, in)
	ack := time.Now()
	if !r.outcome(ctx, st, rowDecision, statusOf(err, http.StatusCreated), ack.Sub(t0), err) || err != nil || got.ID == "" {
		return
	}
	r.pool.add(decisionRef{id: got.ID, adv: adv})
	st.writes = append(st.writes, write{ack: ack, entries: entriesDecision, decisionID: got.ID, index: -1})
}

func (r *runner) appeal(ctx context.Context, st *clientStats, dr decisionRef) {
	in := client.AppealInput{
		Statement: "The ad complied with the policy: the product is a savings account, not a token sale. We ask for a human review of the removal.",
		Evidence:  []appeals.EvidenceItem{{Description: "Landing page as served on the day", URL: "https://example.com/evidence/" + dr.id}},
	}
	t0 := time.Now()
	_, err := r.advertisers[dr.adv].FileAppeal(ctx, dr.id, in)
	ack := time.Now()
	if r.outcome(ctx, st, rowAppeal, statusOf(err, http.StatusCreated), ack.Sub(t0), err) && err == nil {
		st.writes = append(st.writes, write{ack: ack, entries: entriesAppeal, index: -1})
	}
}

func (r *runner) claim(ctx context.Context, st *clientStats, rng *rand.Rand, reviewer *client.Client) {
	t0 := time.Now()
	got, err := reviewer.ClaimAppeal(ctx)
	ack := time.Now()
	status := statusOf(err, http.StatusOK)
	if err == nil && got == nil {
		status = http.StatusNoContent
	}
	if !r.outcome(ctx, st, rowClaim, status, ack.Sub(t0), err) || status != http.StatusOK {
		return
	}
	st.writes = append(st.writes, write{ack: ack, entries: entriesClaim, index: -1})
	if got.ID == "" || !r.available[rowResolve] {
		return
	}
	outcome, entries := appeals.AppealUpheld, entriesResolve
	if rng.Float64() < reverseShare {
		outcome, entries = appeals.AppealReversed, entriesResolveReverse
	}
	t0 = time.Now()
	_, err = reviewer.ResolveAppeal(ctx, got.ID, client.ResolveInput{Outcome: outcome,
		Rationale: "Reviewed the ad, the landing page and the advertiser's evidence against the cited policy version."})
	ack = time.Now()
	if r.outcome(ctx, st, rowResolve, statusOf(err, http.StatusOK), ack.Sub(t0), err) && err == nil {
		st.writes = append(st.writes, write{ack: ack, entries: entries, index: -1})
	}
}

func (r *runner) read(ctx context.Context, st *clientStats, dr decisionRef, list bool) {
	adv := r.cfg.Tokens.Advertisers[dr.adv]
	t0 := time.Now()
	if list {
		_, err := r.enforcer.ListDecisions(ctx, client.DecisionQuery{AdvertiserID: adv.ID, Limit: 20})
		r.outcome(ctx, st, rowList, statusOf(err, http.StatusOK), time.Since(t0), err)
		return
	}
	// The advertiser reads its own decision: the scoped path real
	// advertisers take.
	_, err := r.advertisers[dr.adv].GetDecision(ctx, dr.id)
	r.outcome(ctx, st, rowRead, statusOf(err, http.StatusOK), time.Since(t0), err)
}

// decisionInput is a bench decision; DecisionPayload is the same as JSON.
func decisionInput(advertiserID, policyCode, adID string, seq int) client.DecisionInput {
	action := appeals.ActionAdRemoval
	if seq%10 == 0 {
		action = appeals.ActionAdRestriction
	}
	yes := true
	return client.DecisionInput{
		AdvertiserID:       advertiserID,
		AdID:               adID,
		Action:             action,
		PolicyCode:         policyCode,
		Ground:             "terms",
		Explanation:        "The ad promotes a high-yield investment product with guaranteed returns, which the cited policy prohibits. Detected by the classifier and confirmed by staff.",
		Facts:              "Ad " + adID + " ran between 1 and 20 November with the headline 'Guaranteed 20% monthly returns' and linked to a deposit page. Seq " + strconv.Itoa(seq) + ".",
		Source:             "voluntary",
		AutomatedDetection: &yes,
		AutomatedDecision:  "partial",
		TerritorialScope:   []string{"DE", "FR", "NL"},
		ContentType:        []string{"image", "text"},
	}
}

// DecisionPayload is the body of a bench decision; the baseline inserts
// the same bytes, so both sides move payloads of the same size.
func DecisionPayload(advertiserID, policyCode, adID string, seq int) []byte {
	action := "ad_removal"
	if seq%10 == 0 {
		action = "ad_restriction"
	}
	b, _ := json.Marshal(map[string]any{
		"advertiser_id":       advertiserID,
		"ad_id":               adID,
		"action":              action,
		"policy_code":         policyCode,
		"ground":              "terms",
		"explanation":         "The ad promotes a high-yield investment product with guaranteed returns, which the cited policy prohibits. Detected by the classifier and confirmed by staff.",
		"facts":               "Ad " + adID + " ran between 1 and 20 November with the headline 'Guaranteed 20% monthly returns' and linked to a deposit page. Seq " + strconv.Itoa(seq) + ".",
		"source":              "voluntary",
		"automated_detection": true,
		"automated_decision":  "partial",
		"territorial_scope":   []string{"DE", "FR", "NL"},
		"content_type":        []string{"image", "text"},
	})
	return b
}
