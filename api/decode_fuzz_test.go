package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// The request decoders' fuzz targets: each input type's body through the
// strict decoder the API uses (decodeJSON, then withShapeProblems and
// Validate as decodeWrite and the store apply them). The properties: no
// panic; a refusal is a 4xx problem with a bounded list of fields; what
// the strict decoder accepts, encoding/json reads the same way; and an
// accepted value, encoded again, decodes to itself.

// commonBodies are hostile shapes every decoder gets as seeds.
var commonBodies = []string{
	``, ` `, `null`, `[]`, `{}`, `"x"`, `1`, `{`, `}`, `{}{}`, `{} x`, `{"a":1}`, `{"a":`,
	"{\"\xff\":1}", `{"\u0000":1}`, strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40),
	`{"x":` + strings.Repeat(`{"x":`, 40) + `1` + strings.Repeat(`}`, 41),
	`{"x":[` + strings.Repeat(`1,`, 1200) + `1]}`,
}

// fuzzDecode is the body of every decoder target; valid holds the type's
// well-formed bodies.
func fuzzDecode[T any](f *testing.F, valid ...string) {
	for _, s := range append(valid, commonBodies...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in T
		if err := decodeJSON(body, &in); err != nil {
			p := problemOf(withShapeProblems(err, in))
			require.GreaterOrEqual(t, p.Status, 400, "%v", err)
			require.Less(t, p.Status, 500, "%v", err)
			require.LessOrEqual(t, len(p.Errors), docket.MaxFieldErrors+1)
			return
		}
		// The strict pass only refuses: what it lets through decodes as
		// encoding/json alone decodes it.
		var std T
		require.NoError(t, json.Unmarshal(body, &std))
		require.Equal(t, std, in)
		if v, ok := any(in).(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				require.Equal(t, docket.Invalid, docket.ErrorCode(err), "%v", err)
				return
			}
		}
		// Round trip: the value, encoded, decodes strictly to itself.
		again, err := json.Marshal(in)
		require.NoError(t, err)
		var back T
		require.NoError(t, decodeJSON(again, &back), "%s", again)
		require.Equal(t, in, back)
	})
}

func FuzzDecodeDecisionInput(f *testing.F) {
	fuzzDecode[appeals.DecisionInput](f,
		`{"advertiser_id":"acme","ad_id":"ad-1","action":"ad_removal","policy_code":"crypto","ground":"terms","explanation":"The ad promotes a crypto token.","facts":"Ad ad-1 showed a token sale.","source":"voluntary","automated_detection":true,"automated_decision":"partial"}`,
		`{"advertiser_id":"acme","action":"advertiser_ban","policy_code":"p","ground":"law","legal_reference":"Art. 1","explanation":"e","facts":"f","source":"authority","automated_detection":false,"automated_decision":"none","territorial_scope":["DE","US"],"content_type":["text","other"],"ends_at":"2999-01-01T00:00:00+14:00"}`,
		`{"advertiser_id":"acme","Advertiser_id":"x","advertiser_id":"y","territorial_scope":["DE","DE"],"content_type":["text","text","x"],"automated_detection":"yes","ends_at":"tomorrow"}`,
		`{"advertiser_id":"acme","ad_id":"a","action":"ad_removal","policy_code":"p","ground":"terms","explanation":"e","facts":"f","source":"notice","automated_detection":true,"automated_decision":"full","ends_at":"9999-12-31T23:59:59-23:59"}`,
	)
}

func FuzzDecodeAppealInput(f *testing.F) {
	fuzzDecode[appeals.AppealInput](f,
		`{"statement":"The ad was compliant.","evidence":[{"description":"Screenshot","url":"https://example.com/a.png"}]}`,
		`{"statement":"s","evidence":[{}, {"url":"ftp://x"}, {"description":"\ud800"}]}`,
		`{"statement":"s","evidence":[`+strings.Repeat(`{"url":"http://x"},`, 25)+`{}]}`,
		`{"statement":"s","evidence":null}`,
	)
}

func FuzzDecodeResolveInput(f *testing.F) {
	fuzzDecode[appeals.ResolveInput](f,
		`{"outcome":"upheld","rationale":"Checked."}`,
		`{"outcome":"reversed","rationale":"   "}`,
		`{"Outcome":"upheld","rationale":"x","rationale":"y"}`,
	)
}

func FuzzDecodeEscalateInput(f *testing.F) {
	fuzzDecode[appeals.EscalateInput](f,
		`{"reason":"Needs a lawyer."}`,
		`{"reason":1}`,
		`{"reason":"\u0000"}`,
	)
}

func FuzzDecodeReversalInput(f *testing.F) {
	fuzzDecode[appeals.ReversalInput](f,
		`{"versions":[1,2],"rationale":"The policy was wrong."}`,
		`{"versions":[0,-1,1,1,1e3,1.5],"rationale":"x"}`,
		`{"versions":[`+strings.Repeat(`1,`, 1001)+`1],"rationale":"x"}`,
	)
}

func FuzzDecodeNoticeInput(f *testing.F) {
	fuzzDecode[appeals.NoticeInput](f,
		`{"channel":"email","delivered_at":"2026-01-02T03:04:05Z","reference":"msg-1"}`,
		`{"channel":"fax","delivered_at":"yesterday","reference":"\u0001"}`,
	)
}

func FuzzDecodePolicyInput(f *testing.F) {
	fuzzDecode[appeals.PolicyInput](f,
		`{"title":"Crypto","text":"No crypto ads.","category":"STATEMENT_CATEGORY_SCAMS_AND_FRAUD"}`,
		`{"title":"","text":"","category":"X"}`,
		`{"title":"t","text":"t","TITLE":"u"}`,
	)
}

// FuzzDecodeEmpty is the body of a write that takes none (claim, withdraw).
func FuzzDecodeEmpty(f *testing.F) {
	fuzzDecode[struct{}](f, `{}`, `{"x":1}`)
}

// queryPatterns are the routes whose handlers read the query, with the
// path wildcards each has.
var queryPatterns = []string{
	"GET /v1/policies", "GET /v1/decisions", "GET /v1/appeals", "GET /v1/audit/entries",
	"GET /v1/audit/proofs/inclusion", "GET /v1/audit/proofs/consistency", "GET /v1/exports/audit",
	"GET /v1/exports/dsa", "GET /v1/reports/appeals", "GET /v1/policies/{code}/versions/{n}",
	"GET /v1/decisions/{id}", "GET /v1/audit/entries/{index}",
}

// FuzzQueryParams runs a raw query string and a path value through the
// vetting every route gets (checkInput), then through each query parser
// the handlers use: the page, list filters, the proof and entry
// parameters, export bounds and report periods. The property: no panic,
// and every refusal is a 4xx problem.
func FuzzQueryParams(f *testing.F) {
	for _, q := range []string{"", "limit=10&cursor=MDE5MmYwYzQ", "limit=0", "limit=501", "limit=-1", "limit=1e2",
		"advertiser_id=acme&action=ad_removal&status=in_effect&policy_code=crypto",
		"state=pending&decision_id=0192f0c4-5e1a-7000-8000-000000000001&overdue=true", "overdue=yes",
		"start=0&limit=500", "start=-1", "start=9223372036854775808", "index=0&size=1", "index=5&size=2", "from=0&to=0",
		"from=2026-01-01&to=2025-01-01", "from=2026-01-01T00:00:00Z&to=9999-12-31T23:59:59-23:59",
		"type=decision.recorded,appeal.filed&type=x&format=csv", "format=xml", "policy_code=a;drop", "a=%zz", "%zz=1",
		"limit=1&limit=2", "cursor=%00", "cursor=%ff", "&&&=&", "=1"} {
		f.Add(uint8(0), q, "x")
	}
	f.Add(uint8(9), "", "crypto")
	f.Add(uint8(10), "", "%00")
	f.Add(uint8(11), "", "\xff")
	allowed := map[string]map[string]bool{}
	for pattern, o := range ops() {
		allowed[pattern] = map[string]bool{}
		for _, name := range o.Query {
			allowed[pattern][name] = true
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, rawQuery, pathValue string) {
		pattern := queryPatterns[int(which)%len(queryPatterns)]
		method, path, _ := strings.Cut(pattern, " ")
		r := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: rawQuery}, Header: http.Header{}}
		for _, seg := range strings.Split(path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok {
				r.SetPathValue(strings.TrimSuffix(name, "}"), pathValue)
			}
		}
		client := func(err error) {
			t.Helper()
			if err == nil {
				return
			}
			p := problemOf(err)
			require.GreaterOrEqual(t, p.Status, 400, "%v", err)
			require.Less(t, p.Status, 500, "%v", err)
		}
		err := checkInput(r, pattern, allowed[pattern])
		client(err)
		if err != nil {
			return
		}
		pr, err := pageRequest(r)
		client(err)
		q := r.URL.Query()
		client(appeals.DecisionFilter{AdvertiserID: q.Get("advertiser_id"), Action: appeals.Action(q.Get("action")), Status: appeals.DecisionStatus(q.Get("status")),
			PolicyCode: q.Get("policy_code"), PageRequest: pr}.Validate())
		client(appeals.AppealFilter{State: appeals.AppealState(q.Get("state")), AdvertiserID: q.Get("advertiser_id"),
			DecisionID: q.Get("decision_id"), PageRequest: pr}.Validate())
		for _, name := range []string{"start", "limit"} {
			_, err := queryInt(r, name, 0)
			client(err)
		}
		for _, name := range []string{"index", "from"} {
			_, err := requiredUint(r, name)
			client(err)
		}
		_, _, err = auditExportFilter(r)
		client(err)
		_, _, err = periodParams(r)
		client(err)
	})
}

// TestBodyIsExactlyOneObject: found by FuzzDecodeAppealInput. json.Decoder's
// More is false before a stray '}' or ']', so `{...}}` was accepted with its
// trailing byte, and a top-level null decoded into the zero value.
func TestBodyIsExactlyOneObject(t *testing.T) {
	t.Parallel()
	for _, body := range []string{`null}`, `{"reason":"x"}}`, `{"reason":"x"}]`, `null`, ` null `, `{"reason":"x"} {}`, "{\"reason\":\"x\"}\v", "{\"reason\":\"x\"}\u0085"} {
		var in appeals.EscalateInput
		err := decodeJSON([]byte(body), &in)
		require.Error(t, err, body)
		require.Equal(t, http.StatusBadRequest, problemOf(err).Status, body)
	}
	var in appeals.EscalateInput
	require.NoError(t, decodeJSON([]byte(" {\"reason\":\"x\"}\n"), &in))
	require.Equal(t, "x", in.Reason)
}

// TestParseTimeIsUTCAndInRange: found by FuzzServer. An offset beyond
// Postgres's ±15:59 failed exports with a 500, and a period past 9999 in
// UTC failed the report's JSON.
func TestParseTimeIsUTCAndInRange(t *testing.T) {
	t.Parallel()
	got, err := parseTime("2026-01-01T00:00:00-20:00")
	require.NoError(t, err)
	require.Equal(t, time.UTC, got.Location())
	require.Equal(t, "2026-01-01T20:00:00Z", got.Format(time.RFC3339))
	for _, v := range []string{"9999-12-31T23:00:00-02:00", "0000-01-01T00:00:00+01:00"} {
		_, err := parseTime(v)
		require.Error(t, err, v)
	}
	got, err = parseTime("2026-02-03")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC), got)
}
