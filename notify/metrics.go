package notify

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	published   prometheus.Counter
	duplicates  prometheus.Counter
	foreign     prometheus.Counter
	errors      prometheus.Counter
	leader      prometheus.Gauge
	commitToAck prometheus.Histogram
}

// newMetrics registers the relay's metrics on reg (none when reg is nil).
// Lag gauges read Status at scrape time so they are never stale.
func newMetrics(reg *prometheus.Registry, status func() Status) (*metrics, error) {
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "docket_notify_published_total", Help: "Audit entries acknowledged by JetStream.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "docket_notify_duplicates_total", Help: "Acknowledged re-sends that JetStream dropped as duplicates.",
		}),
		foreign: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "docket_notify_foreign_messages_total", Help: "Messages found in the stream that the relay did not publish (a NATS that lets others publish to docket.>).",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "docket_notify_publish_errors_total", Help: "Failed publish windows and failed reconnections of the relay.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "docket_notify_relay_leader", Help: "1 while this process is the active relay.",
		}),
		commitToAck: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "docket_notify_commit_to_ack_seconds",
			Help:    "From an entry's staging (its writer's transaction) to JetStream's ack.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	lagEntries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "docket_notify_lag_entries", Help: "Integrated entries not yet acknowledged by JetStream.",
	}, func() float64 { return float64(status().LagEntries) })
	lagSeconds := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "docket_notify_lag_seconds", Help: "Age of the oldest entry not yet acknowledged by JetStream; 0 when caught up.",
	}, func() float64 { return status().LagSeconds })
	var errs []error
	for _, c := range []prometheus.Collector{m.published, m.duplicates, m.foreign, m.errors, m.leader, m.commitToAck, lagEntries, lagSeconds} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notify: register metrics: %w", err)
	}
	return m, nil
}
