package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/internal/pgtest"
)

// The HTTP handler as a whole, on the real store on Postgres: the fuzzer
// picks the method, the path (with placeholders for this run's records),
// the Authorization header, the Content-Type, an Idempotency-Key and the
// body. The property: no panic, never a 5xx, and every 4xx a problem+json
// document whose status is the response's.

var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}

var fuzzContentTypes = []string{"application/json", "", "application/json; charset=utf-8", "text/plain",
	"application/problem+json", "application/json;;", "multipart/form-data; boundary=x"}

// fuzzWho are the Authorization choices: a role's token, or a bad header.
var fuzzWho = []string{"", "admin", "enforcer", "reviewer", "senior", "advertiser", "other_advertiser", "auditor",
	"Bearer not-a-token", "Basic YWRhOnNlY3JldA==", "Bearer ", "bearer \x7f"}

// fuzzRoutes are every route in routes.go with a working request; {decision},
// {appeal}, {code} and {index} stand for this run's seeded records.
var fuzzRoutes = []struct {
	method uint8 // index in fuzzMethods
	path   string
	who    uint8 // index in fuzzWho
	body   string
}{
	{0, "/healthz", 0, ""},
	{0, "/readyz", 0, ""},
	{0, "/openapi.json", 0, ""},
	{0, "/metrics", 0, ""},
	{2, "/v1/policies/{code}", 1, `{"title":"Crypto","text":"No crypto ads.","category":"STATEMENT_CATEGORY_SCAMS_AND_FRAUD"}`},
	{2, "/v1/policies/new-one", 1, `{"title":"New","text":"A new policy."}`},
	{0, "/v1/policies?limit=1", 3, ""},
	{0, "/v1/policies?cursor=Y3J5cHRv", 5, ""},
	{0, "/v1/policies/{code}", 5, ""},
	{0, "/v1/policies/{code}/versions/1", 7, ""},
	{0, "/v1/policies/{code}/versions/0", 1, ""},
	{1, "/v1/decisions", 2, `{"advertiser_id":"acme","ad_id":"ad-2","action":"ad_removal","policy_code":"{code}","ground":"terms","explanation":"e","facts":"f","source":"voluntary","automated_detection":true,"automated_decision":"partial"}`},
	{1, "/v1/decisions", 2, `{"advertiser_id":"acme","action":"advertiser_ban","policy_code":"{code}","ground":"law","legal_reference":"Art. 1","explanation":"e","facts":"f","source":"authority","automated_detection":false,"automated_decision":"none","territorial_scope":["DE"],"content_type":["text"],"ends_at":"9999-12-31T23:59:59-23:59"}`},
	{0, "/v1/decisions?advertiser_id=acme&action=ad_removal&status=in_effect&policy_code={code}&limit=2", 5, ""},
	{0, "/v1/decisions/{decision}", 5, ""},
	{0, "/v1/decisions/{decision}", 6, ""},
	{1, "/v1/decisions/{decision}/notices", 2, `{"channel":"email","delivered_at":"2026-01-02T03:04:05Z","reference":"msg-1"}`},
	{1, "/v1/decisions/{decision}/appeals", 5, `{"statement":"The ad was fine.","evidence":[{"description":"Screenshot","url":"https://example.com/a.png"}]}`},
	{1, "/v1/appeals/claim", 3, ""},
	{1, "/v1/appeals/{appeal}/resolve", 3, `{"outcome":"upheld","rationale":"Checked."}`},
	{1, "/v1/appeals/{appeal}/escalate", 3, `{"reason":"Needs a senior."}`},
	{1, "/v1/appeals/{appeal}/withdraw", 5, ""},
	{0, "/v1/appeals?state=in_review&overdue=false&decision_id={decision}", 3, ""},
	{0, "/v1/appeals/{appeal}", 5, ""},
	{1, "/v1/policies/{code}/reversals", 1, `{"versions":[1],"rationale":"Wrong."}`},
	{0, "/v1/audit/checkpoint", 0, ""},
	{0, "/v1/audit/key", 0, ""},
	{0, "/v1/audit/entries?start=0&limit=2", 7, ""},
	{0, "/v1/audit/entries/{index}", 1, ""},
	{0, "/v1/audit/proofs/inclusion?index={index}", 0, ""},
	{0, "/v1/audit/proofs/inclusion?index=0&size=99999999", 0, ""},
	{0, "/v1/audit/proofs/consistency?from=1", 0, ""},
	{0, "/v1/audit/proofs/consistency?from=1&to=9223372036854775807", 0, ""},
	{0, "/v1/exports/audit?from=0&format=csv&type=decision.recorded", 7, ""},
	{0, "/v1/exports/audit?from=2026-01-01&to=9999-12-31T23:59:59-23:59&advertiser_id=acme", 1, ""},
	{0, "/v1/exports/dsa?from=2000-01-01&to=9999-12-31T23:59:59-23:59", 7, ""},
	{0, "/v1/reports/appeals?from=2026-01-01&format=csv", 7, ""},
	{0, "/v1/reports/appeals?from=0000-01-01T00:00:00%2B01:00&to=9999-12-31T23:59:59-23:59", 1, ""},
	{3, "/v1/decisions/{decision}", 1, ""},
	{0, "/v1/nothing", 1, ""},
	{1, "/v1/decisions/%ff", 2, "{}"},
}

// fuzzServer is one server on its own database for a whole fuzz run,
// seeded with a policy, decisions, an appeal in review and a signed
// checkpoint.
type fuzzServer struct {
	srv     *api.Server
	log     *syncBuffer // the server's log (limit_test.go), kept to explain a failure
	tokens  map[string]string
	replace *strings.Replacer
}

func newFuzzServer(f *testing.F) *fuzzServer {
	db := pgtest.New(f)
	store := appeals.NewStore(db, appeals.Options{})
	alog := testAuditLog(f, db)
	logs := &syncBuffer{}
	fs := &fuzzServer{log: logs, tokens: map[string]string{},
		srv: api.New(api.Config{Store: store, Audit: alog, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError})),
			Limits: api.Limits{AuthFailureRate: -1}})}
	for label, in := range testTokens() {
		_, secret, err := store.CreateToken(context.Background(), docket.Actor{Role: docket.RoleSystem, Name: "fuzz"}, in)
		require.NoError(f, err)
		fs.tokens[label] = secret
	}
	seed := func(method, path, who, body string, want int) map[string]any {
		rec := fs.serve(method, path, who, "application/json", "", []byte(body))
		require.Equal(f, want, rec.Code, "%s %s: %s", method, path, rec.Body)
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return m
	}
	seed("PUT", "/v1/policies/crypto", "admin", `{"title":"Crypto","text":"No crypto ads."}`, 201)
	decision := `{"advertiser_id":"acme","ad_id":"ad-1","action":"ad_removal","policy_code":"crypto","ground":"terms","explanation":"e","facts":"f","source":"voluntary","automated_detection":true,"automated_decision":"partial"}`
	d1 := seed("POST", "/v1/decisions", "enforcer", decision, 201)["id"].(string)
	d2 := seed("POST", "/v1/decisions", "enforcer", decision, 201)["id"].(string)
	seed("POST", "/v1/decisions/"+d1+"/appeals", "advertiser", `{"statement":"The ad was fine."}`, 201)
	a2 := seed("POST", "/v1/decisions/"+d2+"/appeals", "advertiser", `{"statement":"This one too."}`, 201)["id"].(string)
	seed("POST", "/v1/appeals/claim", "reviewer", "", 200)
	for {
		n, err := alog.IntegrateOnce(context.Background())
		require.NoError(f, err)
		if n == 0 {
			break
		}
	}
	fs.replace = strings.NewReplacer("{decision}", d1, "{appeal}", a2, "{code}", "crypto", "{index}", "1")
	return fs
}

// serve sends one request through ServeHTTP; who is a label of fuzzWho.
func (fs *fuzzServer) serve(method, path, who, ctype, idem string, body []byte) *httptest.ResponseRecorder {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + path + " HTTP/1.1\r\nHost: docket.test\r\n\r\n")))
	if err != nil {
		return nil // not a request line net/http would pass to a handler
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.RemoteAddr = "192.0.2.1:1234"
	switch tok, ok := fs.tokens[who]; {
	case ok:
		req.Header.Set("Authorization", "Bearer "+tok)
	case who != "":
		req.Header.Set("Authorization", who)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	rec := httptest.NewRecorder()
	fs.srv.ServeHTTP(rec, req)
	return rec
}

func FuzzServer(f *testing.F) {
	fs := newFuzzServer(f)
	for _, r := range fuzzRoutes {
		f.Add(r.method, r.path, r.who, uint8(0), "", []byte(r.body))
	}
	f.Add(uint8(1), "/v1/decisions", uint8(2), uint8(3), "", []byte(`{}`))
	f.Add(uint8(1), "/v1/decisions", uint8(2), uint8(0), "key-1", []byte(`{"advertiser_id":"acme"}`))
	f.Add(uint8(1), "/v1/appeals/claim", uint8(4), uint8(0), "k\x00", []byte(`null}`))
	f.Add(uint8(4), "/v1/policies/{code}", uint8(1), uint8(0), "", []byte(`{}`))
	f.Add(uint8(0), "/v1/decisions/{decision}?x=1", uint8(8), uint8(0), "", []byte(nil))
	f.Fuzz(func(t *testing.T, method uint8, path string, who uint8, ctype uint8, idem string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		logStart := len(fs.log.String())
		logged := func() string { return fs.log.String()[logStart:] }
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		target := fs.replace.Replace(path)
		var rec *httptest.ResponseRecorder
		func() {
			defer func() {
				if p := recover(); p != nil {
					if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
						t.Fatalf("%s %s: the handler aborted the response (a failure mid-stream); log:\n%s", m, target, logged())
					}
					panic(p)
				}
			}()
			rec = fs.serve(m, target, fuzzWho[int(who)%len(fuzzWho)], fuzzContentTypes[int(ctype)%len(fuzzContentTypes)],
				fs.replace.Replace(idem), []byte(fs.replace.Replace(string(body))))
		}()
		if rec == nil {
			return
		}
		require.Less(t, rec.Code, 500, "%s %s: %s\nlog:\n%s", m, target, rec.Body, logged())
		if rec.Code < 400 {
			return
		}
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"), "%s %s: %d %s", m, target, rec.Code, rec.Body)
		var p api.Problem
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), "%s %s: %s", m, target, rec.Body)
		require.Equal(t, rec.Code, p.Status, "%s %s: %s", m, target, rec.Body)
		require.NotEmpty(t, p.Type)
	})
}
