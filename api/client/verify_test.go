package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket"
	"github.com/docket-dev/docket/api/client"
	"github.com/docket-dev/docket/internal/logtest"
)

// TestVerifyRemote checks the live server against a checkpoint saved
// earlier, as `docket verify --remote` does, without a token: it extends
// the saved one as the log grows, with the key given or the server's; a
// key that did not sign the saved checkpoint is refused.
func TestVerifyRemote(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	admin := e.as(docket.RoleAdmin, "ada", "")
	put := func(code string) {
		_, _, err := admin.PutPolicy(ctx, code, client.PolicyInput{Title: "t", Text: "x"})
		require.NoError(t, err)
		e.integrate()
	}
	put("p-1")
	public, err := client.New(e.url, "", e.hc)
	require.NoError(t, err)
	saved, err := public.Checkpoint(ctx)
	require.NoError(t, err)
	vkey := e.log.VerifierKey()

	res, err := public.VerifyRemote(ctx, vkey, saved)
	require.NoError(t, err, "a log extends its own latest checkpoint")
	require.Equal(t, res.Saved, res.Latest)

	for i := range 3 {
		put(fmt.Sprintf("p-%d", i+2))
	}
	res, err = public.VerifyRemote(ctx, "", saved)
	require.NoError(t, err)
	require.Equal(t, vkey, res.Key, "no key given: the server's")
	require.Greater(t, res.Latest.Size, res.Saved.Size)
	latest, err := public.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, latest, res.LatestNote)

	_, otherKey := logtest.Key(t)
	_, err = public.VerifyRemote(ctx, otherKey, saved)
	require.ErrorContains(t, err, "signature")
}

// roundTripFunc serves VerifyRemote's requests from memory.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzVerifyRemote runs the remote check against a server whose live
// checkpoint and consistency proof the fuzzer writes (or, with valid set,
// a real live checkpoint and only the proof): no panic, and success only
// when the proof really shows the saved tree is a prefix of the live one.
func FuzzVerifyRemote(f *testing.F) {
	const origin = "docket.test/fuzz"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	require.NoError(f, err)
	signer, err := note.NewSigner(skey)
	require.NoError(f, err)
	sign := func(cp log.Checkpoint) []byte {
		signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
		require.NoError(f, err)
		return signed
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := range 7 {
		tree.AppendData(fmt.Appendf(nil, `{"type":"decision.recorded","n":%d}`, i))
	}
	rootAt := tree.HashAt
	saved := sign(log.Checkpoint{Origin: origin, Size: 3, Hash: rootAt(3)})
	live := sign(log.Checkpoint{Origin: origin, Size: 7, Hash: rootAt(7)})
	hashes, err := tree.ConsistencyProof(3, 7)
	require.NoError(f, err)
	good, err := json.Marshal(map[string]any{"from": 3, "to": 7, "hashes": hashes})
	require.NoError(f, err)
	other := testonly.New(rfc6962.DefaultHasher)
	for i := range 7 {
		other.AppendData(fmt.Appendf(nil, `{"type":"forged","n":%d}`, i))
	}
	f.Add(good, []byte(nil), true)
	f.Add(good, live, false)
	f.Add(good, saved, false)
	f.Add(good, sign(log.Checkpoint{Origin: origin, Size: 7, Hash: other.HashAt(7)}), false) // another tree, the same key
	f.Add([]byte(`{"hashes":[]}`), saved, false)
	f.Add([]byte(`{"hashes":null}`), []byte(nil), true)
	f.Add([]byte(`{"hashes":["AAAA"]}`), []byte(nil), true)
	f.Add([]byte(`[]`), sign(log.Checkpoint{Origin: origin, Size: 2, Hash: rootAt(2)}), false)
	f.Add([]byte(`{"hashes":[""]}`), sign(log.Checkpoint{Origin: "other", Size: 7, Hash: rootAt(7)}), false)
	f.Fuzz(func(t *testing.T, proofBody, liveNote []byte, valid bool) {
		if valid {
			liveNote = live
		}
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			var body []byte
			ct := "text/plain; charset=utf-8"
			switch r.URL.Path {
			case "/v1/audit/checkpoint":
				body = liveNote
			case "/v1/audit/proofs/consistency":
				body, ct = proofBody, "application/json"
			case "/v1/audit/key":
				body = []byte(vkey + "\n")
			default:
				return &http.Response{StatusCode: 404, Body: io.NopCloser(bytes.NewReader(nil))}, nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {ct}}, Body: io.NopCloser(bytes.NewReader(body))}, nil
		})}
		c, err := client.New("http://docket.test", "", hc)
		require.NoError(t, err)
		for _, key := range []string{vkey, ""} {
			res, err := c.VerifyRemote(context.Background(), key, saved)
			if err != nil {
				continue
			}
			require.Equal(t, uint64(3), res.Saved.Size)
			require.GreaterOrEqual(t, res.Latest.Size, res.Saved.Size)
			require.Equal(t, origin, res.Latest.Origin)
			if res.Latest.Size == res.Saved.Size {
				require.Equal(t, res.Saved.Hash, res.Latest.Hash)
				continue
			}
			var p struct {
				Hashes [][]byte `json:"hashes"`
			}
			require.NoError(t, json.Unmarshal(proofBody, &p))
			require.NoError(t, proof.VerifyConsistency(rfc6962.DefaultHasher, 3, res.Latest.Size, p.Hashes, res.Saved.Hash, res.Latest.Hash))
			if res.Latest.Size <= tree.Size() {
				require.Equal(t, rootAt(res.Latest.Size), res.Latest.Hash, "a root the log never had was accepted")
			}
		}
	})
}
