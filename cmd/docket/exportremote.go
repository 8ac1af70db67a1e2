package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/docket-dev/docket/api/client"
	"github.com/docket-dev/docket/appeals"
	"github.com/docket-dev/docket/audit"
)

// exportRemote is `docket export --url`: the export or the bundle comes
// from a running Docket's API, as an auditor would fetch it. The token is
// sent, never printed.
func exportRemote(ctx context.Context, e *env, baseURL, token string, f audit.ExportFilter, enc audit.Format, output, bundle string, show bool) (err error) {
	if token == "" {
		return errors.New("export: --url needs an auditor's or admin's token: --token or DOCKET_TOKEN")
	}
	c, err := client.New(baseURL, token, nil)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	q := client.ExportQuery{From: f.From, To: f.To, Types: f.Types, AdvertiserID: f.Keys[appeals.KeyAdvertiser],
		PolicyCode: f.Keys[appeals.KeyPolicy]}
	if f.FromIndex > 0 {
		q.FromIndex = &f.FromIndex
	}
	q.ToIndex = f.ToIndex
	var body io.ReadCloser
	path := output
	if bundle != "" {
		path = bundle
		body, err = c.ExportBundle(ctx, q)
	} else {
		body, err = c.ExportAudit(ctx, q, enc == audit.CSV)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer body.Close()

	out, err := createOutput(e.stdout, path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() { _ = out.finish(err != nil) }()
	bar := newProgress(e.stderr, show, "bytes", -1)
	bw := bufio.NewWriterSize(out, 256<<10)
	n, err := io.Copy(bar.writer(bw), ctxReader{ctx, body})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = out.finish(false)
	}
	if err != nil {
		return fmt.Errorf("export: %s: %w", baseURL, err)
	}
	bar.done(n)
	if bundle != "" {
		fmt.Fprintf(e.stderr, "wrote a bundle of %d bytes from %s; check it with 'docket verify --bundle %s --key KEY'\n", n, baseURL, bundle)
	}
	return nil
}
