package api

import (
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// handler is an authenticated handler; its error becomes problem+json.
type handler func(w http.ResponseWriter, r *http.Request, a docket.Actor) error

// authed authenticates the bearer token and lets only the given roles in.
// Scope within a role (an advertiser's own records, separation of duties)
// is the domain's rule, checked there.
func (s *Server) authed(h handler, roles ...docket.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticate(w, r)
		if err != nil {
			if docket.ErrorCode(err) == docket.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="docket"`)
			}
			s.writeError(w, r, err)
			return
		}
		if rec, ok := w.(*statusRecorder); ok {
			rec.actor = a.String()
		}
		if !a.Is(roles...) {
			s.writeError(w, r, docket.Errorf(docket.Forbidden, "the %s role may not do this", a.Role))
			return
		}
		if err := h(w, r, a); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// public wraps a handler that needs no token.
func (s *Server) public(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// authenticate checks the bearer token. A client address with too many
// failed checks is refused before the look-up, so guessing costs no query;
// a request without a token guesses nothing and is not counted.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (docket.Actor, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return docket.Actor{}, docket.Errorf(docket.Unauthorized, "send Authorization: Bearer <token>")
	}
	client := clientKey(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.limits.TrustedProxies)
	if wait := s.failures.blocked(client, time.Now()); wait > 0 {
		return docket.Actor{}, tooManyRequests(w, wait, "too many failed authentications from this address")
	}
	a, err := s.auth.authenticate(r.Context(), token)
	if err != nil {
		// Only a token found wanting counts: a database outage is not the
		// client's failure and must not lock everyone out.
		if docket.ErrorCode(err) == docket.Unauthorized && s.failures.spend(client, time.Now()) {
			s.refusalLog.Do(func() {
				s.logger.WarnContext(r.Context(), "refusing authentication from an address with too many failures (logged at most every 10 s)",
					slog.String("client", client))
			})
		}
		return a, err
	}
	if s.perToken != nil {
		key := sha256.Sum256([]byte(token))
		if wait := s.perToken.take(string(key[:]), time.Now()); wait > 0 {
			return docket.Actor{}, tooManyRequests(w, wait, "too many requests with this token")
		}
	}
	return a, nil
}

// idempotent returns the write option that binds the write to the
// request's Idempotency-Key, when it has one (else an option that changes
// nothing): the domain then stores the reply, status and headers (Location)
// with the change, and a retry replays all of it. shape gives the reply's
// status and headers from the write's result.
func idempotent(r *http.Request, a docket.Actor, body []byte, shape replyShape) (appeals.WriteOption, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return appeals.Idempotent(nil), nil
	}
	if len(key) > 255 || strings.ContainsFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		return nil, invalidField("Idempotency-Key", "must be 1 to 255 printable ASCII characters")
	}
	h := sha256.New()
	h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
	h.Write(body)
	return appeals.Idempotent(&appeals.Idempotency{
		Actor: a.String(), Tenant: a.AdvertiserID, Key: key, RequestHash: h.Sum(nil),
		Reply: func(result any) (int, map[string]string, []byte, error) {
			b, err := marshal(result)
			status, headers := shape(result)
			return status, headers, b, err
		},
	}), nil
}

// replyShape gives a write's reply status and headers from its result.
// The live reply and a replay of it are both made from it (respond, and
// the stored reply), so they cannot differ.
type replyShape func(result any) (status int, headers map[string]string)

func always(code int) replyShape { return func(any) (int, map[string]string) { return code, nil } }

// createdAt is 201 with a Location of the record made.
func createdAt(location func(result any) string) replyShape {
	return func(v any) (int, map[string]string) {
		if l := location(v); l != "" {
			return http.StatusCreated, map[string]string{"Location": l}
		}
		return http.StatusCreated, nil
	}
}

// respond writes a write's result as shape says.
func respond(w http.ResponseWriter, shape replyShape, v any) {
	status, headers := shape(v)
	for k, h := range headers {
		w.Header().Set(k, h)
	}
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, v)
}

// decodeWrite reads and strictly decodes the body of a write into In, and
// returns the write option of its Idempotency-Key (see idempotent), which
// the handler passes to the store's write. With optional, an empty body is
// accepted (writes that take no input, such as a claim).
func decodeWrite[In any](w http.ResponseWriter, r *http.Request, a docket.Actor, optional bool, shape replyShape) (In, appeals.WriteOption, error) {
	var in In
	body, err := readBody(w, r, optional)
	if err != nil {
		return in, nil, err
	}
	if len(body) > 0 || !optional {
		if err := decodeJSON(body, &in); err != nil {
			return in, nil, withShapeProblems(err, in)
		}
	}
	key, err := idempotent(r, a, body, shape)
	return in, key, err
}

// withShapeProblems adds, to a body's decoding errors, what validation says
// of the fields that did decode, so one 400 names every bad field.
func withShapeProblems(err error, in any) error {
	var de *docket.Error
	if !errors.As(err, &de) || len(de.Fields) == 0 || de.Fields[0].Field == "body" {
		return err
	}
	v, ok := in.(interface{ Validate() error })
	if !ok {
		return err
	}
	var ve *docket.Error
	if !errors.As(v.Validate(), &ve) {
		return err
	}
	named := map[string]bool{}
	for _, f := range de.Fields {
		named[f.Field] = true
	}
	for _, f := range ve.Fields {
		if !named[f.Field] {
			de.Fields = append(de.Fields, f)
		}
	}
	return de
}
