package api_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/api"
)

// openAPIOp is what the hostile-input table reads of a route's operation.
type openAPIOp struct {
	Parameters []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	RequestBody json.RawMessage `json:"requestBody"`
	Roles       []string        `json:"x-roles"`
}

// routeOps reads every route of routes.go with its operation in /openapi.json.
func routeOps(t *testing.T, e *env) map[string]openAPIOp {
	t.Helper()
	r := e.do("GET", "/openapi.json", "", nil)
	require.Equal(t, 200, r.Status)
	var doc struct {
		Paths map[string]map[string]openAPIOp `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &doc))
	out := map[string]openAPIOp{}
	for _, p := range routePatterns(t) {
		if p == "GET /metrics" { // not Docket's handler, and not served without metrics
			continue
		}
		method, path, _ := strings.Cut(p, " ")
		o, ok := doc.Paths[path][strings.ToLower(method)]
		require.True(t, ok, "route %q is missing from openapi.json", p)
		out[p] = o
	}
	return out
}

// roleLabel is the setup token of each role.
var roleLabel = map[string]string{"admin": "admin", "enforcer": "enforcer", "reviewer": "reviewer",
	"senior_reviewer": "senior", "advertiser": "advertiser", "auditor": "auditor"}

// caller is a token that the route lets in ("" on a public route).
func caller(o openAPIOp) string {
	if len(o.Roles) == 0 {
		return ""
	}
	return roleLabel[o.Roles[0]]
}

// fill puts value in the path's wildcard name and harmless values in the others.
func fill(path, name, value string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		w := strings.Trim(s, "{}")
		switch {
		case w == name:
			segs[i] = value
		case w == "code":
			segs[i] = "crypto"
		case w == "n" || w == "index":
			segs[i] = "1"
		default:
			segs[i] = "0190a8c2-7d1e-7b3a-9c1e-3f2a1b4c5d6e"
		}
	}
	return strings.Join(segs, "/")
}

// validBodies is a valid body of every write: a route that takes a body
// and is missing here fails TestHostileInputOnEveryRoute.
var validBodies = map[string]any{
	"PUT /v1/policies/{code}":            map[string]any{"title": "T", "text": "X"},
	"POST /v1/decisions":                 validDecision("crypto"),
	"POST /v1/decisions/{id}/notices":    map[string]any{"channel": "email"},
	"POST /v1/decisions/{id}/appeals":    map[string]any{"statement": "Unfair."},
	"POST /v1/appeals/claim":             nil,
	"POST /v1/appeals/{id}/resolve":      map[string]any{"outcome": "upheld", "rationale": "Checked."},
	"POST /v1/appeals/{id}/escalate":     map[string]any{"reason": "Hard."},
	"POST /v1/appeals/{id}/withdraw":     nil,
	"POST /v1/policies/{code}/reversals": map[string]any{"versions": []int{1}, "rationale": "Wrong."},
}

// firstString is a string field of a valid body, to be spoiled.
func firstString(body any) string {
	m, _ := body.(map[string]any)
	for _, k := range []string{"title", "explanation", "channel", "statement", "rationale", "reason"} {
		if _, ok := m[k].(string); ok {
			return k
		}
	}
	return ""
}

// hostile is one bad request and the field its 400 must name.
type hostile struct {
	name, method, path, who, field string
	body                           any
	headers                        []string
}

// hostileCases builds, from every route of routes.go, a bad request of
// each kind the route takes: path ids, query parameters (NUL, invalid
// UTF-8, a value no parameter accepts, twice, raw ';'), unknown query
// parameters, forged cursors, bodies (duplicate and wrong-case keys, NUL
// and invalid UTF-8 in a string) and the Idempotency-Key header.
func hostileCases(t *testing.T, e *env) []hostile {
	t.Helper()
	var cs []hostile
	for pattern, o := range routeOps(t, e) {
		method, path, _ := strings.Cut(pattern, " ")
		who := caller(o)
		base := fill(path, "", "")
		add := func(kind, p, field string, body any, headers ...string) {
			cs = append(cs, hostile{name: pattern + " " + kind, method: method, path: p, who: who,
				field: field, body: body, headers: headers})
		}
		body, write := validBodies[pattern]
		if method == "POST" || method == "PUT" {
			require.True(t, write, "write %q has no valid body in validBodies", pattern)
		}
		for _, p := range o.Parameters {
			switch p.In {
			case "path":
				add("NUL in path "+p.Name, fill(path, p.Name, "a%00b"), p.Name, body)
				add("invalid UTF-8 in path "+p.Name, fill(path, p.Name, url.PathEscape("a\xffb")), p.Name, body)
			case "query":
				q := p.Name
				add("NUL in query "+q, base+"?"+q+"=a%00b", q, nil)
				add("invalid UTF-8 in query "+q, base+"?"+q+"=a%FFb", q, nil)
				add("unknown value of "+q, base+"?"+q+"=a%3Bdrop", q, nil)
				add("raw ; in "+q, base+"?"+q+"=a;drop", q, nil)
				if q != "type" {
					add(q+" twice", base+"?"+q+"=1&"+q+"=2", q, nil)
				}
				if q == "cursor" {
					for _, forged := range []string{"x;drop", "' OR 1=1 --", "\xff\xfe", "\x00"} {
						add(fmt.Sprintf("forged cursor %q", forged), base+"?cursor="+base64.RawURLEncoding.EncodeToString([]byte(forged)), q, nil)
					}
					// A real key, padded: not the spelling the server writes.
					add("padded cursor", base+"?cursor="+base64.URLEncoding.EncodeToString([]byte("0190a8c2-7d1e-7b3a-9c1e-3f2a1b4c5d6e-")), q, nil)
				}
			}
		}
		add("unknown query parameter", base+"?bogus=1", "bogus", body)
		if !write {
			continue
		}
		add("Idempotency-Key not UTF-8", base, "Idempotency-Key", body, "Idempotency-Key", "k\xff")
		field := firstString(body)
		if field == "" { // a write that takes no input: any key is unknown
			add("unknown body field", base, "x", `{"x":1}`)
			continue
		}
		valid, err := json.Marshal(body)
		require.NoError(t, err)
		obj := strings.TrimSuffix(string(valid), "}")
		add("duplicate key", base, field, obj+`,"`+field+`":"again"}`)
		add("wrong-case key", base, strings.ToUpper(field[:1])+field[1:], obj+`,"`+strings.ToUpper(field[:1])+field[1:]+`":"x"}`)
		add("NUL in body string", base, field, strings.Replace(string(valid), `"`+field+`":"`, `"`+field+`":"a\u0000`, 1))
		add("invalid UTF-8 in body string", base, field, strings.Replace(string(valid), `"`+field+`":"`, `"`+field+`":"a`+"\xff", 1))
	}
	// Nested: the strict pass checks every level.
	appeal := "POST /v1/decisions/{id}/appeals"
	p := fill("/v1/decisions/{id}/appeals", "", "")
	for name, c := range map[string][2]string{
		"nested wrong-case key": {`{"statement":"s","evidence":[{"description":"d","URL":"https://x.test"}]}`, "evidence[0].URL"},
		"nested duplicate key":  {`{"statement":"s","evidence":[{"url":"https://x.test","url":"https://y.test"}]}`, "evidence[0].url"},
		"nested unknown key":    {`{"statement":"s","evidence":[{},{"description":"d","size":1}]}`, "evidence[1].size"},
		"nested NUL":            {`{"statement":"s","evidence":[{"description":"a\u0000"}]}`, "evidence[0].description"},
		"too many items":        {`{"statement":"s","evidence":[` + strings.Repeat(`{"description":"d"},`, 21) + `{}]}`, "evidence"},
	} {
		cs = append(cs, hostile{name: appeal + " " + name, method: "POST", path: p, who: "advertiser", field: c[1], body: c[0]})
	}
	return cs
}

// TestHostileInputOnEveryRoute: every kind of bad input every route takes
// is a 400 problem naming the field, never a 5xx and never ignored.
func TestHostileInputOnEveryRoute(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	cases := hostileCases(t, e)
	require.Greater(t, len(cases), 150)
	for _, c := range cases {
		r := e.do(c.method, c.path, c.who, c.body, c.headers...)
		require.Equal(t, 400, r.Status, "%s: %s %s: %s", c.name, c.method, c.path, r.Body)
		require.Contains(t, r.problemFields(t), c.field, "%s: %s", c.name, r.Body)
	}
}

// TestExportWithBadPolicyCodeExportsNothing: url.ParseQuery drops a pair
// holding ';', which once made policy_code=a;drop export everything.
func TestExportWithBadPolicyCodeExportsNothing(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, q := range []string{"policy_code=a;drop", "policy_code=a%3Bdrop", "type=decision.recorded;x", "type=nope"} {
		r := e.do("GET", "/v1/exports/audit?"+q, "auditor", nil)
		require.Equal(t, 400, r.Status, "%s: %s", q, r.Body)
	}
}

// rawRequest sends request bytes as they are, for what net/http's client
// refuses to send (raw bytes in the request line, NUL in a header).
func rawRequest(t *testing.T, e *env, req string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte(req))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestRawBytesInRequestLineAndHeaders: invalid UTF-8 sent raw in the path
// is a 400 naming the id; NUL and invalid UTF-8 in headers are 4xx.
func TestRawBytesInRequestLineAndHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	auth := "Authorization: Bearer " + e.tokens["admin"] + "\r\n"
	for _, path := range []string{"/v1/decisions/a\xffb", "/v1/appeals/\xff", "/v1/policies/\xc3"} {
		st := rawRequest(t, e, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n"+auth+"Connection: close\r\n\r\n")
		require.Equal(t, 400, st, "%q", path)
	}
	for _, h := range []string{"Authorization: Bearer a\x00b\r\n", "Authorization: Bearer \xff\xfe\r\n",
		auth + "Idempotency-Key: a\x00b\r\n", auth + "Idempotency-Key: \xff\r\n"} {
		st := rawRequest(t, e, "POST /v1/appeals/claim HTTP/1.1\r\nHost: "+host+"\r\n"+h+"Connection: close\r\n\r\n")
		require.True(t, st >= 400 && st < 500, "%q: %d", h, st)
	}
}

// TestErrorBodiesAreBounded: a hostile body gets a small answer, with at
// most 100 field errors and one entry saying how many more.
func TestErrorBodiesAreBounded(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	id := e.decision(validDecision("crypto"))

	var unknown strings.Builder
	unknown.WriteString(`{"statement":"s"`)
	for i := range 5000 {
		fmt.Fprintf(&unknown, `,"f%d":1`, i)
	}
	unknown.WriteString("}")
	tooMany := make([]int, 1000) // every version 0: a bad item each
	for name, c := range map[string]struct {
		path, who string
		body      any
		more      string
	}{
		"5000 unknown fields":   {"/v1/decisions/" + id + "/appeals", "advertiser", unknown.String(), "4901 more"},
		"1000 invalid versions": {"/v1/policies/crypto/reversals", "admin", map[string]any{"versions": tooMany, "rationale": "r"}, "900 more"},
	} {
		r := e.do("POST", c.path, c.who, c.body)
		require.Equal(t, 400, r.Status, name)
		var p api.Problem
		require.NoError(t, json.Unmarshal(r.Body, &p))
		require.Len(t, p.Errors, 101, name)
		last := p.Errors[100]
		require.Equal(t, "errors", last.Field, name)
		require.Contains(t, last.Message, c.more, name)
		require.Less(t, len(r.Body), 16<<10, name)
	}
}

// TestHugeEvidenceListIsCheap: 340,000 empty evidence items (just under
// 1 MiB) get a small 400 naming evidence, at a small cost. Not parallel,
// so that the allocation count is this request's.
func TestHugeEvidenceListIsCheap(t *testing.T) {
	e := setup(t)
	e.policy("crypto")
	id := e.decision(validDecision("crypto"))
	body := `{"statement":"s","evidence":[` + strings.Repeat("{},", 339999) + `{}]}`
	require.Less(t, len(body), 1<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := e.do("POST", "/v1/decisions/"+id+"/appeals", "advertiser", body)
	runtime.ReadMemStats(&after)
	require.Equal(t, 400, r.Status, "%.300s", r.Body)
	require.Equal(t, []string{"evidence"}, r.problemFields(t))
	require.Less(t, len(r.Body), 4<<10)
	// The body itself is read (1 MiB, some copies); 107 MB was the cost
	// before the strict pass.
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(24<<20))
}

// TestMalformedResolvesFailNoRealOne: 25 real resolutions sent with
// malformed ones at the same time all succeed; each malformed one gets
// its own 4xx.
func TestMalformedResolvesFailNoRealOne(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.policy("crypto")
	const n = 25
	for range n {
		id := e.decision(validDecision("crypto"))
		r := e.do("POST", "/v1/decisions/"+id+"/appeals", "advertiser", map[string]any{"statement": "Unfair."})
		require.Equal(t, 201, r.Status, "%s", r.Body)
	}
	var ids []string
	for range n {
		r := e.do("POST", "/v1/appeals/claim", "reviewer", nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		ids = append(ids, r.json(t)["id"].(string))
	}
	bad := []string{url.PathEscape("a\xffb"), "a%00b", strings.Repeat("x", 300), url.PathEscape("\xc3")}
	resolve := map[string]any{"outcome": "upheld", "rationale": "Checked."}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			r := e.do("POST", "/v1/appeals/"+id+"/resolve", "reviewer", resolve)
			assert.Equal(t, 200, r.Status, "%s", r.Body)
		})
		wg.Go(func() {
			r := e.do("POST", "/v1/appeals/"+bad[i%len(bad)]+"/resolve", "reviewer", resolve)
			assert.True(t, r.Status == 400 || r.Status == 404, "%d: %s", r.Status, r.Body)
		})
	}
	wg.Wait()
}
