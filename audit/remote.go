package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// RemoteResult is what VerifyRemote checked.
type RemoteResult struct {
	// Key is the verifier key the checkpoints were checked with.
	Key    string
	Saved  log.Checkpoint
	Latest log.Checkpoint
	// LatestNote is the live signed checkpoint, to keep for next time.
	LatestNote []byte
}

// VerifyRemote checks a live log against a checkpoint an auditor saved
// earlier, through the public API only: the live checkpoint must be signed
// by the key, name the same origin, be at least as large, and a
// consistency proof must show the saved tree is its prefix. With an empty
// verifierKey the server's /v1/audit/key is used; that is still sound for
// history, since the saved checkpoint must verify under it too.
func VerifyRemote(ctx context.Context, client *http.Client, baseURL, verifierKey string, saved []byte) (RemoteResult, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base := strings.TrimRight(baseURL, "/")
	var res RemoteResult
	if verifierKey == "" {
		b, err := fetch(ctx, client, base+"/v1/audit/key")
		if err != nil {
			return res, err
		}
		verifierKey = strings.TrimSpace(string(b))
	}
	res.Key = verifierKey
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return res, fmt.Errorf("audit: remote: verifier key: %w", err)
	}
	if res.Saved, err = openCheckpoint(saved, v, ""); err != nil {
		return res, fmt.Errorf("audit: remote: saved checkpoint: %w", err)
	}
	if res.LatestNote, err = fetch(ctx, client, base+"/v1/audit/checkpoint"); err != nil {
		return res, err
	}
	if res.Latest, err = openCheckpoint(res.LatestNote, v, res.Saved.Origin); err != nil {
		return res, fmt.Errorf("audit: remote: live checkpoint: %w", err)
	}
	from, to := res.Saved.Size, res.Latest.Size
	if to < from {
		return res, fmt.Errorf("audit: remote: the log shrank from %d to %d entries", from, to)
	}
	q := url.Values{"from": {fmt.Sprint(from)}, "to": {fmt.Sprint(to)}}
	b, err := fetch(ctx, client, base+"/v1/audit/proofs/consistency?"+q.Encode())
	if err != nil {
		return res, err
	}
	var p struct {
		Hashes [][]byte `json:"hashes"` // standard base64, which encoding/json speaks
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return res, fmt.Errorf("audit: remote: consistency proof: %w", err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, to, p.Hashes, res.Saved.Hash, res.Latest.Hash); err != nil {
		return res, fmt.Errorf("audit: remote: the log at %d entries is not an extension of the saved checkpoint at %d: %w", to, from, err)
	}
	return res, nil
}

// openCheckpoint verifies a signed checkpoint and returns its body; an
// empty origin accepts any.
func openCheckpoint(signed []byte, v note.Verifier, origin string) (log.Checkpoint, error) {
	var cp log.Checkpoint
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return cp, fmt.Errorf("signature: %w", err)
	}
	if rest, err := cp.Unmarshal([]byte(n.Text)); err != nil || len(rest) != 0 {
		return cp, errors.New("the signed text is not a checkpoint")
	}
	if origin != "" && cp.Origin != origin {
		return cp, fmt.Errorf("origin %q, want %q", cp.Origin, origin)
	}
	return cp, nil
}

func fetch(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: remote: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("audit: remote: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("audit: remote: %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("audit: remote: %s: %s: %s", u, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}
