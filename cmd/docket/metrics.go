package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// registerStateMetrics exposes what an operator alerts on that lives in
// the database: the integrator's backlog and checkpoint age, the appeal
// queue, and the connection pool. The figures are read at scrape time, so
// every replica reports the same and nothing is kept in step by hand.
func registerStateMetrics(reg prometheus.Registerer, db *sqlx.DB, store *appeals.Store, logger *slog.Logger) {
	reg.MustRegister(collectors.NewDBStatsCollector(db.DB, "docket"), &stateCollector{db: db, store: store, logger: logger})
}

var (
	descStaged = prometheus.NewDesc("docket_audit_staged_entries",
		"entries committed but not yet integrated into the log", nil, nil)
	descOldestStaged = prometheus.NewDesc("docket_audit_oldest_staged_age_seconds",
		"age of the oldest entry not yet integrated; 0 when none", nil, nil)
	descCheckpointAge = prometheus.NewDesc("docket_audit_checkpoint_age_seconds",
		"age of the latest signed checkpoint; -1 before the first", nil, nil)
	descLogSize = prometheus.NewDesc("docket_audit_log_size",
		"size of the latest signed checkpoint in the database; its rate is the integration rate", nil, nil)
	descQueue = prometheus.NewDesc("docket_appeals_open",
		"open appeals by state", []string{"state"}, nil)
	descOverdue = prometheus.NewDesc("docket_appeals_overdue",
		"open appeals past their due date", nil, nil)
	descScrapeErr = prometheus.NewDesc("docket_state_scrape_error",
		"1 when the last scrape could not read the database figures", nil, nil)
)

type stateCollector struct {
	db     *sqlx.DB
	store  *appeals.Store
	logger *slog.Logger
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStaged, descOldestStaged, descCheckpointAge, descLogSize, descQueue, descOverdue, descScrapeErr} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	// A slow database must not hang the scrape: the figures are skipped
	// and the error gauge says so.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := time.Now()
	failed := 0.0
	if b, err := audit.ReadBacklog(ctx, c.db); err != nil {
		failed = 1
		c.logger.Warn("metrics: audit backlog", slog.Any("err", err))
	} else {
		oldest, cpAge := 0.0, -1.0
		if !b.OldestStaged.IsZero() {
			oldest = max(0, now.Sub(b.OldestStaged).Seconds())
		}
		if !b.CheckpointAt.IsZero() {
			cpAge = max(0, now.Sub(b.CheckpointAt).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(descStaged, prometheus.GaugeValue, float64(b.Staged))
		ch <- prometheus.MustNewConstMetric(descOldestStaged, prometheus.GaugeValue, oldest)
		ch <- prometheus.MustNewConstMetric(descCheckpointAge, prometheus.GaugeValue, cpAge)
		ch <- prometheus.MustNewConstMetric(descLogSize, prometheus.GaugeValue, float64(b.CheckpointSize))
	}
	if q, err := c.store.QueueDepth(ctx, now); err != nil {
		failed = 1
		c.logger.Warn("metrics: queue depth", slog.Any("err", err))
	} else {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(q.Pending), string(appeals.AppealPending))
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(q.InReview), string(appeals.AppealInReview))
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(q.Escalated), string(appeals.AppealEscalated))
		ch <- prometheus.MustNewConstMetric(descOverdue, prometheus.GaugeValue, float64(q.Overdue))
	}
	ch <- prometheus.MustNewConstMetric(descScrapeErr, prometheus.GaugeValue, failed)
}
