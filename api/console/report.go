package console

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/appeals/dsa"
	"github.com/docket-dev/docket/audit"
)

// Charts are drawn on the server as SVG: a chart is rows of horizontal
// bars, its geometry computed here and its markup written by the
// template (so every label is escaped). There is no script.

const (
	chartWidth  = 640.0
	chartLabelW = 170.0 // the rows' labels, left of the bars
	chartBarsW  = 380.0 // the longest bar; its value is written after it
	chartBarH   = 14.0
	chartGap    = 8.0
)

type chartBar struct {
	X, Y, W, H float64
	// TX, TY place the value's text.
	TX, TY float64
	Value  string
	Class  string
}

type chartRow struct {
	Label  string
	LabelY float64
	Bars   []chartBar
}

type chart struct {
	ID, Title, Desc string
	// Series names each bar of a row, with its CSS class (legend).
	Series []chartSeries
	Rows   []chartRow
	Width  float64
	Height float64
	LabelX float64
}

type chartSeries struct{ Name, Class string }

// barChart lays out rows of one or more series; values[i][j] is row i's
// bar of series j and format writes it.
func barChart(id, title, desc string, series []chartSeries, labels []string, values [][]float64, format func(float64) string) chart {
	c := chart{ID: id, Title: title, Desc: desc, Series: series, Width: chartWidth, LabelX: chartLabelW - 8}
	top := 0.0
	for _, row := range values {
		for _, v := range row {
			top = math.Max(top, v)
		}
	}
	y := chartGap
	for i, label := range labels {
		r := chartRow{Label: label, LabelY: y + float64(len(series))*chartBarH/2 + 4}
		for j, v := range values[i] {
			w := 0.0
			if top > 0 {
				w = math.Round(v/top*chartBarsW*10) / 10
			}
			r.Bars = append(r.Bars, chartBar{X: chartLabelW, Y: y, W: w, H: chartBarH - 2,
				TX: chartLabelW + w + 6, TY: y + chartBarH - 4, Value: format(v), Class: series[j].Class})
			y += chartBarH
		}
		c.Rows = append(c.Rows, r)
		y += chartGap
	}
	c.Height = y
	return c
}

func humanDuration(s float64) string {
	d := time.Duration(math.Round(s)) * time.Second
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%.1f hours", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.0f minutes", d.Minutes())
	}
	return d.String()
}

func count(v float64) string { return strconv.FormatInt(int64(v), 10) }

type reportView struct {
	Report     appeals.AppealsReport
	Charts     []chart
	From, To   string
	ExportsQry string
}

// period reads ?from= and ?to= as dates (YYYY-MM-DD, UTC) or RFC 3339 times.
func period(r *http.Request) (appeals.Period, error) {
	var p appeals.Period
	for name, t := range map[string]*time.Time{"from": &p.From, "to": &p.To} {
		v := r.URL.Query().Get(name)
		if v == "" {
			continue
		}
		var err error
		if *t, err = time.Parse("2006-01-02", v); err != nil {
			if *t, err = time.Parse(time.RFC3339, v); err != nil {
				return p, docket.Errorf(docket.Invalid, "%s must be a date YYYY-MM-DD or an RFC 3339 time", name)
			}
		}
	}
	return p, nil
}

// auditReport shows the transparency figures (AppealsReport, the API's
// GET /v1/reports/appeals) and the charts (ReportSeries) for a period,
// with the export links.
func (c *Console) auditReport(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	p, err := period(r)
	if err != nil {
		return err
	}
	rep, err := c.store.AppealsReport(r.Context(), s.Actor, p)
	if err != nil {
		return err
	}
	series, err := c.store.ReportSeries(r.Context(), s.Actor, p)
	if err != nil {
		return err
	}
	v := reportView{Report: rep, From: r.URL.Query().Get("from"), To: r.URL.Query().Get("to"), ExportsQry: r.URL.RawQuery}
	filed, resolved := chartSeries{"Filed", "s1"}, chartSeries{"Resolved", "s2"}
	var labels []string
	var values [][]float64
	for _, wk := range series.Weeks {
		labels = append(labels, "Week of "+wk.Week.Format("2 Jan 2006"))
		values = append(values, []float64{float64(wk.Filed), float64(wk.Resolved)})
	}
	v.Charts = append(v.Charts, barChart("chart-weeks", "Appeals filed and resolved per week",
		"Of the appeals filed in the period: how many were filed, and how many resolved (upheld or reversed), each week.",
		[]chartSeries{filed, resolved}, labels, values, count))
	labels, values = nil, nil
	for _, pf := range rep.Policies {
		if pf.ReversalRate != nil {
			labels = append(labels, pf.Policy)
			values = append(values, []float64{*pf.ReversalRate * 100})
		}
	}
	v.Charts = append(v.Charts, barChart("chart-reversal", "Reversal rate per policy",
		"Reversed appeals as a share of those decided (upheld or reversed), per policy.",
		[]chartSeries{{"Reversal rate", "s1"}}, labels, values, func(f float64) string { return fmt.Sprintf("%.1f%%", f) }))
	labels, values = nil, nil
	for _, b := range series.Resolve {
		labels = append(labels, b.Label)
		values = append(values, []float64{float64(b.N)})
	}
	v.Charts = append(v.Charts, barChart("chart-resolve", "Time to resolve",
		"How many appeals were resolved within each range of time from filing.",
		[]chartSeries{{"Appeals", "s2"}}, labels, values, count))
	labels, values = nil, nil
	for _, n := range series.Notice {
		labels = append(labels, n.AdvertiserID)
		values = append(values, []float64{n.MedianSeconds})
	}
	v.Charts = append(v.Charts, barChart("chart-notice", "Time from decision to notice, per advertiser",
		fmt.Sprintf("The median time from a decision to its notice reaching the advertiser, for the %d advertisers with the most decisions.", appeals.MaxSeriesAdvertisers),
		[]chartSeries{{"Median time", "s1"}}, labels, values, humanDuration))
	c.render(w, r, http.StatusOK, "report", view{Session: s, Title: "Transparency figures", Data: v})
	return nil
}

// exportWait is how long a download's reader may take over each 64 KiB:
// the server's write timeout then bounds a reader that stalls, not the
// length of an export (as the API's streamWriter does).
const exportWait = time.Minute

// writeTracker writes a reply's body, notes whether it has begun (after
// that an error can only cut the connection) and moves the write deadline
// on before each write.
type writeTracker struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (t *writeTracker) Write(p []byte) (int, error) {
	t.wrote = true
	_ = t.rc.SetWriteDeadline(time.Now().Add(exportWait))
	return t.w.Write(p)
}

// export serves the auditors' downloads with the session (the API's
// export routes take bearer tokens, which a browser session does not
// hold), by the same functions the API's handlers call:
//
//	audit.jsonl, audit.csv  the log's entries (audit.Export), as GET /v1/exports/audit
//	dsa.jsonl               statements of reasons (Store.ExportDSA), as GET /v1/exports/dsa
//	report.json, report.csv the figures (Store.AppealsReport), as GET /v1/reports/appeals
//	bundle.json             a verifiable bundle: the signed checkpoint, the verifier key,
//	                        and every entry it covers with its leaf hash
func (c *Console) export(w http.ResponseWriter, r *http.Request, s *appeals.Session) error {
	file := r.PathValue("file")
	p, err := period(r)
	if err != nil {
		return err
	}
	h := w.Header()
	attach := func(ctype string) {
		h.Set("Content-Type", ctype)
		h.Set("Content-Disposition", `attachment; filename="docket-`+file+`"`)
	}
	tracker := &writeTracker{w: w, rc: http.NewResponseController(w)}
	out := bufio.NewWriterSize(tracker, 64<<10)
	fail := func(err error) error {
		if err != nil && tracker.wrote {
			c.logger.ErrorContext(r.Context(), "console: export broke off", "file", file, "error", err)
			panic(http.ErrAbortHandler)
		}
		h.Del("Content-Disposition")
		return err
	}
	err = c.writeExport(r, s, file, p, out, attach)
	if err == nil {
		err = out.Flush()
	}
	return fail(err)
}

// writeExport writes the export file for the period to out, calling
// attach with its content type before its first byte.
func (c *Console) writeExport(r *http.Request, s *appeals.Session, file string, p appeals.Period, out io.Writer,
	attach func(ctype string)) error {
	switch file {
	case "audit.jsonl", "audit.csv":
		format := audit.JSONL
		ctype := "application/x-ndjson"
		if file == "audit.csv" {
			format, ctype = audit.CSV, "text/csv; charset=utf-8"
		}
		f := audit.ExportFilter{From: p.From, To: p.To}
		attach(ctype)
		enc := audit.NewWriter(out, format)
		if err := audit.Export(r.Context(), c.store.DB(), f, -1, enc.Columns(), enc.Write); err != nil {
			return err
		}
		return enc.Flush()
	case "dsa.jsonl":
		attach("application/x-ndjson")
		enc := json.NewEncoder(out)
		_, err := c.store.ExportDSA(r.Context(), s.Actor, p.From, p.To, func(st *dsa.Statement) error { return enc.Encode(st) })
		return err
	case "report.json", "report.csv":
		rep, err := c.store.AppealsReport(r.Context(), s.Actor, p)
		if err != nil {
			return err
		}
		if file == "report.csv" {
			attach("text/csv; charset=utf-8")
			return rep.WriteCSV(out)
		}
		attach("application/json")
		return json.NewEncoder(out).Encode(rep)
	case "bundle.json":
		return c.bundle(r, out, attach)
	}
	return docket.Errorf(docket.NotFound, "there is no export %q", file)
}

// bundleEntry is one leaf of the bundle.
type bundleEntry struct {
	Index    int64  `json:"index"`
	LeafHash []byte `json:"leaf_hash"`
	// Data is the entry's exact bytes (standard base64): the leaf hash is
	// SHA-256(0x00 || Data).
	Data []byte `json:"data"`
}

// bundle writes the latest signed checkpoint, the key that verifies its
// note and the entries it covers: enough to recompute the root offline
// (RFC 6962) and check the signature, without trusting this server.
func (c *Console) bundle(r *http.Request, w io.Writer, attach func(string)) error {
	l, err := c.auditLog()
	if err != nil {
		return err
	}
	cp, err := l.LatestCheckpoint(r.Context())
	if errors.Is(err, audit.ErrNotFound) {
		return docket.Errorf(docket.NotFound, "no checkpoint has been signed yet")
	}
	if err != nil {
		return err
	}
	attach("application/json")
	head, _ := json.Marshal(struct {
		Origin      string `json:"origin"`
		VerifierKey string `json:"verifier_key"`
		Checkpoint  string `json:"checkpoint"`
		Size        uint64 `json:"size"`
	}{l.Origin(), l.VerifierKey(), string(cp.Note), cp.Size})
	if _, err := fmt.Fprintf(w, "%s,\"entries\":[", head[:len(head)-1]); err != nil {
		return err
	}
	for start := uint64(0); start < cp.Size; {
		leaves, err := l.Entries(r.Context(), start, int(min(1000, cp.Size-start)))
		if err != nil {
			return err
		}
		if len(leaves) == 0 {
			return fmt.Errorf("console: bundle: no entries from %d below the checkpoint's size %d", start, cp.Size)
		}
		for _, lf := range leaves {
			b, err := json.Marshal(bundleEntry{Index: lf.Index, LeafHash: lf.LeafHash, Data: lf.Data})
			if err != nil {
				return err
			}
			if start > 0 || lf.Index > 0 {
				b = append([]byte{','}, b...)
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		start += uint64(len(leaves))
	}
	_, err = io.WriteString(w, "]}\n")
	return err
}
