package client

import (
	"context"
	"github.com/docket-dev/docket/audit"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The proofs' wire shapes are the log's own (one declaration for the
// server and its clients).
type (
	InclusionProof   = audit.InclusionProof
	ConsistencyProof = audit.ConsistencyProof
)

// text fetches a text/plain reply whole.
func (c *Client) text(ctx context.Context, path string) ([]byte, error) {
	req, err := c.request(ctx, http.MethodGet, path, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// Checkpoint is the latest signed checkpoint, byte for byte: a C2SP
// tlog-checkpoint in a signed note. Check it with the log's key obtained
// out of band (golang.org/x/mod/sumdb/note), not with Key's answer alone.
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.text(ctx, "/v1/audit/checkpoint")
}

// Key is the note verifier key the server says signs its checkpoints.
func (c *Client) Key(ctx context.Context) (string, error) {
	b, err := c.text(ctx, "/v1/audit/key")
	return strings.TrimSpace(string(b)), err
}

// InclusionProof proves the leaf at index in the tree of size (0: the
// latest checkpoint's).
func (c *Client) InclusionProof(ctx context.Context, index, size uint64) (*InclusionProof, error) {
	v := url.Values{"index": {strconv.FormatUint(index, 10)}}
	if size > 0 {
		v.Set("size", strconv.FormatUint(size, 10))
	}
	p := new(InclusionProof)
	if _, err := c.call(ctx, http.MethodGet, "/v1/audit/proofs/inclusion", v, nil, p, nil, http.StatusOK); err != nil {
		return nil, err
	}
	return p, nil
}

// ConsistencyProof proves the tree of size from a prefix of the tree of
// size to (0: the latest checkpoint's).
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) (*ConsistencyProof, error) {
	v := url.Values{"from": {strconv.FormatUint(from, 10)}}
	if to > 0 {
		v.Set("to", strconv.FormatUint(to, 10))
	}
	p := new(ConsistencyProof)
	if _, err := c.call(ctx, http.MethodGet, "/v1/audit/proofs/consistency", v, nil, p, nil, http.StatusOK); err != nil {
		return nil, err
	}
	return p, nil
}

// ExportQuery selects audit entries. From and To are leaf indices (To
// excluded) or, when the times are set, the entries' own times; zero
// fields do not filter.
type ExportQuery struct {
	FromIndex, ToIndex *int64
	From, To           time.Time
	Types              []string
	AdvertiserID       string
	PolicyCode         string
}

func (q ExportQuery) values() url.Values {
	v := url.Values{}
	bound := func(name string, i *int64, t time.Time) {
		switch {
		case i != nil:
			v.Set(name, strconv.FormatInt(*i, 10))
		case !t.IsZero():
			v.Set(name, t.UTC().Format(time.RFC3339Nano))
		}
	}
	bound("from", q.FromIndex, q.From)
	bound("to", q.ToIndex, q.To)
	if len(q.Types) > 0 {
		v.Set("type", strings.Join(q.Types, ","))
	}
	set(v, "advertiser_id", q.AdvertiserID)
	set(v, "policy_code", q.PolicyCode)
	return v
}

// stream opens a streamed reply; the caller reads and closes it. A reply
// cut short by the server ends in an error from Read, never a clean EOF.
func (c *Client) stream(ctx context.Context, path string, v url.Values) (io.ReadCloser, error) {
	req, err := c.request(ctx, http.MethodGet, path, v, nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ExportAudit streams the selected entries as JSON lines (index,
// leaf_hash, type, entry), or CSV when csv is set (auditor, admin).
func (c *Client) ExportAudit(ctx context.Context, q ExportQuery, csv bool) (io.ReadCloser, error) {
	v := q.values()
	if csv {
		v.Set("format", "csv")
	}
	return c.stream(ctx, "/v1/exports/audit", v)
}

// ExportBundle streams a verifiable bundle (docket-bundle/v1) of the
// selected entries, pinned to the latest signed checkpoint (auditor,
// admin); `docket verify --bundle FILE --key KEY`, or audit.VerifyBundle,
// checks it offline.
func (c *Client) ExportBundle(ctx context.Context, q ExportQuery) (io.ReadCloser, error) {
	return c.stream(ctx, "/v1/exports/bundle", q.values())
}
