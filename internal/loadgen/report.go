package loadgen

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// Report is one run's results; its JSON is meant for comparison across commits.
type Report struct {
	URL string `json:"url"`
	// ServerVersion is what GET /healthz reports, to tell commits apart.
	ServerVersion string     `json:"server_version,omitempty"`
	StartedAt     time.Time  `json:"started_at"`
	DurationS     float64    `json:"duration_s"`
	Clients       int        `json:"clients"`
	Mix           string     `json:"mix"`
	PolicyCode    string     `json:"policy_code"`
	Ops           []OpReport `json:"ops"`
	Integration   *LagReport `json:"integration_lag,omitempty"`
	// IntegrationExact cross-checks Integration with the leaf indices that
	// notifications carry; present only with NATS.
	IntegrationExact *LagReport      `json:"integration_lag_exact,omitempty"`
	Notification     *LagReport      `json:"notification_lag,omitempty"`
	Baseline         *BaselineReport `json:"baseline,omitempty"`
	// DecisionsVsRaw is the service's decisions/s over raw inserts/s.
	DecisionsVsRaw float64  `json:"decisions_vs_raw_inserts,omitempty"`
	Notes          []string `json:"notes,omitempty"`
}

// Latency is a distribution in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// OpReport is one kind of request.
type OpReport struct {
	Op       string  `json:"op"`
	Endpoint string  `json:"endpoint"`
	Requests int     `json:"requests"`
	PerSec   float64 `json:"per_s"`
	Latency
	// Status counts every answer by status; 0 is a transport error.
	Status map[string]int `json:"status"`
	// Errors counts the 4xx, 5xx and transport errors among them.
	Errors int `json:"errors"`
}

// LagReport is a lag distribution.
type LagReport struct {
	Method  string `json:"method"`
	Samples int    `json:"samples"`
	// Uncovered writes were never seen integrated (or notified) in time.
	Uncovered int `json:"uncovered"`
	Latency
}

// BaselineReport is the raw-INSERT yardstick.
type BaselineReport struct {
	Table        string  `json:"table"`
	Clients      int     `json:"clients"`
	DurationS    float64 `json:"duration_s"`
	PayloadBytes int     `json:"payload_bytes"`
	Inserts      int     `json:"inserts"`
	Errors       int     `json:"errors"`
	PerSec       float64 `json:"per_s"`
	Latency
}

// Op returns the row named op, if any.
func (r *Report) Op(op string) (OpReport, bool) {
	for _, o := range r.Ops {
		if o.Op == op {
			return o, true
		}
	}
	return OpReport{}, false
}

// SetBaseline attaches the yardstick and computes the ratio.
func (r *Report) SetBaseline(b *BaselineReport) {
	r.Baseline = b
	if d, ok := r.Op(rowDecision); ok && b.PerSec > 0 {
		r.DecisionsVsRaw = math.Round(d.PerSec/b.PerSec*1000) / 1000
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// distribution sorts lats in place.
func distribution(lats []time.Duration) Latency {
	if len(lats) == 0 {
		return Latency{}
	}
	slices.Sort(lats)
	q := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(lats)))) - 1
		return lats[max(0, min(i, len(lats)-1))]
	}
	return Latency{P50: ms(q(0.50)), P90: ms(q(0.90)), P99: ms(q(0.99)), Max: ms(lats[len(lats)-1])}
}

func summarizeOps(stats []*clientStats, elapsed time.Duration) []OpReport {
	var out []OpReport
	for _, row := range rowOrder {
		var lats []time.Duration
		status := map[string]int{}
		errs := 0
		for _, s := range stats {
			o := s.ops[row]
			if o == nil {
				continue
			}
			lats = append(lats, o.lat...)
			for code, n := range o.status {
				status[strconv.Itoa(code)] += n
				if code == 0 || code >= 400 {
					errs += n
				}
			}
		}
		if len(lats) == 0 {
			continue
		}
		out = append(out, OpReport{Op: row, Endpoint: rowEndpoint[row], Requests: len(lats),
			PerSec: math.Round(float64(len(lats))/elapsed.Seconds()*10) / 10, Latency: distribution(lats),
			Status: status, Errors: errs})
	}
	return out
}

func lagReport(lats []time.Duration, uncovered int, method string) *LagReport {
	return &LagReport{Method: method, Samples: len(lats), Uncovered: uncovered, Latency: distribution(lats)}
}

// WriteText prints the report as tables.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "docket bench: %s (version %s), %d clients, %.1fs, mix %s\n\n", r.URL, r.ServerVersion, r.Clients, r.DurationS, r.Mix)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tstatuses\t")
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t\n", o.Op, o.Requests, o.PerSec,
			o.P50, o.P90, o.P99, o.Max, o.Errors, statuses(o.Status))
	}
	if r.Baseline != nil {
		b := r.Baseline
		fmt.Fprintf(tw, "raw INSERT\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%s\t\n", b.Inserts, b.PerSec,
			b.P50, b.P90, b.P99, b.Max, b.Errors, "-")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	lag := func(name string, l *LagReport) {
		if l == nil {
			return
		}
		if l.Samples == 0 {
			fmt.Fprintf(w, "%s: none of %d writes seen\n  method: %s\n", name, l.Uncovered, l.Method)
			return
		}
		fmt.Fprintf(w, "%s: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms over %d writes", name, l.P50, l.P90, l.P99, l.Max, l.Samples)
		if l.Uncovered > 0 {
			fmt.Fprintf(w, " (%d not seen in time)", l.Uncovered)
		}
		fmt.Fprintf(w, "\n  method: %s\n", l.Method)
	}
	lag("audit integration lag (ack -> public checkpoint)", r.Integration)
	lag("audit integration lag, exact (decisions)", r.IntegrationExact)
	lag("notification lag (201 -> NATS)", r.Notification)
	if r.Baseline != nil {
		fmt.Fprintf(w, "decisions/s vs raw single-row INSERT/s at %d clients (%d-byte payload): %.1f%%\n",
			r.Baseline.Clients, r.Baseline.PayloadBytes, r.DecisionsVsRaw*100)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

func statuses(m map[string]int) string {
	return joinSorted(m, " ", func(k string, v int) string {
		if k == "0" {
			k = "transport"
		}
		return fmt.Sprintf("%s:%d", k, v)
	})
}
