package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/internal/natstest"
	"github.com/docket-dev/docket/internal/pgproxy"
	"github.com/docket-dev/docket/internal/pgtest"
	"github.com/docket-dev/docket/notify"
)

// The Postgres outage tests (issue 14, item 4) run the real program with
// its database behind a TCP proxy (internal/pgproxy) that the test cuts:
// refused (a dead server) or black-holed (a hung one, packets dropped).
// DOCKET_DB_TIMEOUT is 1 s; every request must be answered well before
// the client's own timeout.

// clientTimeout is the generous bound asserted on every answer: a request
// that hangs on the database fails the test here instead of hanging it.
const clientTimeout = 15 * time.Second

type outage struct {
	*server
	proxy                                 *pgproxy.Proxy
	direct                                *sqlx.DB // the database itself, not through the proxy
	js                                    jetstream.JetStream
	client                                *http.Client
	admin, enforcer, advertiser, reviewer string
}

func startOutage(t *testing.T) *outage {
	t.Helper()
	direct := pgtest.NewURL(t)
	u, err := url.Parse(direct)
	require.NoError(t, err)
	proxy := pgproxy.New(t, u.Host)
	u.Host = proxy.Addr()
	ns := natstest.Run(t, nil)
	s := startServer(t, map[string]string{"DATABASE_URL": u.String(), "DOCKET_DB_TIMEOUT": "1s",
		"DOCKET_NATS_URL": ns.ClientURL(), "DOCKET_CHECKPOINT_INTERVAL": "50ms"})
	db, err := sqlx.Open("postgres", direct)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	o := &outage{server: s, proxy: proxy, direct: db, js: js, client: &http.Client{Timeout: clientTimeout}}
	o.admin = s.token("--role", "admin", "--name", "alice")
	o.enforcer = s.token("--role", "enforcer", "--name", "pipeline")
	o.advertiser = s.token("--role", "advertiser", "--name", "acme-owner", "--advertiser", "acme")
	o.reviewer = s.token("--role", "reviewer", "--name", "rita")
	st, body := o.do("PUT", "/v1/policies/crypto-ads", o.admin, `{"title": "No crypto ads", "text": "Ads may not promote tokens."}`)
	require.Equal(t, 201, st, "%s", body)
	return o
}

type reply struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

// send makes one request; a transport error (a client timeout) is
// returned, not failed, so that load goroutines can report it.
func (o *outage) send(method, path, token, body string) (reply, error) {
	req, err := http.NewRequest(method, o.url+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := o.client.Do(req)
	if err != nil {
		return reply{took: time.Since(start)}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: raw, took: time.Since(start)}, err
}

func (o *outage) do(method, path, token, body string) (int, string) {
	o.t.Helper()
	r, err := o.send(method, path, token, body)
	require.NoError(o.t, err, "answered within %s; log:\n%s", clientTimeout, o.log.String())
	return r.status, string(r.body)
}

const decisionBody = `{"advertiser_id": "acme", "action": "ad_removal", "ad_id": "ad-17", "policy_code": "crypto-ads",
	"ground": "terms", "explanation": "The ad promoted a token sale.", "facts": "Ad 17 promoted the ACME token.",
	"source": "voluntary", "automated_detection": false, "automated_decision": "none",
	"territorial_scope": ["DE"], "content_type": ["image"]}`

// requireUnavailable checks a cut-off server's answers: 503 problem+json
// with Retry-After on the API, and /readyz naming the reason.
func (o *outage) requireUnavailable(t *testing.T, readyReason string) {
	t.Helper()
	var slowest time.Duration
	for _, c := range []struct{ method, path, token, body string }{
		{"POST", "/v1/decisions", o.enforcer, decisionBody},
		{"GET", "/v1/decisions", o.enforcer, ""},
		{"POST", "/v1/appeals/claim", o.reviewer, ""},
		{"GET", "/v1/audit/checkpoint", "", ""},
	} {
		r, err := o.send(c.method, c.path, c.token, c.body)
		require.NoError(t, err, "no answer within %s; log:\n%s", clientTimeout, o.log.String())
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s %s: %s", c.method, c.path, r.body)
		require.Equal(t, "2", r.header.Get("Retry-After"), "%s %s", c.method, c.path)
		require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
		var p map[string]any
		require.NoError(t, json.Unmarshal(r.body, &p))
		require.Equal(t, "urn:docket:problem:unavailable", p["type"], "%s %s: %s", c.method, c.path, r.body)
		// The bound: DOCKET_DB_TIMEOUT (1 s) plus lib/pq's cancel grace
		// (1 s), generously; without the request deadline a hung database
		// holds a request until the stall bound (6 s) or for ever.
		require.Less(t, r.took, 5*time.Second, "%s %s", c.method, c.path)
		slowest = max(slowest, r.took)
	}
	r, err := o.send("GET", "/readyz", "", "")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	require.Equal(t, "2", r.header.Get("Retry-After"))
	var ready struct {
		Checks map[string]struct{ Error string }
	}
	require.NoError(t, json.Unmarshal(r.body, &ready))
	require.Contains(t, ready.Checks["postgres"].Error, readyReason, "%s", r.body)
	t.Logf("cut off (%s): the slowest API answer took %s, /readyz %s", readyReason, slowest, r.took)
}

// claimAndResolve files an appeal of a new decision and has it claimed
// and resolved through the queue's lanes, resolving first what an earlier
// round left claimed (a 503 after its claim).
func (o *outage) claimAndResolve(t *testing.T) error {
	resolve := func(id string) error {
		r, err := o.send("POST", "/v1/appeals/"+id+"/resolve", o.reviewer, `{"outcome": "upheld", "rationale": "Fine."}`)
		if err != nil || r.status != 200 {
			return fmt.Errorf("resolve: %d %s %v", r.status, r.body, err)
		}
		return nil
	}
	var held []string
	if err := o.direct.Select(&held, `SELECT id FROM appeals WHERE state = 'in_review'`); err != nil {
		return err
	}
	for _, id := range held {
		if err := resolve(id); err != nil {
			return err
		}
	}
	r, err := o.send("POST", "/v1/decisions", o.enforcer, decisionBody)
	if err != nil || r.status != 201 {
		return fmt.Errorf("decision: %d %s %v", r.status, r.body, err)
	}
	var d struct{ ID string }
	_ = json.Unmarshal(r.body, &d)
	r, err = o.send("POST", "/v1/decisions/"+d.ID+"/appeals", o.advertiser, `{"statement": "The ad was lawful."}`)
	if err != nil || r.status != 201 {
		return fmt.Errorf("appeal: %d %s %v", r.status, r.body, err)
	}
	var mine struct{ ID string }
	_ = json.Unmarshal(r.body, &mine)
	for {
		r, err = o.send("POST", "/v1/appeals/claim", o.reviewer, "")
		if err != nil || (r.status != 200 && r.status != 204) {
			return fmt.Errorf("claim: %d %s %v", r.status, r.body, err)
		}
		if r.status == 204 {
			break
		}
		var a struct{ ID string }
		_ = json.Unmarshal(r.body, &a)
		if err := resolve(a.ID); err != nil {
			return err
		}
	}
	var state string
	if err := o.direct.Get(&state, `SELECT state FROM appeals WHERE id = $1`, mine.ID); err != nil {
		return err
	}
	if state != "upheld" {
		return fmt.Errorf("appeal %s is %s after the queue emptied", mine.ID, state)
	}
	return nil
}

// requireRecovered checks that after heal the service works by itself
// again: writes succeed, the integrator signs a checkpoint covering a new
// decision, the relay delivers its entry to a NATS consumer, and the
// queue's lanes claim and resolve.
func (o *outage) requireRecovered(t *testing.T) {
	t.Helper()
	var id string
	healed := time.Now()
	require.Eventually(t, func() bool {
		r, err := o.send("POST", "/v1/decisions", o.enforcer, decisionBody)
		if err != nil || r.status != 201 {
			return false
		}
		var d struct{ ID string }
		require.NoError(t, json.Unmarshal(r.body, &d))
		id = d.ID
		return true
	}, 30*time.Second, 100*time.Millisecond, "writes never succeeded again; log:\n%s", o.log.String())
	t.Logf("healed: the first write succeeded %s later", time.Since(healed).Round(time.Millisecond))
	// The integrator: a checkpoint whose tree holds the decision's entry.
	var idx int64
	require.Eventually(t, func() bool {
		err := o.direct.Get(&idx, `SELECT l.idx FROM audit_leaves l JOIN audit_staging s ON s.id = l.staging_id
			WHERE s.subject_id = $1 AND s.type = 'decision.recorded'`, id)
		if err != nil {
			return false
		}
		var size int64
		err = o.direct.Get(&size, `SELECT coalesce(max(size), 0) FROM audit_checkpoints`)
		return err == nil && size > idx
	}, 30*time.Second, 100*time.Millisecond, "the integrator never signed the new entry; log:\n%s", o.log.String())
	// The relay: the entry reaches a consumer.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found := errors.New("found")
	err := notify.Consume(ctx, o.js, notify.ConsumeOptions{FromIndex: idx}, func(ev notify.Event) error {
		if ev.Index == idx && ev.Type == "decision.recorded" && strings.Contains(string(ev.Data), id) {
			return found
		}
		return nil
	})
	require.ErrorIs(t, err, found, "the relay never delivered index %d; log:\n%s", idx, o.log.String())
	// The lanes: a claim and a resolution.
	var last error
	ok := assert.Eventually(t, func() bool {
		last = o.claimAndResolve(t)
		return last == nil
	}, 30*time.Second, 100*time.Millisecond)
	require.True(t, ok, "the queue never worked again: %v; log:\n%s", last, o.log.String())
	r, err := o.send("GET", "/readyz", "", "")
	require.NoError(t, err)
	require.Equal(t, 200, r.status, "%s", r.body)
}

// TestPostgresRefused: a dead database (connections refused, open ones
// reset) answers 503 with Retry-After at once, /readyz says "connection
// refused", and the service recovers by itself when it is back.
func TestPostgresRefused(t *testing.T) {
	t.Parallel()
	o := startOutage(t)
	require.NoError(t, o.claimAndResolve(t)) // the lanes hold connections
	require.NoError(t, o.proxy.Set(pgproxy.Refuse))
	o.requireUnavailable(t, "connection refused")
	require.NoError(t, o.proxy.Set(pgproxy.Forward))
	o.requireRecovered(t)
}

// TestPostgresHangs: a database that stops answering (every byte dropped,
// on open and new connections) answers 503 with Retry-After within the
// request's bound instead of hanging, /readyz says "timed out", and the
// service recovers by itself, though the hung connections stay dead.
func TestPostgresHangs(t *testing.T) {
	t.Parallel()
	o := startOutage(t)
	require.NoError(t, o.claimAndResolve(t))
	require.NoError(t, o.proxy.Set(pgproxy.Hang))
	o.requireUnavailable(t, "timed out")
	require.NoError(t, o.proxy.Set(pgproxy.Forward))
	o.requireRecovered(t)
}

// TestPostgresCutUnderLoad: writers keep recording decisions while the
// database is refused, healed, hung and healed again. No answer is other
// than 201 or 503, none waits past the client's timeout, every 201 is
// complete (the decision and its audit entry), and no decision exists
// without its entry.
func TestPostgresCutUnderLoad(t *testing.T) {
	t.Parallel()
	o := startOutage(t)
	var (
		mu      sync.Mutex
		created []string
		bad     []string
		n503    atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				r, err := o.send("POST", "/v1/decisions", o.enforcer, decisionBody)
				mu.Lock()
				switch {
				case err != nil:
					bad = append(bad, err.Error())
				case r.status == 201:
					var d struct{ ID string }
					_ = json.Unmarshal(r.body, &d)
					created = append(created, d.ID)
				case r.status == 503 && r.header.Get("Retry-After") != "":
					n503.Add(1)
				default:
					bad = append(bad, fmt.Sprintf("%d %s", r.status, r.body))
				}
				mu.Unlock()
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(created)
	}
	progress := func(what string) {
		from := count()
		require.Eventually(t, func() bool { return count() > from+5 }, 30*time.Second, 20*time.Millisecond,
			"no writes %s; log:\n%s", what, o.log.String())
	}
	progress("before the cut")
	for _, m := range []pgproxy.Mode{pgproxy.Refuse, pgproxy.Hang} {
		require.NoError(t, o.proxy.Set(m))
		from := n503.Load()
		require.Eventually(t, func() bool { return n503.Load() > from+3 }, 30*time.Second, 20*time.Millisecond)
		require.NoError(t, o.proxy.Set(pgproxy.Forward))
		progress("after heal")
	}
	stop.Store(true)
	wg.Wait()
	require.Empty(t, bad, "answers other than 201 and 503 with Retry-After")
	t.Logf("%d decisions recorded, %d answered 503", len(created), n503.Load())

	var missing []string
	require.NoError(t, o.direct.Select(&missing, `SELECT id FROM unnest($1::text[]) AS c(id)
		WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.id = c.id)
		   OR NOT EXISTS (SELECT 1 FROM audit_staging s WHERE s.subject_id = c.id AND s.type = 'decision.recorded')`,
		pq.Array(created)))
	require.Empty(t, missing, "201s without their decision or audit entry")
	var orphans int
	require.NoError(t, o.direct.Get(&orphans, `SELECT count(*) FROM decisions d WHERE NOT EXISTS
		(SELECT 1 FROM audit_staging s WHERE s.subject_id = d.id AND s.type = 'decision.recorded')`))
	require.Zero(t, orphans, "decisions without their audit entry")
	o.requireRecovered(t)
}

// TestPostgresHangsMidRequest: the database stops answering while a
// keyed write is already in flight on an open pooled connection (blocked
// on a table lock the test holds, so the request is inside the database
// when the network goes silent). The request still answers 503 with
// Retry-After within its bound; whether the server went on to commit it
// nobody can tell the client, so what holds is "neither or both" (the
// decision and its entry), and a retry with the same Idempotency-Key
// once the network heals leaves exactly one decision.
func TestPostgresHangsMidRequest(t *testing.T) {
	t.Parallel()
	o := startOutage(t)
	const ad = "ad-in-flight"
	body := strings.Replace(decisionBody, `"ad-17"`, `"`+ad+`"`, 1)
	keyed := func() (reply, error) {
		req, err := http.NewRequest("POST", o.url+"/v1/decisions", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+o.enforcer)
		req.Header.Set("Idempotency-Key", "in-flight-1")
		start := time.Now()
		resp, err := o.client.Do(req)
		if err != nil {
			return reply{}, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return reply{status: resp.StatusCode, header: resp.Header, body: raw, took: time.Since(start)}, err
	}

	lock, err := o.direct.Beginx()
	require.NoError(t, err)
	_, err = lock.Exec(`LOCK TABLE decisions IN SHARE MODE`)
	require.NoError(t, err)
	answered := make(chan reply, 1)
	go func() {
		r, err := keyed()
		if err != nil {
			r = reply{status: -1, body: []byte(err.Error())}
		}
		answered <- r
	}()
	// The write is in the database, waiting for the lock.
	require.Eventually(t, func() bool {
		var waiting int
		err := o.direct.Get(&waiting, `SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relname = 'decisions' AND NOT l.granted`)
		return err == nil && waiting > 0
	}, 10*time.Second, 5*time.Millisecond, "the write never reached the lock")
	require.NoError(t, o.proxy.Set(pgproxy.Hang))
	// Releasing the lock lets the server run the write, whose reply the
	// silent network never carries.
	require.NoError(t, lock.Rollback())

	r := <-answered
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	require.Equal(t, "2", r.header.Get("Retry-After"))
	// DOCKET_DB_TIMEOUT (1 s) plus the cancel grace (1 s), generously.
	require.Less(t, r.took, 5*time.Second)
	t.Logf("in-flight write answered 503 after %s", r.took)

	require.NoError(t, o.proxy.Set(pgproxy.Forward))
	o.requireRecovered(t)
	// The hung session ends once its connection is cut at heal.
	require.Eventually(t, func() bool {
		var open int
		err := o.direct.Get(&open, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state LIKE 'idle in transaction%'`)
		return err == nil && open == 0
	}, 30*time.Second, 20*time.Millisecond, "the hung transaction stayed open")
	count := func() (decisions, entries int) {
		require.NoError(t, o.direct.Get(&decisions, `SELECT count(*) FROM decisions WHERE ad_id = $1`, ad))
		require.NoError(t, o.direct.Get(&entries, `SELECT count(*) FROM audit_staging s
			JOIN decisions d ON d.id = s.subject_id WHERE d.ad_id = $1 AND s.type = 'decision.recorded'`, ad))
		return decisions, entries
	}
	decisions, entries := count()
	require.Equal(t, decisions, entries, "a decision without its entry")
	t.Logf("after the 503 the server had committed %d decision(s)", decisions)

	r, err = keyed()
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	decisions, entries = count()
	require.Equal(t, 1, decisions, "the retry with the same key made one decision in all")
	require.Equal(t, 1, entries)
}
