package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
)

// Cookies. The session cookie holds the session id only; its hash is in
// the database (appeals.StartSession). The sign-in cookie holds a nonce the
// sign-in form repeats (a double-submit token: the form has no session yet).
const (
	sessionCookie = "docket_session"
	signInCookie  = "docket_signin"
)

// handler is a page or form of a signed-in actor.
type handler func(w http.ResponseWriter, r *http.Request, s *appeals.Session) error

// session returns the request's live session and its id, or an
// Unauthorized error.
func (c *Console) session(r *http.Request) (*appeals.Session, string, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, "", docket.Errorf(docket.Unauthorized, "not signed in")
	}
	s, err := c.store.LookupSession(r.Context(), ck.Value)
	if err != nil {
		return nil, "", err
	}
	return &s, ck.Value, nil
}

// page wraps a GET page: without a live session it sends the browser to
// sign in (and back here after); a role not admitted is a 403 page.
func (c *Console) page(h handler, roles ...docket.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _, err := c.session(r)
		if docket.ErrorCode(err) == docket.Unauthorized {
			c.clearCookie(w, r, sessionCookie, "/ui/")
			http.Redirect(w, r, "/ui/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err == nil && !s.Actor.Is(roles...) {
			err = docket.Errorf(docket.Forbidden, "the %s role may not open this page", s.Actor.Role)
		}
		if err == nil {
			err = h(w, r, s)
		}
		if err != nil {
			c.fail(w, r, s, err)
		}
	}
}

// form wraps a state-changing form: a live session, its CSRF token in the
// form (compared in constant time), and an admitted role. The origin check
// ran before (post).
func (c *Console) form(h handler, roles ...docket.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _, err := c.session(r)
		if docket.ErrorCode(err) == docket.Unauthorized {
			c.clearCookie(w, r, sessionCookie, "/ui/")
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		if err == nil && !validCSRF(r.PostForm.Get("csrf"), s.CSRF) {
			err = docket.Errorf(docket.Forbidden, "the form's security token is missing or stale; reload the page and try again")
		}
		if err == nil && !s.Actor.Is(roles...) {
			err = docket.Errorf(docket.Forbidden, "the %s role may not do this", s.Actor.Role)
		}
		if err == nil {
			err = h(w, r, s)
		}
		if err != nil {
			c.fail(w, r, s, err)
		}
	}
}

func validCSRF(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func nonce() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// setCookie sets an HttpOnly, SameSite=Strict cookie, Secure when the
// request came over TLS, to this server or to a trusted proxy (Config.TLS).
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.tls(r)})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request, name, path string) {
	if _, err := r.Cookie(name); err == nil {
		c.setCookie(w, r, name, "", path, -1)
	}
}

// home is where each role starts.
func home(a docket.Actor) string {
	if a.Is(reviewers...) {
		return "/ui/queue"
	}
	if a.Role == docket.RoleAuditor {
		return "/ui/audit"
	}
	return "/ui/decisions"
}

// safeNext keeps a post-sign-in target only when it is a console path
// (never another site: no scheme, host or "//").
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n") || strings.Contains(next, "//") ||
		strings.HasPrefix(next, Prefix+"signin") {
		return ""
	}
	return next
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	if s, _, err := c.session(r); err == nil {
		http.Redirect(w, r, home(s.Actor), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

type signInView struct {
	Nonce, Next string
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if s, _, err := c.session(r); err == nil {
		http.Redirect(w, r, home(s.Actor), http.StatusSeeOther)
		return
	}
	c.renderSignIn(w, r, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
}

func (c *Console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, next, errMsg string) {
	n := nonce()
	c.setCookie(w, r, signInCookie, n, "/ui/signin", 600)
	c.render(w, r, status, "signin", view{Title: "Sign in", Error: errMsg, Data: signInView{Nonce: n, Next: next}})
}

// signIn exchanges a bearer token for a session. The session id is new
// on every sign-in (no fixation); the token itself is never kept.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostForm.Get("next"))
	ck, err := r.Cookie(signInCookie)
	if err != nil || !validCSRF(r.PostForm.Get("csrf"), ck.Value) {
		c.renderSignIn(w, r, http.StatusForbidden, next, "The sign-in form expired or was not sent from this page; try again.")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" || len(token) > 256 {
		c.renderSignIn(w, r, http.StatusBadRequest, next, "Paste your token (it starts with dkt_).")
		return
	}
	if wait := c.signInWait(r); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		c.renderSignIn(w, r, http.StatusTooManyRequests, next, "Too many failed sign-ins from this address; wait a minute and try again.")
		return
	}
	ns, err := c.store.StartSession(r.Context(), token, c.limits)
	if err != nil {
		if docket.ErrorCode(err) == docket.Unauthorized {
			c.signInFailed(r)
			c.renderSignIn(w, r, http.StatusUnauthorized, next, "That token is unknown or revoked.")
			return
		}
		c.fail(w, r, nil, err)
		return
	}
	c.logger.InfoContext(r.Context(), "console sign-in", slog.String("actor", ns.Actor.String()))
	c.clearCookie(w, r, signInCookie, "/ui/signin")
	c.setCookie(w, r, sessionCookie, ns.ID, "/ui/", int(ns.ExpiresAt.Sub(c.now()).Seconds()))
	if next == "" {
		next = home(ns.Actor)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut ends the session; it needs the session's CSRF token, so that
// another site cannot sign a user out.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	s, id, err := c.session(r)
	if err != nil {
		c.clearCookie(w, r, sessionCookie, "/ui/")
		http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
		return
	}
	if !validCSRF(r.PostForm.Get("csrf"), s.CSRF) {
		c.fail(w, r, s, docket.Errorf(docket.Forbidden, "the form's security token is missing or stale; reload the page and try again"))
		return
	}
	if err := c.store.EndSession(r.Context(), id); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.clearCookie(w, r, sessionCookie, "/ui/")
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}
