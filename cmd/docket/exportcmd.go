package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/term"

	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// isTerminal reports whether w is a terminal, the only place a redrawn
// progress bar makes sense: a file or a pipe gets none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a bar on stderr (schollz/progressbar) when show is set, else
// nothing. total < 0 is unknown: a spinner with the count and rate.
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(w io.Writer, show bool, what string, total int64) *progress {
	if !show {
		return &progress{}
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(200 * time.Millisecond),
		progressbar.OptionSetPredictTime(total > 0),
		progressbar.OptionFullWidth(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	}
	if what == "bytes" {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(what))
	}
	if total <= 0 {
		total = -1
	}
	return &progress{bar: progressbar.NewOptions64(total, opts...)}
}

func (p *progress) update(n int64) {
	if p.bar != nil {
		_ = p.bar.Set64(n)
	}
}

// writer counts bytes written through it on the bar.
func (p *progress) writer(w io.Writer) io.Writer {
	if p.bar == nil {
		return w
	}
	return io.MultiWriter(w, p.bar)
}

func (p *progress) done(n int64) {
	if p.bar == nil {
		return
	}
	_ = p.bar.Set64(n)
	_ = p.bar.Finish()
}

// indexOrTime parses an export bound: digits are a leaf index, anything
// else an RFC 3339 time or a date.
func indexOrTime(name, v string) (*int64, time.Time, error) {
	if v == "" {
		return nil, time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return &n, time.Time{}, nil
	}
	t, err := parseCLITime(v)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("--%s: want a leaf index (0, 1, ...), a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z), got %q", name, v)
	}
	return nil, t, nil
}

func parseCLITime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02", v)
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

const exportUsage = `Usage: docket export [flags]

Writes audit entries in index order, as JSON lines (index, leaf_hash, type,
entry) or CSV, to --output or standard output. With --bundle FILE it writes
instead a bundle that 'docket verify --bundle FILE --key KEY' checks
offline: the signed checkpoint, the entries' exact bytes and, for a slice,
an inclusion proof per entry. --from and --to take a leaf index (from
included, to excluded) or an RFC 3339 time of the entries' own "time".

With --url it asks a running Docket instead (GET /v1/exports/audit or
/v1/exports/bundle) with an auditor's or admin's token (--token, or
DOCKET_TOKEN): no database and no private key are needed. Without --url
it reads the database, and a bundle needs the log's signer key file
(DOCKET_SIGNER_KEY_FILE or DOCKET_DATA_DIR) to open the log.

A progress bar is drawn on standard error when it is a terminal.

Flags:
`

func cmdExport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("export", e, exportUsage)
	o := exportFlags(fs, e)
	if err := noArgs(fs, "export", args); err != nil {
		return err
	}
	f, err := exportFilter(o.from, o.to, o.types, o.advertiser, o.policy)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	enc, err := audit.ParseFormat(o.format)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	show := !o.quiet && isTerminal(e.stderr)
	if o.remote != "" {
		tok := o.token
		if tok == "" {
			tok = e.getenv("DOCKET_TOKEN")
		}
		return exportRemote(ctx, e, o.remote, tok, f, enc, o.output, o.bundle, show)
	}
	return exportLocal(ctx, e, o, f, enc, show)
}

// exportOptions is the flags of `docket export`.
type exportOptions struct {
	dsn, from, to, advertiser, policy, format, output, bundle, remote, token string
	types                                                                    listFlag
	quiet                                                                    bool
}

func exportFlags(fs *flag.FlagSet, e *env) *exportOptions {
	o := &exportOptions{}
	databaseVar(fs, &o.dsn, e)
	fs.StringVar(&o.from, "from", "", "first leaf index, or earliest entry time: a date (2026-01-31) or RFC 3339 (2026-01-31T12:00:00Z)")
	fs.StringVar(&o.to, "to", "", "leaf index to stop before, or entry time to stop before: a date or RFC 3339")
	fs.Var(&o.types, "type", "entry type to keep (repeat or comma-separate)")
	fs.StringVar(&o.advertiser, "advertiser", "", "keep entries about this advertiser_id")
	fs.StringVar(&o.policy, "policy", "", "keep entries about this policy code")
	fs.StringVar(&o.format, "format", "jsonl", "jsonl or csv")
	fs.StringVar(&o.output, "output", "", "file to write (default: standard output)")
	fs.StringVar(&o.bundle, "bundle", "", "write a verifiable bundle to this file instead")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.StringVar(&o.remote, "url", "", "a running Docket to export from over its API (no database, no key file)")
	fs.StringVar(&o.token, "token", "", "with --url: an auditor's or admin's token (default: DOCKET_TOKEN)")
	return o
}

// exportLocal exports from the database to --output, or the bundle to
// --bundle; a file cut short by a failure is removed.
func exportLocal(ctx context.Context, e *env, o *exportOptions, f audit.ExportFilter, enc audit.Format, show bool) (err error) {
	db, err := openMigrated(ctx, o.dsn)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer db.Close()

	path := o.output
	if o.bundle != "" {
		path = o.bundle
	}
	out, err := createOutput(e.stdout, path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() { _ = out.finish(err != nil) }()

	if o.bundle != "" {
		err = exportBundle(ctx, e, db, out, f, show)
	} else {
		err = exportEntries(ctx, e, db, out, f, enc, show)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// exportFilter reads the export's flags into a filter.
func exportFilter(from, to string, types []string, advertiser, policy string) (audit.ExportFilter, error) {
	var f audit.ExportFilter
	fromIdx, fromAt, err := indexOrTime("from", from)
	if err != nil {
		return f, err
	}
	toIdx, toAt, err := indexOrTime("to", to)
	if err != nil {
		return f, err
	}
	if fromIdx != nil {
		f.FromIndex = *fromIdx
	}
	f.ToIndex, f.From, f.To, f.Types = toIdx, fromAt, toAt, types
	// The log indexes entries by the keys the domain gave them.
	f.Keys = appeals.AuditKeys(advertiser, policy)
	return f, nil
}

// exportBundle writes a verifiable bundle of f's entries against the
// latest checkpoint, counting them first for the progress bar.
func exportBundle(ctx context.Context, e *env, db *sqlx.DB, out *output, f audit.ExportFilter, show bool) error {
	src, err := bundleSource(ctx, e, db)
	if err != nil {
		return err
	}
	total := int64(-1)
	if show {
		size, err := checkpointSize(src.Checkpoint)
		if err != nil {
			return err
		}
		if total, err = audit.CountExport(ctx, db, f, size); err != nil {
			return err
		}
	}
	bar := newProgress(e.stderr, show, "entries", total)
	stats, err := audit.WriteBundle(ctx, db, out, f, f.String(), src, bar.update)
	if err != nil {
		return err
	}
	bar.done(stats.Entries)
	if err := out.finish(false); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote a %s bundle of %d entries against the checkpoint of size %d\n", stats.Mode, stats.Entries, stats.Size)
	return nil
}

// exportEntries writes f's entries as JSON lines or CSV.
func exportEntries(ctx context.Context, e *env, db *sqlx.DB, out *output, f audit.ExportFilter, enc audit.Format, show bool) error {
	total := int64(-1)
	if show {
		var err error
		if total, err = audit.CountExport(ctx, db, f, -1); err != nil {
			return err
		}
	}
	bar := newProgress(e.stderr, show, "entries", total)
	bw := bufio.NewWriterSize(out, 256<<10)
	w := audit.NewWriter(bw, enc)
	var n int64
	err := audit.Export(ctx, db, f, -1, w.Columns(), func(r *audit.Row) error {
		n++
		bar.update(n)
		return w.Write(r)
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = out.finish(false)
	}
	if err != nil {
		return err
	}
	bar.done(n)
	return nil
}

func checkpointSize(note []byte) (int64, error) {
	lines := strings.SplitN(string(note), "\n", 3)
	if len(lines) < 3 {
		return 0, errors.New("checkpoint: too short")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint size: %w", err)
	}
	return n, nil
}

// output is where an export goes: standard output for "" or "-", else a
// new file.
type output struct {
	io.Writer
	file *os.File
	path string
	done bool
}

func createOutput(stdout io.Writer, path string) (*output, error) {
	if path == "" || path == "-" {
		return &output{Writer: stdout}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &output{Writer: f, file: f, path: path}, nil
}

// finish closes a file output once; a failed one is removed, since a
// file cut short would pass for a smaller export.
func (o *output) finish(failed bool) error {
	if o.file == nil || o.done {
		return nil
	}
	o.done = true
	err := o.file.Close()
	if failed {
		os.Remove(o.path)
	}
	return err
}

// readKey takes a verifier key itself or the name of a file holding one.
func readKey(v string) (string, error) {
	if v == "" {
		return "", errors.New("--key is required: the log's verifier key (name+hash+key) or a file holding it")
	}
	if _, err := note.NewVerifier(v); err == nil {
		return v, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return "", fmt.Errorf("read key: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line, nil
		}
	}
	return "", fmt.Errorf("read key: %s holds no key", v)
}

// verifyBundleFile is the bundle mode of `docket verify`.
func verifyBundleFile(ctx context.Context, e *env, file, key string, quiet bool) error {
	vkey, err := readKey(key)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var in io.Reader = e.stdin
	var size int64
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		in = f
	}
	show := !quiet && isTerminal(e.stderr)
	bar := newProgress(e.stderr, show, "bytes", size)
	res, err := audit.VerifyBundle(ctxReader{ctx, in}, vkey, func(_, b int64) { bar.update(b) })
	bar.done(max(size, 0))
	if err != nil {
		return fmt.Errorf("verify: %s: %w", file, err)
	}
	fmt.Fprintf(e.stdout, "OK: %d entries (%s bundle) verified against the checkpoint of %s at size %d, root %x\n",
		res.Entries, res.Mode, res.Origin, res.Size, res.Root)
	return nil
}

// ctxReader stops a long verification when the context ends (Ctrl-C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

const reportUsage = `Usage: docket report [--from TIME] [--to TIME] [--csv | --json]

Prints the transparency figures (DSA Art. 15(1)(d), 24) for a period: decisions
by action and automation, appeals filed, outcomes, reversal rate, median and
90th-percentile time to resolve, appeals overdue, median time to notice,
overall and per policy. TIME is RFC 3339 or YYYY-MM-DD; the period is [from, to).

Flags:
`

func cmdReport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("report", e, reportUsage)
	dsn := databaseFlag(fs, e)
	from := fs.String("from", "", "start of the period (included): a date, 2026-01-31, or an RFC 3339 time, 2026-01-31T12:00:00Z")
	to := fs.String("to", "", "end of the period (excluded; default now): a date or an RFC 3339 time")
	asCSV := fs.Bool("csv", false, "CSV instead of a table")
	asJSON := fs.Bool("json", false, "JSON instead of a table")
	if err := noArgs(fs, "report", args); err != nil {
		return err
	}
	var p appeals.Period
	var err error
	if *from != "" {
		if p.From, err = parseCLITime(*from); err != nil {
			return fmt.Errorf("report: --from: want a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z), got %q", *from)
		}
	}
	if *to != "" {
		if p.To, err = parseCLITime(*to); err != nil {
			return fmt.Errorf("report: --to: want a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z), got %q", *to)
		}
	}
	db, err := openMigrated(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer db.Close()
	store := appeals.NewStore(db, appeals.Options{})
	rep, err := store.AppealsReport(ctx, cliActor(e), p)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case *asCSV:
		return rep.WriteCSV(e.stdout)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	if err := rep.WriteTable(tw); err != nil {
		return err
	}
	return tw.Flush()
}

// bundleSource gathers what a bundle needs from the log: its latest signed
// checkpoint, its verifier key and inclusion proofs. It opens the log with
// the service's signer key (DOCKET_SIGNER_KEY_FILE, or the one generated
// into DOCKET_DATA_DIR), as `docket serve` does; nothing is signed here.
func bundleSource(ctx context.Context, e *env, db *sqlx.DB) (audit.BundleSource, error) {
	path := signerKeyPath(e)
	signer, vkey, err := audit.LoadSignerKey(path)
	if err != nil {
		return audit.BundleSource{}, fmt.Errorf("bundle: the log's key (set DOCKET_SIGNER_KEY_FILE or DOCKET_DATA_DIR): %w", err)
	}
	lg, err := audit.NewLog(db, signer, vkey, envOr(e.getenv, "DOCKET_LOG_ORIGIN", defaultOrigin), audit.Options{})
	if err != nil {
		return audit.BundleSource{}, fmt.Errorf("bundle: %w", err)
	}
	cp, err := lg.LatestCheckpoint(ctx)
	if err != nil {
		return audit.BundleSource{}, fmt.Errorf("bundle: %w", err)
	}
	return audit.BundleSource{Checkpoint: cp.Note, Key: lg.VerifierKey(), InclusionProof: lg.InclusionProof}, nil
}

// signerKeyPath is where `docket serve` keeps the checkpoint signer key.
func signerKeyPath(e *env) string {
	if p := e.getenv("DOCKET_SIGNER_KEY_FILE"); p != "" {
		return p
	}
	return filepath.Join(envOr(e.getenv, "DOCKET_DATA_DIR", "./data"), signerKeyFileName)
}
