package client

import (
	"context"
	"fmt"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
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

// VerifyRemote checks the live log against a checkpoint an auditor saved
// earlier (`docket verify --remote`), through the public API only, as any
// outsider can: the live checkpoint must be signed by the key, name the
// same origin, be at least as large, and a consistency proof must show the
// saved tree is its prefix. With an empty verifierKey the server's
// /v1/audit/key is used; that is still sound for history, since the saved
// checkpoint must verify under it too. It needs no token.
func (c *Client) VerifyRemote(ctx context.Context, verifierKey string, saved []byte) (RemoteResult, error) {
	var res RemoteResult
	if verifierKey == "" {
		k, err := c.Key(ctx)
		if err != nil {
			return res, fmt.Errorf("client: verify: %w", err)
		}
		verifierKey = k
	}
	res.Key = verifierKey
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return res, fmt.Errorf("client: verify: verifier key: %w", err)
	}
	if res.Saved, err = audit.OpenCheckpoint(saved, v, ""); err != nil {
		return res, fmt.Errorf("client: verify: saved checkpoint: %w", err)
	}
	if res.LatestNote, err = c.Checkpoint(ctx); err != nil {
		return res, fmt.Errorf("client: verify: %w", err)
	}
	if res.Latest, err = audit.OpenCheckpoint(res.LatestNote, v, res.Saved.Origin); err != nil {
		return res, fmt.Errorf("client: verify: live checkpoint: %w", err)
	}
	from, to := res.Saved.Size, res.Latest.Size
	if to < from {
		return res, fmt.Errorf("client: verify: the log shrank from %d to %d entries", from, to)
	}
	var hashes [][]byte
	if from != to { // a tree is its own prefix with an empty proof
		p, err := c.ConsistencyProof(ctx, from, to)
		if err != nil {
			return res, fmt.Errorf("client: verify: consistency proof: %w", err)
		}
		hashes = p.Hashes
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, from, to, hashes, res.Saved.Hash, res.Latest.Hash); err != nil {
		return res, fmt.Errorf("client: verify: the log at %d entries is not an extension of the saved checkpoint at %d: %w", to, from, err)
	}
	return res, nil
}
