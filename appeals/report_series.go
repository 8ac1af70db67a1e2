package appeals

import (
	"context"
	"fmt"
	"time"

	"github.com/docket-dev/docket"
)

// ReportSeries are the figures behind the auditors' charts for a period,
// under the same rules as AppealsReport: appeals filed in the period,
// decisions taken in it, resolved meaning upheld or reversed.
type ReportSeries struct {
	// Weeks are the ISO weeks (from Monday, UTC) with appeals filed or
	// resolved in the period, oldest first.
	Weeks []WeekCounts `json:"weeks"`
	// Resolve buckets the times from filing to resolution.
	Resolve []Bucket `json:"time_to_resolve"`
	// Notice is the median time from decision to notice per advertiser,
	// for the advertisers with the most decisions (at most MaxSeriesAdvertisers).
	Notice []AdvertiserNotice `json:"time_to_notice"`
}

// WeekCounts counts the appeals filed and resolved in one week.
type WeekCounts struct {
	Week     time.Time `json:"week" db:"week"`
	Filed    int64     `json:"filed" db:"filed"`
	Resolved int64     `json:"resolved" db:"resolved"`
}

// Bucket is one bar of a distribution: Label names the range.
type Bucket struct {
	Label string `json:"label"`
	N     int64  `json:"n"`
}

// AdvertiserNotice is one advertiser's median time to notice.
type AdvertiserNotice struct {
	AdvertiserID  string  `json:"advertiser_id" db:"advertiser_id"`
	Decisions     int64   `json:"decisions" db:"decisions"`
	MedianSeconds float64 `json:"median_seconds" db:"median_seconds"`
}

// MaxSeriesAdvertisers bounds ReportSeries.Notice.
const MaxSeriesAdvertisers = 20

// resolveBuckets are the distribution's upper bounds in seconds (the last
// is open).
var resolveBuckets = []struct {
	label string
	upTo  float64
}{
	{"under 1 hour", 3600}, {"1 to 6 hours", 6 * 3600}, {"6 to 24 hours", 24 * 3600},
	{"1 to 3 days", 3 * 86400}, {"3 to 7 days", 7 * 86400}, {"over 7 days", 0},
}

// ReportSeries reads the chart figures for p; auditors and admins only.
func (s *Store) ReportSeries(ctx context.Context, by docket.Actor, p Period) (ReportSeries, error) {
	if by.Role != docket.RoleSystem && !by.Is(docket.Auditors...) {
		return ReportSeries{}, docket.Errorf(docket.Forbidden, "only auditors and admins read the transparency figures")
	}
	from, to := p.From.UTC(), p.To.UTC()
	if p.From.IsZero() {
		from = time.Unix(0, 0).UTC()
	}
	if p.To.IsZero() {
		to = s.now().UTC()
	}
	if !to.After(from) {
		return ReportSeries{}, &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
			Fields: []docket.FieldError{{Field: "to", Message: "must be after from"}}}
	}
	var out ReportSeries
	if err := s.db.SelectContext(ctx, &out.Weeks, `
		WITH f AS (SELECT date_trunc('week', filed_at AT TIME ZONE 'UTC') AS week, count(*) AS n FROM appeals
				WHERE filed_at >= $1 AND filed_at < $2 GROUP BY 1),
			r AS (SELECT date_trunc('week', resolved_at AT TIME ZONE 'UTC') AS week, count(*) AS n FROM appeals
				WHERE filed_at >= $1 AND filed_at < $2 AND state IN (`+resolvedStatesSQL+`) GROUP BY 1)
		SELECT coalesce(f.week, r.week) AS week, coalesce(f.n, 0) AS filed, coalesce(r.n, 0) AS resolved
		FROM f FULL JOIN r ON f.week = r.week ORDER BY 1`, from, to); err != nil {
		return ReportSeries{}, fmt.Errorf("appeals: report weeks: %w", err)
	}
	for i := range out.Weeks {
		out.Weeks[i].Week = out.Weeks[i].Week.UTC()
	}
	var secs []float64
	if err := s.db.SelectContext(ctx, &secs, `SELECT extract(epoch FROM resolved_at - filed_at)::float8 FROM appeals
		WHERE filed_at >= $1 AND filed_at < $2 AND state IN (`+resolvedStatesSQL+`)`, from, to); err != nil {
		return ReportSeries{}, fmt.Errorf("appeals: report resolve times: %w", err)
	}
	out.Resolve = make([]Bucket, len(resolveBuckets))
	for i, b := range resolveBuckets {
		out.Resolve[i].Label = b.label
	}
	for _, v := range secs {
		i := 0
		for i < len(resolveBuckets)-1 && v >= resolveBuckets[i].upTo {
			i++
		}
		out.Resolve[i].N++
	}
	if err := s.db.SelectContext(ctx, &out.Notice, `
		SELECT advertiser_id, count(*) AS decisions,
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM notified_at - decided_at)) AS median_seconds
		FROM decisions WHERE decided_at >= $1 AND decided_at < $2 AND notified_at IS NOT NULL
		GROUP BY advertiser_id ORDER BY count(*) DESC, advertiser_id LIMIT $3`, from, to, MaxSeriesAdvertisers); err != nil {
		return ReportSeries{}, fmt.Errorf("appeals: report notice times: %w", err)
	}
	return out, nil
}
