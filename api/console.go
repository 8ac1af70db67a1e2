package api

import (
	"net/http"
	"time"

	"github.com/docket-dev/docket/api/console"
)

// consoleHandler is the consoles for people (api/console), sharing the
// API's limit on failed authentications per client address (a token
// guessed through the sign-in form counts as one guessed in a header) and
// its trusted proxies: behind one that terminates TLS, its
// X-Forwarded-Proto makes the session cookie Secure.
func (s *Server) consoleHandler() http.Handler {
	client := func(r *http.Request) string {
		return clientKey(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.limits.TrustedProxies)
	}
	return console.New(console.Config{Store: s.store, Audit: s.audit, Logger: s.logger, Sessions: s.sessions,
		TLS:          func(r *http.Request) bool { return viaTLS(r, s.limits.TrustedProxies) },
		SignInWait:   func(r *http.Request) time.Duration { return s.failures.blocked(client(r), time.Now()) },
		SignInFailed: func(r *http.Request) { s.failures.spend(client(r), time.Now()) },
	})
}
