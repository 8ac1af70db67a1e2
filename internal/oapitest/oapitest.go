// Package oapitest checks HTTP traffic against an OpenAPI document with
// kin-openapi, so that the document cannot drift from the server: tests
// route their client through Transport, and every response must be one the
// document describes (status, headers, content type, body), and every
// request the server accepted (2xx) one the document accepts.
//
// Only tests import it.
package oapitest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator holds a loaded document and its router.
type Validator struct {
	Doc    *openapi3.T
	router routers.Router
}

// New loads and validates doc (JSON).
func New(doc []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("oapitest: load: %w", err)
	}
	if err := t.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("oapitest: the document is not valid OpenAPI: %w", err)
	}
	// The router matches paths against the servers; a relative server
	// ("/") matches any host.
	rt := *t
	rt.Servers = nil
	r, err := gorillamux.NewRouter(&rt)
	if err != nil {
		return nil, fmt.Errorf("oapitest: router: %w", err)
	}
	return &Validator{Doc: t, router: r}, nil
}

var (
	cacheMu sync.Mutex
	cache   = map[string]*Validator{}
)

// Cached is New, once per distinct document in a test binary.
func Cached(doc []byte) (*Validator, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if v, ok := cache[string(doc)]; ok {
		return v, nil
	}
	v, err := New(doc)
	if err != nil {
		return nil, err
	}
	cache[string(doc)] = v
	return v, nil
}

// transportHeaders are response headers of HTTP itself, not of the API,
// which the document need not name (Vary: Accept-Encoding comes with
// /metrics' compression).
var transportHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Date": true, "Transfer-Encoding": true,
	"Connection": true, "Keep-Alive": true, "Trailer": true, "Vary": true,
}

// Check validates one exchange. reqBody is the request's body as sent;
// respBody the response's body, complete unless the reader stopped early
// (then only status and headers are checked). The request is checked only
// when the server accepted it (2xx): a request the server refused is
// often refused on purpose, but one it accepted must be one the document
// accepts.
func (v *Validator) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte, complete bool) error {
	route, pathParams, err := v.router.FindRoute(req)
	if err != nil {
		// Not a documented path (a probe of an unknown route, or another
		// method on a known one): nothing to check it against.
		var re *routers.RouteError
		if errors.As(err, &re) || errors.Is(err, routers.ErrPathNotFound) || errors.Is(err, routers.ErrMethodNotAllowed) {
			return nil
		}
		return err
	}
	ctx := context.Background()
	clone := req.Clone(ctx)
	clone.Body = io.NopCloser(bytes.NewReader(reqBody))
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true,
		IncludeResponseStatus: true, RejectWhenRequestBodyNotSpecified: true}
	in := &openapi3filter.RequestValidationInput{Request: clone, PathParams: pathParams, Route: route, Options: opts}
	var errs []error
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("the server accepted a request the document refuses: %w", err))
		}
	}
	errs = append(errs, v.checkResponse(ctx, in, route, resp, respBody, complete)...)
	return errors.Join(errs...)
}

func (v *Validator) checkResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, route *routers.Route,
	resp *http.Response, body []byte, complete bool) []error {
	var errs []error
	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil || ref.Value == nil {
		return []error{fmt.Errorf("status %d is not documented", resp.StatusCode)}
	}
	doc := ref.Value
	for name := range resp.Header {
		if transportHeaders[name] {
			continue
		}
		if !hasHeader(doc.Headers, name) {
			errs = append(errs, fmt.Errorf("header %s is not documented for status %d", name, resp.StatusCode))
		}
	}
	for name, h := range doc.Headers {
		if h.Value != nil && h.Value.Required && resp.Header.Get(name) == "" {
			errs = append(errs, fmt.Errorf("required header %s is missing", name))
		}
	}
	ct := resp.Header.Get("Content-Type")
	if len(doc.Content) == 0 {
		if len(body) > 0 {
			errs = append(errs, fmt.Errorf("status %d is documented without a body, but has one (%s)", resp.StatusCode, ct))
		}
		return errs
	}
	mt := doc.Content.Get(ct)
	if mt == nil {
		return append(errs, fmt.Errorf("content type %q is not documented for status %d", ct, resp.StatusCode))
	}
	base, _, _ := strings.Cut(ct, ";")
	ndjson := strings.TrimSpace(base) == "application/x-ndjson"
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true,
			ExcludeResponseBody: !complete || ndjson}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, err)
	}
	if complete && ndjson && mt.Schema != nil {
		errs = append(errs, checkLines(body, mt.Schema.Value)...)
	}
	return errs
}

// checkLines validates each line of a JSON-lines body against schema, the
// schema of one line.
func checkLines(body []byte, schema *openapi3.Schema) []error {
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			errs = append(errs, fmt.Errorf("line %d is not JSON: %w", n, err))
		} else if err := schema.VisitJSON(v, openapi3.VisitAsResponse(), openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
			errs = append(errs, fmt.Errorf("line %d does not match the schema: %w", n, err))
		}
		if len(errs) >= 5 {
			break
		}
	}
	return errs
}

func hasHeader(h openapi3.Headers, name string) bool {
	for k := range h {
		if textproto.CanonicalMIMEHeaderKey(k) == name {
			return true
		}
	}
	return false
}

// Transport wraps base so that every exchange is checked; report gets one
// line per exchange the document does not describe. Bodies are recorded as
// they are read, and checked when the response body reaches its end or is
// closed: a test reading a stream reads it as before.
func (v *Validator) Transport(base http.RoundTripper, report func(string)) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{v: v, base: base, report: report}
}

type transport struct {
	v      *Validator
	base   http.RoundTripper
	report func(string)
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &recordingBody{rc: resp.Body, done: func(body []byte, complete bool) {
		if err := t.v.Check(req, reqBody, resp, body, complete); err != nil {
			t.report(fmt.Sprintf("%s %s -> %d: %v", req.Method, req.URL.RequestURI(), resp.StatusCode, err))
		}
	}}
	return resp, nil
}

// recordingBody keeps what is read and calls done once: at EOF with the
// whole body, or at Close with complete false if the reader stopped early.
// A read error (a stream the server cut) checks nothing.
type recordingBody struct {
	rc   io.ReadCloser
	buf  bytes.Buffer
	once sync.Once
	done func(body []byte, complete bool)
	bad  bool
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.buf.Write(p[:n])
	switch {
	case errors.Is(err, io.EOF):
		b.once.Do(func() { b.done(b.buf.Bytes(), true) })
	case err != nil:
		b.bad = true
	}
	return n, err
}

func (b *recordingBody) Close() error {
	if !b.bad {
		b.once.Do(func() { b.done(b.buf.Bytes(), false) })
	}
	return b.rc.Close()
}

// Names lists the documented operations as "METHOD /path".
func (v *Validator) Names() []string {
	var out []string
	for path, item := range v.Doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}
