// Package client is a typed Go client of Docket's HTTP API, for the
// services that integrate with it (an ad server recording decisions, a
// mailer recording notices) and for auditors fetching the log.
//
// It is written on the document's own types: /openapi.json is generated
// from the Go types of package appeals that the handlers decode and
// encode, and this package re-exports those same types, so a field cannot
// differ between the client, the server and the document. (A generator
// such as oapi-codegen targets OpenAPI 3.0; the document is 3.1.) The
// package's tests check that every route the client calls is in the
// document with the method, path and statuses it expects.
//
// Errors: a reply other than the documented success is an *Error,
// decoded from its application/problem+json body, with the status, the
// problem type and the field errors.
//
// Verifying. An auditor needs no token to hold the log to a checkpoint it
// saved earlier: VerifyRemote fetches the live checkpoint and a
// consistency proof through the public routes, as any outsider can, and
// checks them with audit's checkpoint parser and the Merkle proofs. That
// is `docket verify --remote`; what it knows of the server is the public
// API and nothing else.
//
// Retries are the caller's. A read may always be retried. A write is safe
// to retry only with an Idempotency-Key (the IdempotencyKey option): the
// same key and body within 24 hours returns the first reply again and
// changes nothing, so an ad server that lost a reply to a timeout sends
// the same request with the same key.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// The API's types, as the document describes them.
type (
	Policy         = appeals.Policy
	PolicyInput    = appeals.PolicyInput
	Decision       = appeals.Decision
	DecisionInput  = appeals.DecisionInput
	NoticeInput    = appeals.NoticeInput
	Appeal         = appeals.Appeal
	AppealInput    = appeals.AppealInput
	Evidence       = appeals.Evidence
	ResolveInput   = appeals.ResolveInput
	EscalateInput  = appeals.EscalateInput
	ReversalInput  = appeals.ReversalInput
	ReversalReport = appeals.ReversalReport
	AppealsReport  = appeals.AppealsReport
	FieldError     = docket.FieldError

	Action            = appeals.Action
	Ground            = appeals.Ground
	Source            = appeals.Source
	AutomatedDecision = appeals.AutomatedDecision
	ContentType       = appeals.ContentType
	DecisionStatus    = appeals.DecisionStatus
	AppealState       = appeals.AppealState
	NoticeChannel     = appeals.NoticeChannel
)

// Page is one page of a list; NextCursor, when set, fetches the next.
type Page[T any] = appeals.Page[T]

// Client calls one Docket. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client of the Docket at baseURL (scheme and host, e.g.
// http://127.0.0.1:8080) acting with token ("" for the public routes
// only). hc nil means http.DefaultClient.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), token: token, hc: hc}, nil
}

// WithToken returns a client of the same Docket acting with another token.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// Error is a reply other than the route's success, from its
// application/problem+json body (RFC 9457).
type Error struct {
	Status int          // the HTTP status
	Type   string       // the problem type, a URI naming the kind of failure
	Title  string       // its short description
	Detail string       // this occurrence
	Fields []FieldError // the request's invalid fields, for a 400
	// RetryAfter is the Retry-After header of a 429 or 503, in seconds (0: none).
	RetryAfter int
	// RequestID is the X-Request-Id of the reply, for the server's log.
	RequestID string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "docket: %d", e.Status)
	if e.Title != "" {
		b.WriteString(" " + e.Title)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, f := range e.Fields {
		b.WriteString("; " + f.Field + " " + f.Message)
	}
	return b.String()
}

// StatusOf is the status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Option sets something on one request.
type Option func(*http.Request)

// IdempotencyKey sends an Idempotency-Key with a write (1 to 255 printable
// ASCII characters), making it safe to retry.
func IdempotencyKey(key string) Option {
	return func(r *http.Request) { r.Header.Set("Idempotency-Key", key) }
}

// RequestID sends X-Request-Id, which the server puts on its log lines.
func RequestID(id string) Option {
	return func(r *http.Request) { r.Header.Set("X-Request-Id", id) }
}

// request builds one request; body nil sends none.
func (c *Client) request(ctx context.Context, method, path string, q url.Values, body any, opts []Option) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := encode(body)
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for _, o := range opts {
		o(req)
	}
	return req, nil
}

// send makes the request and returns the reply when its status is among
// ok; otherwise the reply's *Error. The caller closes the body.
func (c *Client) send(req *http.Request, ok ...int) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", req.Method, req.URL.Path, err)
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	return nil, readError(resp)
}

// readError decodes a problem reply; a body that is none still gives the status.
func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		e.RetryAfter = s
	}
	var p struct {
		Type   string       `json:"type"`
		Title  string       `json:"title"`
		Detail string       `json:"detail"`
		Errors []FieldError `json:"errors"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(raw, &p) == nil {
		e.Type, e.Title, e.Detail, e.Fields = p.Type, p.Title, p.Detail, p.Errors
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	return e
}

// call sends a JSON request and decodes a JSON reply into out (nil: the
// reply is drained). It returns the reply's status.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any, opts []Option, ok ...int) (int, error) {
	req, err := c.request(ctx, method, path, q, body, opts)
	if err != nil {
		return 0, err
	}
	resp, err := c.send(req, ok...)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("client: %s %s: decode: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

// encode is body as JSON. Inputs with optional members are sent through
// their wire forms below, which omit the members left empty: the server
// decodes into the same Go types, where an absent member is that zero
// value, and the document says what an optional member must look like
// when present (ends_at a date-time), not "".
func encode(body any) ([]byte, error) { return json.Marshal(body) }

// The wire forms: the same fields as the appeals types, with omitempty.
// A conversion between them compiles only while the fields match, so a
// field added to the API's type breaks the build here until it is added.
type decisionWire struct {
	AdvertiserID       string                    `json:"advertiser_id,omitempty"`
	AdID               string                    `json:"ad_id,omitempty"`
	Action             appeals.Action            `json:"action,omitempty"`
	PolicyCode         string                    `json:"policy_code,omitempty"`
	Ground             appeals.Ground            `json:"ground,omitempty"`
	LegalReference     string                    `json:"legal_reference,omitempty"`
	Explanation        string                    `json:"explanation,omitempty"`
	Facts              string                    `json:"facts,omitempty"`
	Source             appeals.Source            `json:"source,omitempty"`
	AutomatedDetection *bool                     `json:"automated_detection,omitempty"`
	AutomatedDecision  appeals.AutomatedDecision `json:"automated_decision,omitempty"`
	TerritorialScope   []string                  `json:"territorial_scope,omitempty"`
	EndsAt             string                    `json:"ends_at,omitempty"`
	ContentType        []string                  `json:"content_type,omitempty"`
}

type noticeWire struct {
	Channel     appeals.NoticeChannel `json:"channel,omitempty"`
	DeliveredAt string                `json:"delivered_at,omitempty"`
	Reference   string                `json:"reference,omitempty"`
}

type appealWire struct {
	Statement string                 `json:"statement,omitempty"`
	Evidence  []appeals.EvidenceItem `json:"evidence,omitempty"`
}

func seg(s string) string { return url.PathEscape(s) }

// PutPolicy creates or revises a policy (admin). created is false when
// the text was unchanged and no version was made.
func (c *Client) PutPolicy(ctx context.Context, code string, in PolicyInput, opts ...Option) (p *Policy, created bool, err error) {
	p = new(Policy)
	st, err := c.call(ctx, http.MethodPut, "/v1/policies/"+seg(code), nil, in, p, opts, http.StatusCreated, http.StatusOK)
	if err != nil {
		return nil, false, err
	}
	return p, st == http.StatusCreated, nil
}

// GetPolicy is a policy's current version.
func (c *Client) GetPolicy(ctx context.Context, code string) (*Policy, error) {
	p := new(Policy)
	if _, err := c.call(ctx, http.MethodGet, "/v1/policies/"+seg(code), nil, nil, p, nil, http.StatusOK); err != nil {
		return nil, err
	}
	return p, nil
}

// CreateDecision records an enforcement decision (enforcer, admin). With
// an IdempotencyKey it is safe to retry.
func (c *Client) CreateDecision(ctx context.Context, in DecisionInput, opts ...Option) (*Decision, error) {
	d := new(Decision)
	if _, err := c.call(ctx, http.MethodPost, "/v1/decisions", nil, decisionWire(in), d, opts, http.StatusCreated); err != nil {
		return nil, err
	}
	return d, nil
}

// GetDecision is one decision (an advertiser sees only its own).
func (c *Client) GetDecision(ctx context.Context, id string) (*Decision, error) {
	d := new(Decision)
	if _, err := c.call(ctx, http.MethodGet, "/v1/decisions/"+seg(id), nil, nil, d, nil, http.StatusOK); err != nil {
		return nil, err
	}
	return d, nil
}

// DecisionQuery filters a decision list; zero fields do not filter.
type DecisionQuery struct {
	AdvertiserID, Action, Status, PolicyCode string
	Limit                                    int
	Cursor                                   string
}

func (q DecisionQuery) values() url.Values {
	v := url.Values{}
	set(v, "advertiser_id", q.AdvertiserID)
	set(v, "action", q.Action)
	set(v, "status", q.Status)
	set(v, "policy_code", q.PolicyCode)
	setPage(v, q.Limit, q.Cursor)
	return v
}

func set(v url.Values, k, s string) {
	if s != "" {
		v.Set(k, s)
	}
}

func setPage(v url.Values, limit int, cursor string) {
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	set(v, "cursor", cursor)
}

// ListDecisions is a page of decisions, newest first.
func (c *Client) ListDecisions(ctx context.Context, q DecisionQuery) (*Page[Decision], error) {
	p := new(Page[Decision])
	if _, err := c.call(ctx, http.MethodGet, "/v1/decisions", q.values(), nil, p, nil, http.StatusOK); err != nil {
		return nil, err
	}
	return p, nil
}

// RecordNotice records that the decision's statement of reasons reached
// the advertiser (the mailer's call); it returns the decision.
func (c *Client) RecordNotice(ctx context.Context, decisionID string, in NoticeInput, opts ...Option) (*Decision, error) {
	d := new(Decision)
	if _, err := c.call(ctx, http.MethodPost, "/v1/decisions/"+seg(decisionID)+"/notices", nil, noticeWire(in), d, opts, http.StatusOK); err != nil {
		return nil, err
	}
	return d, nil
}

// FileAppeal appeals a decision (the advertiser it is about).
func (c *Client) FileAppeal(ctx context.Context, decisionID string, in AppealInput, opts ...Option) (*Appeal, error) {
	a := new(Appeal)
	if _, err := c.call(ctx, http.MethodPost, "/v1/decisions/"+seg(decisionID)+"/appeals", nil, appealWire(in), a, opts, http.StatusCreated); err != nil {
		return nil, err
	}
	return a, nil
}

// ClaimAppeal claims the waiting appeal due first (reviewers); nil, nil
// when none waits.
func (c *Client) ClaimAppeal(ctx context.Context, opts ...Option) (*Appeal, error) {
	a := new(Appeal)
	st, err := c.call(ctx, http.MethodPost, "/v1/appeals/claim", nil, nil, a, opts, http.StatusOK, http.StatusNoContent)
	if err != nil || st == http.StatusNoContent {
		return nil, err
	}
	return a, nil
}

func (c *Client) appealWrite(ctx context.Context, id, verb string, body any, opts []Option) (*Appeal, error) {
	a := new(Appeal)
	if _, err := c.call(ctx, http.MethodPost, "/v1/appeals/"+seg(id)+"/"+verb, nil, body, a, opts, http.StatusOK); err != nil {
		return nil, err
	}
	return a, nil
}

// ResolveAppeal upholds or reverses a claimed appeal (its assignee).
func (c *Client) ResolveAppeal(ctx context.Context, id string, in ResolveInput, opts ...Option) (*Appeal, error) {
	return c.appealWrite(ctx, id, "resolve", in, opts)
}

// EscalateAppeal hands a claimed appeal to the senior reviewers (its assignee).
func (c *Client) EscalateAppeal(ctx context.Context, id string, in EscalateInput, opts ...Option) (*Appeal, error) {
	return c.appealWrite(ctx, id, "escalate", in, opts)
}

// WithdrawAppeal withdraws a pending or in-review appeal (the advertiser).
func (c *Client) WithdrawAppeal(ctx context.Context, id string, opts ...Option) (*Appeal, error) {
	return c.appealWrite(ctx, id, "withdraw", nil, opts)
}

// GetAppeal is one appeal.
func (c *Client) GetAppeal(ctx context.Context, id string) (*Appeal, error) {
	a := new(Appeal)
	if _, err := c.call(ctx, http.MethodGet, "/v1/appeals/"+seg(id), nil, nil, a, nil, http.StatusOK); err != nil {
		return nil, err
	}
	return a, nil
}

// AppealQuery filters an appeal list; zero fields do not filter.
type AppealQuery struct {
	State, AdvertiserID, DecisionID string
	Overdue                         bool
	Limit                           int
	Cursor                          string
}

// ListAppeals is a page of appeals, newest first.
func (c *Client) ListAppeals(ctx context.Context, q AppealQuery) (*Page[Appeal], error) {
	v := url.Values{}
	set(v, "state", q.State)
	set(v, "advertiser_id", q.AdvertiserID)
	set(v, "decision_id", q.DecisionID)
	if q.Overdue {
		v.Set("overdue", "true")
	}
	setPage(v, q.Limit, q.Cursor)
	p := new(Page[Appeal])
	if _, err := c.call(ctx, http.MethodGet, "/v1/appeals", v, nil, p, nil, http.StatusOK); err != nil {
		return nil, err
	}
	return p, nil
}
