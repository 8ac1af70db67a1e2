package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/docket-dev/docket/api/httpstatus"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}

// readyTimeout bounds /readyz's database ping.
const readyTimeout = 2 * time.Second

// readyz reports ready only when Postgres answers and every check passes.
// A failed ping says why first: "connection refused", "timed out after
// 2s" or "connection lost".
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	type result = ReadyCheck
	out := map[string]result{}
	ready := true
	if err := s.store.DB().PingContext(ctx); err != nil {
		reason := httpstatus.OutageReason(err)
		if ctx.Err() != nil {
			reason = "timed out"
		}
		if reason == "timed out" {
			reason += " after " + readyTimeout.String()
		}
		out["postgres"] = result{Error: reason + ": " + err.Error()}
		ready = false
	} else {
		out["postgres"] = result{OK: true}
	}
	for _, c := range s.checks {
		d, err := c.Func(ctx)
		res := result{OK: err == nil, Details: d}
		if err != nil {
			res.Error = err.Error()
			ready = false
		}
		out[c.Name] = res
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(httpstatus.RetryAfter))
	}
	writeJSON(w, status, Readiness{Ready: ready, Checks: out})
}

// Readiness is /readyz's answer: ready only when every check is.
type Readiness struct {
	Ready  bool                  `json:"ready" required:"true"`
	Checks map[string]ReadyCheck `json:"checks" required:"true"`
}

// ReadyCheck is one part's state.
type ReadyCheck struct {
	OK      bool   `json:"ok" required:"true"`
	Error   string `json:"error,omitempty"`
	Details any    `json:"details,omitempty"`
}
