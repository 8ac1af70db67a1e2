package appeals

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docket-dev/docket"
)

// Transparency figures (DSA Art. 15(1)(d) and 24(1)) for a period.
//
// Decisions count when they were taken in the period. Appeals are the
// cohort filed in the period, each counted in its state as of the report
// (so a report of a closed period is stable once its appeals are
// resolved). Times to resolve run from filing to resolution of the upheld
// and reversed ones; the reversal rate is reversed / (upheld + reversed);
// an appeal is overdue when it is still open past its due time at the
// report's as_of, and resolved late when it was resolved after it.
// Percentiles interpolate linearly between ranks (percentile_cont).

// Period bounds a report: From <= t < To. A zero From is the beginning; a
// zero To is the report's time.
type Period struct {
	From time.Time
	To   time.Time
}

// Figures are one scope's numbers: the whole platform or one policy.
type Figures struct {
	Decisions int64 `json:"decisions"`
	// ByAction counts decisions per action; every action is present.
	ByAction map[string]int64 `json:"decisions_by_action"`
	// ByAutomation counts decisions per automated_decision (none, partial, full).
	ByAutomation map[string]int64 `json:"decisions_by_automation"`
	// AutomatedDetection counts decisions on automatically detected content.
	AutomatedDetection int64 `json:"decisions_automated_detection"`
	// Notified counts decisions whose statement reached the advertiser.
	Notified int64 `json:"decisions_notified"`
	// MedianNoticeSeconds is the median time from decision to notice.
	MedianNoticeSeconds *float64 `json:"median_time_to_notice_seconds"`

	AppealsFiled int64 `json:"appeals_filed"`
	// Outcomes counts the filed appeals by state: pending, in_review,
	// escalated (the open ones), upheld, reversed, withdrawn.
	Outcomes map[string]int64 `json:"outcomes"`
	Open     int64            `json:"appeals_open"`
	// ReversalRate is reversed / (upheld + reversed); null when none was decided.
	ReversalRate         *float64 `json:"reversal_rate"`
	MedianResolveSeconds *float64 `json:"median_time_to_resolve_seconds"`
	P90ResolveSeconds    *float64 `json:"p90_time_to_resolve_seconds"`
	Overdue              int64    `json:"appeals_overdue"`
	ResolvedLate         int64    `json:"appeals_resolved_late"`
}

// PolicyFigures are the figures of decisions under one policy and their appeals.
type PolicyFigures struct {
	Policy string `json:"policy_code"`
	Figures
}

// AppealsReport is the answer of GET /v1/reports/appeals and `docket report`.
type AppealsReport struct {
	From     *time.Time      `json:"from"`
	To       time.Time       `json:"to"`
	AsOf     time.Time       `json:"as_of"`
	Overall  Figures         `json:"overall"`
	Policies []PolicyFigures `json:"policies"`
}

func newFigures() Figures {
	f := Figures{ByAction: map[string]int64{}, ByAutomation: map[string]int64{}, Outcomes: map[string]int64{}}
	for _, a := range docket.Strings(actions) {
		f.ByAction[a] = 0
	}
	for _, a := range docket.Strings(automatedDecisions) {
		f.ByAutomation[a] = 0
	}
	for _, s := range docket.Strings(appealStates) {
		f.Outcomes[s] = 0
	}
	return f
}

// AppealsReport computes the figures for p, overall and per policy.
func (s *Store) AppealsReport(ctx context.Context, by docket.Actor, p Period) (AppealsReport, error) {
	if by.Role != docket.RoleSystem && !by.Is(docket.Auditors...) {
		return AppealsReport{}, docket.Errorf(docket.Forbidden, "only auditors and admins read the transparency figures")
	}
	now := s.now()
	rep, from, err := reportPeriod(p, now)
	if err != nil {
		return AppealsReport{}, err
	}
	sc := newReportScopes(&rep)
	if err := s.reportDecisions(ctx, sc, from, rep.To); err != nil {
		return AppealsReport{}, err
	}
	if err := s.reportAppeals(ctx, sc, from, rep.To, now); err != nil {
		return AppealsReport{}, err
	}
	rep.Policies = []PolicyFigures{}
	for code, f := range sc.byPolicy {
		rep.Policies = append(rep.Policies, PolicyFigures{Policy: code, Figures: *f})
	}
	sort.Slice(rep.Policies, func(i, j int) bool { return rep.Policies[i].Policy < rep.Policies[j].Policy })
	return rep, nil
}

// reportPeriod is the report's period in UTC: from the beginning when
// From is zero, to now when To is.
func reportPeriod(p Period, now time.Time) (rep AppealsReport, from time.Time, err error) {
	rep = AppealsReport{To: p.To, AsOf: now}
	if p.To.IsZero() {
		rep.To = now
	}
	from = p.From
	if !from.IsZero() {
		from = from.UTC()
		rep.From = &from
	} else {
		from = time.Unix(0, 0).UTC()
	}
	rep.To = rep.To.UTC()
	if !rep.To.After(from) {
		return AppealsReport{}, from, &docket.Error{Code: docket.Invalid, Message: "the request has invalid fields",
			Fields: []docket.FieldError{{Field: "to", Message: "must be after from"}}}
	}
	rep.Overall = newFigures()
	return rep, from, nil
}

// reportScopes hands out the figures a row adds to: the overall ones
// (policy NULL, the grouping set's () row) or a policy's.
type reportScopes struct {
	overall  *Figures
	byPolicy map[string]*Figures
}

func newReportScopes(rep *AppealsReport) *reportScopes {
	return &reportScopes{overall: &rep.Overall, byPolicy: map[string]*Figures{}}
}

func (sc *reportScopes) of(policy *string) *Figures {
	if policy == nil {
		return sc.overall
	}
	f, ok := sc.byPolicy[*policy]
	if !ok {
		nf := newFigures()
		f = &nf
		sc.byPolicy[*policy] = f
	}
	return f
}

// reportDecisions adds the period's decisions: by action, automation and
// notice.
func (s *Store) reportDecisions(ctx context.Context, sc *reportScopes, from, to time.Time) error {
	// GROUPING SETS give the overall row (policy NULL) and one per policy
	// in one pass over the period's decisions.
	var drows []struct {
		Policy       *string  `db:"policy_code"`
		N            int64    `db:"n"`
		Ban          int64    `db:"ban"`
		Removal      int64    `db:"removal"`
		Restriction  int64    `db:"restriction"`
		AutoNone     int64    `db:"auto_none"`
		AutoPartial  int64    `db:"auto_partial"`
		AutoFull     int64    `db:"auto_full"`
		Detected     int64    `db:"detected"`
		Notified     int64    `db:"notified"`
		MedianNotice *float64 `db:"median_notice"`
	}
	err := s.db.SelectContext(ctx, &drows, `
		SELECT CASE WHEN grouping(policy_code) = 0 THEN policy_code END AS policy_code,
			count(*) AS n,
			count(*) FILTER (WHERE action = 'advertiser_ban') AS ban,
			count(*) FILTER (WHERE action = 'ad_removal') AS removal,
			count(*) FILTER (WHERE action = 'ad_restriction') AS restriction,
			count(*) FILTER (WHERE automated_decision = 'none') AS auto_none,
			count(*) FILTER (WHERE automated_decision = 'partial') AS auto_partial,
			count(*) FILTER (WHERE automated_decision = 'full') AS auto_full,
			count(*) FILTER (WHERE automated_detection) AS detected,
			count(notified_at) AS notified,
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM notified_at - decided_at)) AS median_notice
		FROM decisions
		WHERE decided_at >= $1 AND decided_at < $2
		GROUP BY GROUPING SETS ((), (policy_code))`, from, to)
	if err != nil {
		return fmt.Errorf("appeals: report decisions: %w", err)
	}
	for _, r := range drows {
		f := sc.of(r.Policy)
		f.Decisions, f.AutomatedDetection, f.Notified, f.MedianNoticeSeconds = r.N, r.Detected, r.Notified, r.MedianNotice
		f.ByAction[string(ActionAdvertiserBan)] = r.Ban
		f.ByAction[string(ActionAdRemoval)] = r.Removal
		f.ByAction[string(ActionAdRestriction)] = r.Restriction
		f.ByAutomation[string(AutomatedNone)] = r.AutoNone
		f.ByAutomation[string(AutomatedPartial)] = r.AutoPartial
		f.ByAutomation[string(AutomatedFull)] = r.AutoFull
	}

	return nil
}

// reportAppeals adds the appeals filed in the period: by state, overdue,
// late, time to resolve and reversal rate.
func (s *Store) reportAppeals(ctx context.Context, sc *reportScopes, from, to, now time.Time) error {
	var arows []struct {
		Policy        *string  `db:"policy_code"`
		N             int64    `db:"n"`
		Pending       int64    `db:"pending"`
		InReview      int64    `db:"in_review"`
		Escalated     int64    `db:"escalated"`
		Upheld        int64    `db:"upheld"`
		Reversed      int64    `db:"reversed"`
		Withdrawn     int64    `db:"withdrawn"`
		Overdue       int64    `db:"overdue"`
		Late          int64    `db:"late"`
		MedianResolve *float64 `db:"median_resolve"`
		P90Resolve    *float64 `db:"p90_resolve"`
	}
	err := s.db.SelectContext(ctx, &arows, `
		SELECT CASE WHEN grouping(d.policy_code) = 0 THEN d.policy_code END AS policy_code,
			count(*) AS n,
			count(*) FILTER (WHERE a.state = `+sqlList(AppealPending)+`) AS pending,
			count(*) FILTER (WHERE a.state = `+sqlList(AppealInReview)+`) AS in_review,
			count(*) FILTER (WHERE a.state = `+sqlList(AppealEscalated)+`) AS escalated,
			count(*) FILTER (WHERE a.state = `+sqlList(AppealUpheld)+`) AS upheld,
			count(*) FILTER (WHERE a.state = `+sqlList(AppealReversed)+`) AS reversed,
			count(*) FILTER (WHERE a.state = `+sqlList(AppealWithdrawn)+`) AS withdrawn,
			count(*) FILTER (WHERE a.state IN (`+openStatesSQL+`) AND a.due_at < $3) AS overdue,
			count(*) FILTER (WHERE a.state IN (`+resolvedStatesSQL+`) AND a.resolved_at > a.due_at) AS late,
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.resolved_at - a.filed_at))
				FILTER (WHERE a.state IN (`+resolvedStatesSQL+`)) AS median_resolve,
			percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM a.resolved_at - a.filed_at))
				FILTER (WHERE a.state IN (`+resolvedStatesSQL+`)) AS p90_resolve
		FROM appeals a JOIN decisions d ON d.id = a.decision_id
		WHERE a.filed_at >= $1 AND a.filed_at < $2
		GROUP BY GROUPING SETS ((), (d.policy_code))`, from, to, now)
	if err != nil {
		return fmt.Errorf("appeals: report appeals: %w", err)
	}
	for _, r := range arows {
		f := sc.of(r.Policy)
		f.AppealsFiled, f.Overdue, f.ResolvedLate = r.N, r.Overdue, r.Late
		f.Outcomes[string(AppealPending)] = r.Pending
		f.Outcomes[string(AppealInReview)] = r.InReview
		f.Outcomes[string(AppealEscalated)] = r.Escalated
		f.Outcomes[string(AppealUpheld)] = r.Upheld
		f.Outcomes[string(AppealReversed)] = r.Reversed
		f.Outcomes[string(AppealWithdrawn)] = r.Withdrawn
		f.Open = r.Pending + r.InReview + r.Escalated
		f.MedianResolveSeconds, f.P90ResolveSeconds = r.MedianResolve, r.P90Resolve
		if decided := r.Upheld + r.Reversed; decided > 0 {
			rate := float64(r.Reversed) / float64(decided)
			f.ReversalRate = &rate
		}
	}

	return nil
}

// reportColumns are the CSV columns and the table's rows, with how to read each.
func reportColumns() []struct {
	name string
	get  func(f *Figures) string
} {
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	opt := func(v *float64, format func(float64) string) string {
		if v == nil {
			return ""
		}
		return format(*v)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	return []struct {
		name string
		get  func(f *Figures) string
	}{
		{"decisions", func(f *Figures) string { return n(f.Decisions) }},
		{"advertiser_ban", func(f *Figures) string { return n(f.ByAction[string(ActionAdvertiserBan)]) }},
		{"ad_removal", func(f *Figures) string { return n(f.ByAction[string(ActionAdRemoval)]) }},
		{"ad_restriction", func(f *Figures) string { return n(f.ByAction[string(ActionAdRestriction)]) }},
		{"automated_decision_none", func(f *Figures) string { return n(f.ByAutomation[string(AutomatedNone)]) }},
		{"automated_decision_partial", func(f *Figures) string { return n(f.ByAutomation[string(AutomatedPartial)]) }},
		{"automated_decision_full", func(f *Figures) string { return n(f.ByAutomation[string(AutomatedFull)]) }},
		{"automated_detection", func(f *Figures) string { return n(f.AutomatedDetection) }},
		{"notified", func(f *Figures) string { return n(f.Notified) }},
		{"median_time_to_notice_seconds", func(f *Figures) string { return opt(f.MedianNoticeSeconds, num) }},
		{"appeals_filed", func(f *Figures) string { return n(f.AppealsFiled) }},
		{"appeals_open", func(f *Figures) string { return n(f.Open) }},
		{"upheld", func(f *Figures) string { return n(f.Outcomes[string(AppealUpheld)]) }},
		{"reversed", func(f *Figures) string { return n(f.Outcomes[string(AppealReversed)]) }},
		{"withdrawn", func(f *Figures) string { return n(f.Outcomes[string(AppealWithdrawn)]) }},
		{"reversal_rate", func(f *Figures) string { return opt(f.ReversalRate, num) }},
		{"median_time_to_resolve_seconds", func(f *Figures) string { return opt(f.MedianResolveSeconds, num) }},
		{"p90_time_to_resolve_seconds", func(f *Figures) string { return opt(f.P90ResolveSeconds, num) }},
		{"appeals_overdue", func(f *Figures) string { return n(f.Overdue) }},
		{"appeals_resolved_late", func(f *Figures) string { return n(f.ResolvedLate) }},
	}
}

// WriteCSV writes one row per scope ("" for overall, then each policy).
func (r AppealsReport) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cols := reportColumns()
	head := []string{"policy_code"}
	for _, c := range cols {
		head = append(head, c.name)
	}
	_ = cw.Write(head)
	row := func(policy string, f *Figures) {
		rec := []string{policy}
		for _, c := range cols {
			rec = append(rec, c.get(f))
		}
		_ = cw.Write(rec)
	}
	row("", &r.Overall)
	for i := range r.Policies {
		row(r.Policies[i].Policy, &r.Policies[i].Figures)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("appeals: report csv: %w", err)
	}
	return nil
}

// WriteTable writes the figures as tab-separated columns (one per scope)
// for a tabwriter, with durations in human units.
func (r AppealsReport) WriteTable(w io.Writer) error {
	from := "the beginning"
	if r.From != nil {
		from = r.From.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Transparency figures from %s to %s (as of %s)\t\n\n", from, r.To.Format(time.RFC3339), r.AsOf.Format(time.RFC3339))
	scopes := []*Figures{&r.Overall}
	line := "\tall"
	for i := range r.Policies {
		scopes = append(scopes, &r.Policies[i].Figures)
		line += "\t" + r.Policies[i].Policy
	}
	fmt.Fprintln(w, line+"\t")
	for _, c := range reportColumns() {
		line := c.name
		for _, f := range scopes {
			v := c.get(f)
			if x, err := strconv.ParseFloat(v, 64); err == nil && strings.HasSuffix(c.name, "seconds") {
				v = humanSeconds(x)
			} else if c.name == "reversal_rate" && v != "" {
				v = fmt.Sprintf("%.1f%%", x*100)
			} else if v == "" {
				v = "-"
			}
			line += "\t" + v
		}
		if _, err := fmt.Fprintln(w, line+"\t"); err != nil {
			return fmt.Errorf("appeals: report table: %w", err)
		}
	}
	return nil
}

func humanSeconds(s float64) string {
	d := time.Duration(math.Round(s)) * time.Second
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
	return d.String()
}
