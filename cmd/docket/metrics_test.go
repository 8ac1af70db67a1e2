package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// sample finds the value of name's series with all of labels, or -1.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsAnOperatorAlertsOn scrapes a real serve: requests by route
// pattern and status with latencies, the integrator's backlog and
// checkpoint age, the appeal queue and the connection pool; every reply
// and log line carries a request id.
func TestMetricsAnOperatorAlertsOn(t *testing.T) {
	t.Parallel()
	// A review due at once makes the appeal overdue as soon as it is filed.
	s := startServer(t, map[string]string{"DOCKET_CHECKPOINT_INTERVAL": "10ms", "DOCKET_REVIEW_DUE": "1ms"})
	admin := s.token("--role", "admin", "--name", "ada")
	status, _ := s.call("PUT", "/v1/policies/crypto", admin, `{"title": "Crypto", "text": "No crypto ads."}`)
	require.Equal(t, 201, status)
	status, _ = s.call("GET", "/v1/policies/crypto", admin, "")
	require.Equal(t, 200, status)
	enforcer := s.token("--role", "enforcer", "--name", "pipeline")
	acme := s.token("--role", "advertiser", "--name", "acme-owner", "--advertiser", "acme")
	status, d := s.call("POST", "/v1/decisions", enforcer, `{"advertiser_id": "acme", "ad_id": "ad-1", "action": "ad_removal",
		"policy_code": "crypto", "ground": "terms", "explanation": "Token sale.", "facts": "Seen on 2026-11-20.",
		"source": "voluntary", "automated_detection": true, "automated_decision": "partial"}`)
	require.Equal(t, 201, status, "%v", d)
	status, a := s.call("POST", "/v1/decisions/"+d["id"].(string)+"/appeals", acme, `{"statement": "We stopped the sale."}`)
	require.Equal(t, 201, status, "%v", a)
	status, _ = s.call("GET", "/no/such/route", "", "")
	require.Equal(t, 404, status)

	req, err := http.NewRequest("GET", s.url+"/healthz", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-Id", "lb-7f3a")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "lb-7f3a", resp.Header.Get("X-Request-Id"), "a proxy's id is kept")
	req.Header.Set("X-Request-Id", "forged\" level=ERROR")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, resp.Header.Get("X-Request-Id"), 24, "an unusable id is replaced")

	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fams = scrape(t, s.url)
		// The integrator counts a batch once it has committed it, so the
		// log may show the entries a moment before the counter does.
		return sample(fams, "docket_audit_log_size") >= 6 && sample(fams, "docket_audit_staged_entries") == 0 &&
			sample(fams, "docket_audit_integrated_entries_total") >= 6
	}, 30*time.Second, 20*time.Millisecond, "the checkpoint never covered the tokens, policy, decision and appeal")
	require.Equal(t, 1.0, sample(fams, "docket_http_requests_total", "route", "GET /v1/policies/{code}", "method", "GET", "status", "200"))
	require.Equal(t, 1.0, sample(fams, "docket_http_requests_total", "route", "PUT /v1/policies/{code}", "status", "201"))
	require.Equal(t, 1.0, sample(fams, "docket_http_requests_total", "route", "unmatched", "status", "404"), "raw paths never become series")
	require.Equal(t, 1.0, sample(fams, "docket_http_request_duration_seconds", "route", "GET /v1/policies/{code}"))
	require.GreaterOrEqual(t, sample(fams, "docket_audit_checkpoint_age_seconds"), 0.0)
	require.Equal(t, 0.0, sample(fams, "docket_audit_oldest_staged_age_seconds"))
	require.Equal(t, 1.0, sample(fams, "docket_appeals_open", "state", "pending"))
	require.Equal(t, 0.0, sample(fams, "docket_appeals_open", "state", "in_review"))
	require.Equal(t, 1.0, sample(fams, "docket_appeals_overdue"))
	require.Equal(t, 0.0, sample(fams, "docket_state_scrape_error"))
	require.GreaterOrEqual(t, sample(fams, "go_sql_open_connections", "db_name", "docket"), 1.0)
	require.Equal(t, 0.0, sample(fams, "docket_audit_fork_detected"))
	require.Equal(t, 1.0, sample(fams, "docket_audit_integrator_leader"), "the one serve leads")
	require.GreaterOrEqual(t, sample(fams, "docket_audit_checkpoints_signed_total"), 1.0)
	require.Equal(t, 0.0, sample(fams, "docket_audit_signing_failures_total"))
	require.GreaterOrEqual(t, sample(fams, "docket_audit_integration_failures_total"), 0.0)

	var withID int
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.Contains(line, `"msg":"http"`) {
			require.Contains(t, line, `"request_id":"`, "an access log line without a request id: %s", line)
			withID++
		}
	}
	require.Positive(t, withID)
	require.Contains(t, s.log.String(), `"request_id":"lb-7f3a"`)
}
