package crashtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Kinds of write.
const (
	KindPolicy   = "policy"
	KindDecision = "decision"
	KindAppeal   = "appeal"
	KindClaim    = "claim"
	KindResolve  = "resolve"
	KindBulk     = "bulk" // a bulk reversal of a policy's version 1
)

// Op is one logical write and what its client was told. A request with an
// Idempotency-Key is sent again, with the same key and body, after every
// reply that is not definite (no reply, or a 5xx) until one is; one
// without a key is sent once, and no reply leaves its outcome unknown.
type Op struct {
	Kind     string
	Key      string // Idempotency-Key; empty: none
	Attempts int
	// Status is the last reply's status: 0 when there was none.
	Status int
	// ID is what the reply named: the decision, appeal (claim, resolve
	// and appeal) or reversal job; Ref is the decision an appeal is of,
	// or the policy code of a bulk reversal or a policy.
	ID, Ref string
	AdID    string // decisions: unique per logical request
	Outcome string // resolutions: upheld or reversed
	Ack     time.Time
	// LostID is what the reply the client dropped named (see
	// Load.LoseShare): the retry must name the same.
	LostID     string
	LostStatus int
	// Faults are the replies of any attempt that were a 5xx other than
	// 503: the service's own failures, never an outage's (Check).
	Faults []int
}

// Acked says whether the client got a 2xx.
func (o Op) Acked() bool { return o.Status >= 200 && o.Status < 300 }

// unanswered says whether o got no definite reply (none, or a 5xx: a
// write already in the database when its network went silent answers
// 503 whether or not its commit happened, docs/api.md) and had no key to
// retry with: the client cannot know whether it was made.
func (o Op) unanswered() bool { return !o.Acked() && o.Key == "" && (o.Status == 0 || o.Status >= 500) }

// Ledger records every Op; safe for concurrent use.
type Ledger struct {
	mu  sync.Mutex
	ops []Op
}

func (l *Ledger) add(o Op) {
	l.mu.Lock()
	l.ops = append(l.ops, o)
	l.mu.Unlock()
}

// Ops returns a copy of what was recorded.
func (l *Ledger) Ops() []Op {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Op(nil), l.ops...)
}

// LongestGap is the longest time between consecutive acknowledgements in
// [from, to], counting from from and to: how long no write succeeded.
func LongestGap(ops []Op, from, to time.Time) time.Duration {
	ts := []time.Time{from, to}
	for _, o := range ops {
		if o.Acked() && o.Ack.After(from) && o.Ack.Before(to) {
			ts = append(ts, o.Ack)
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var gap time.Duration
	for i := 1; i < len(ts); i++ {
		gap = max(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

// Tokens are the bearer tokens the load uses.
type Tokens struct {
	Admin, Enforcer string
	// Advertisers[i] is the token of advertiser AdvertiserIDs[i].
	Advertisers, AdvertiserIDs []string
	Reviewers                  []string
}

// Load drives writes of every kind at whichever process is up.
type Load struct {
	Procs  []*Proc
	Tokens Tokens
	Ledger *Ledger
	Policy string // the policy the ordinary decisions cite; must exist
	// KeyedShare is the share of requests sent with an Idempotency-Key.
	KeyedShare float64
	// LoseShare is the share of keyed requests whose first reply the
	// client drops, as if the connection broke after the server had
	// answered: a crash that hits between commit and reply is rare, a
	// lost reply is not, and both oblige the retry to change nothing.
	LoseShare float64
	// RetryFor bounds how long a keyed request is retried.
	RetryFor time.Duration
	HC       *http.Client
}

// Run runs workers (one per advertiser) and a bulk-reversal loop until ctx ends.
func (l *Load) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range l.Tokens.Advertisers {
		wg.Add(1)
		go func() { defer wg.Done(); l.worker(ctx, i) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); l.bulk(ctx) }()
	wg.Wait()
}

type reply struct {
	status int
	body   []byte
}

// send is one attempt at one live process; no reply is status 0.
func (l *Load) send(ctx context.Context, rng *mrand.Rand, method, path, token, key string, body []byte) reply {
	p := l.Procs[rng.IntN(len(l.Procs))]
	if !p.Running() {
		p = l.Procs[(rng.IntN(len(l.Procs)-1)+1+indexOf(l.Procs, p))%len(l.Procs)]
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.URL+path, rd)
	if err != nil {
		return reply{}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := l.HC.Do(req)
	if err != nil {
		return reply{}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{} // cut off mid-reply: not definite
	}
	return reply{status: resp.StatusCode, body: raw}
}

func indexOf(ps []*Proc, p *Proc) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return 0
}

// do performs op's request: once without a key, until a definite reply
// with one. The caller records op. A keyed request interrupted by the end
// of the run keeps status 0, which Check reports.
func (l *Load) do(ctx context.Context, rng *mrand.Rand, op *Op, method, path, token string, body []byte) reply {
	deadline := time.Now().Add(l.RetryFor)
	for {
		op.Attempts++
		r := l.send(ctx, rng, method, path, token, op.Key, body)
		op.Status = r.status
		if r.status >= 500 && r.status != http.StatusServiceUnavailable {
			op.Faults = append(op.Faults, r.status)
		}
		if r.status != 0 {
			op.Ack = time.Now()
		}
		definite := r.status != 0 && r.status < 500
		if definite && op.Attempts == 1 && op.Key != "" && rng.Float64() < l.LoseShare {
			op.LostID, op.LostStatus = idOf(r.body), r.status
			continue
		}
		if definite || op.Key == "" || time.Now().After(deadline) {
			return r
		}
		select {
		case <-ctx.Done():
			// The run is over, not the client's patience: one last try
			// without the run's context, so that a key is never left
			// unanswered by the harness itself.
			if time.Now().After(deadline) {
				return r
			}
			ctx = context.WithoutCancel(ctx)
		case <-time.After(time.Duration(20+rng.IntN(80)) * time.Millisecond):
		}
	}
}

func newKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "crash-" + hex.EncodeToString(b[:])
}

func (l *Load) key(rng *mrand.Rand) string {
	if rng.Float64() < l.KeyedShare {
		return newKey()
	}
	return ""
}

func idOf(body []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &v)
	return v.ID
}

func (l *Load) worker(ctx context.Context, w int) {
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
	var unappealed []string
	seq := 0
	for ctx.Err() == nil {
		seq++
		switch r := rng.IntN(100); {
		case r < 25 && len(unappealed) > 0:
			d := unappealed[0]
			unappealed = unappealed[1:]
			l.appeal(ctx, rng, w, d)
		case r < 50:
			l.claimAndResolve(ctx, rng, w)
		default:
			if id := l.decision(ctx, rng, l.Policy, fmt.Sprintf("ad-%d-%d-%s", w, seq, newKey()), l.Tokens.AdvertiserIDs[w], l.key(rng)); id != "" {
				unappealed = append(unappealed, id)
			}
		}
	}
}

func decisionBody(advertiser, policy, adID string) []byte {
	b, _ := json.Marshal(map[string]any{
		"advertiser_id": advertiser, "ad_id": adID, "action": "ad_removal", "policy_code": policy,
		"ground": "terms", "explanation": "The crash harness records this decision.",
		"facts":  "Ad " + adID + " was recorded under load while processes were killed.",
		"source": "voluntary", "automated_detection": true, "automated_decision": "partial",
	})
	return b
}

// decision records one decision and returns its id on a 201.
func (l *Load) decision(ctx context.Context, rng *mrand.Rand, policy, adID, advertiser, key string) string {
	op := Op{Kind: KindDecision, Key: key, AdID: adID, Ref: policy}
	r := l.do(ctx, rng, &op, http.MethodPost, "/v1/decisions", l.Tokens.Enforcer, decisionBody(advertiser, policy, adID))
	if r.status == http.StatusCreated {
		op.ID = idOf(r.body)
	}
	l.Ledger.add(op)
	return op.ID
}

func (l *Load) appeal(ctx context.Context, rng *mrand.Rand, w int, decision string) {
	op := Op{Kind: KindAppeal, Key: l.key(rng), Ref: decision}
	body, _ := json.Marshal(map[string]any{"statement": "The crash harness appeals decision " + decision + "."})
	r := l.do(ctx, rng, &op, http.MethodPost, "/v1/decisions/"+decision+"/appeals", l.Tokens.Advertisers[w], body)
	if r.status == http.StatusCreated {
		op.ID = idOf(r.body)
	}
	l.Ledger.add(op)
}

func (l *Load) claimAndResolve(ctx context.Context, rng *mrand.Rand, w int) {
	reviewer := l.Tokens.Reviewers[w%len(l.Tokens.Reviewers)]
	op := Op{Kind: KindClaim, Key: l.key(rng)}
	r := l.do(ctx, rng, &op, http.MethodPost, "/v1/appeals/claim", reviewer, nil)
	if r.status == http.StatusOK {
		op.ID = idOf(r.body)
	}
	l.Ledger.add(op)
	if op.ID == "" {
		if r.status == http.StatusNoContent {
			// Nothing waiting: do not spin on an empty queue.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		return
	}
	res := Op{Kind: KindResolve, Key: l.key(rng), ID: op.ID, Outcome: "upheld"}
	if rng.IntN(2) == 0 {
		res.Outcome = "reversed"
	}
	body, _ := json.Marshal(map[string]string{"outcome": res.Outcome, "rationale": "Reviewed under the crash harness."})
	l.do(ctx, rng, &res, http.MethodPost, "/v1/appeals/"+op.ID+"/resolve", reviewer, body)
	l.Ledger.add(res)
}

// bulk repeatedly creates a policy, records decisions under it and
// reverses them in bulk, all with keys.
func (l *Load) bulk(ctx context.Context) {
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 99))
	for k := 1; ctx.Err() == nil; k++ {
		code := fmt.Sprintf("bulk-%d-%s", k, newKey()[6:14])
		pol := Op{Kind: KindPolicy, Key: newKey(), Ref: code}
		body, _ := json.Marshal(map[string]string{"title": "Bulk " + code, "text": "Withdrawn: every decision under it is reversed."})
		l.do(ctx, rng, &pol, http.MethodPut, "/v1/policies/"+code, l.Tokens.Admin, body)
		l.Ledger.add(pol)
		if !pol.Acked() {
			continue
		}
		for i := 0; i < 3; i++ {
			l.decision(ctx, rng, code, fmt.Sprintf("bulk-ad-%d-%d", k, i), l.Tokens.AdvertiserIDs[i%len(l.Tokens.AdvertiserIDs)], newKey())
		}
		op := Op{Kind: KindBulk, Key: newKey(), Ref: code}
		body, _ = json.Marshal(map[string]any{"versions": []int{1}, "rationale": "The crash harness withdraws " + code + "."})
		r := l.do(ctx, rng, &op, http.MethodPost, "/v1/policies/"+code+"/reversals", l.Tokens.Admin, body)
		if r.status == http.StatusOK {
			op.ID = idOf(r.body)
		}
		l.Ledger.add(op)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(100+rng.IntN(300)) * time.Millisecond):
		}
	}
}
