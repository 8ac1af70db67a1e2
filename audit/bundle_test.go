package audit_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/docket-dev/docket/audit"
)

// memLog is an in-memory log signed with a fresh key: enough to make
// bundles without a database.
type memLog struct {
	tree    *testonly.Tree
	data    [][]byte
	signer  note.Signer
	vkey    string
	otherVK string
}

func newMemLog(t testing.TB, n int) *memLog { return newMemLogPadded(t, n, 0) }

// newMemLogPadded makes entries of about 190+pad bytes.
func newMemLogPadded(t testing.TB, n, pad int) *memLog {
	t.Helper()
	facts := strings.Repeat("f", pad)
	skey, vkey, err := note.GenerateKey(rand.Reader, "docket.test/audit")
	require.NoError(t, err)
	signer, err := note.NewSigner(skey)
	require.NoError(t, err)
	_, other, err := note.GenerateKey(rand.Reader, "docket.test/audit")
	require.NoError(t, err)
	m := &memLog{tree: testonly.New(rfc6962.DefaultHasher), signer: signer, vkey: vkey, otherVK: other}
	for i := 0; i < n; i++ {
		d := []byte(fmt.Sprintf(`{"type":"decision.recorded","time":"2026-01-01T00:00:%02dZ","actor":"enforcer:pipeline","subject":{"kind":"decision","id":"d-%d"},"record":{"tenant":"acme","n":%d,"facts":"%s"}}`, i%60, i, i, facts))
		m.data = append(m.data, d)
		m.tree.AppendData(d)
	}
	return m
}

func (m *memLog) checkpoint(t testing.TB) []byte {
	t.Helper()
	text := log.Checkpoint{Origin: "docket.test/audit", Size: m.tree.Size(), Hash: m.tree.Hash()}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, m.signer)
	require.NoError(t, err)
	return signed
}

// bundle writes a bundle of the given indices; nil means the whole log.
func (m *memLog) bundle(t testing.TB, indices []int) []byte {
	t.Helper()
	mode := audit.BundleProofs
	if indices == nil {
		mode = audit.BundleFull
		for i := range m.data {
			indices = append(indices, i)
		}
	}
	var buf bytes.Buffer
	bw, err := audit.NewBundleWriter(&buf, mode, m.vkey, m.checkpoint(t), "test")
	require.NoError(t, err)
	for _, i := range indices {
		var p [][]byte
		if mode == audit.BundleProofs {
			p, err = m.tree.InclusionProof(uint64(i), m.tree.Size())
			require.NoError(t, err)
		}
		require.NoError(t, bw.Entry(int64(i), m.tree.LeafHash(uint64(i)), m.data[i], p))
	}
	require.NoError(t, bw.Close())
	return buf.Bytes()
}

func verifyBundleBytes(b []byte, key string) (audit.BundleResult, error) {
	return audit.VerifyBundle(bytes.NewReader(b), key, nil)
}

func bundleErr(t *testing.T, err error) *audit.BundleError {
	t.Helper()
	var be *audit.BundleError
	require.True(t, errors.As(err, &be), "want a *BundleError, got %v", err)
	return be
}

func TestBundleVerifies(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 37)
	for name, idx := range map[string][]int{"full": nil, "slice": {0, 3, 7, 12, 20, 36}, "empty slice": {}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res, err := verifyBundleBytes(m.bundle(t, idx), m.vkey)
			require.NoError(t, err)
			require.Equal(t, uint64(37), res.Size)
			require.Equal(t, m.tree.Hash(), res.Root)
			if idx == nil {
				require.EqualValues(t, 37, res.Entries)
				require.Equal(t, audit.BundleFull, res.Mode)
			} else {
				require.EqualValues(t, len(idx), res.Entries)
			}
		})
	}
}

func TestBundleWrongKey(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 5)
	_, err := verifyBundleBytes(m.bundle(t, nil), m.otherVK)
	require.ErrorContains(t, err, "signature")
}

// lineOf returns which line (0-based) byte position pos is on, and the
// entry index on it (-1 for the header and trailer).
func bundleLineOf(b []byte, pos int, indices []int) (int, int) {
	line := bytes.Count(b[:pos], []byte("\n"))
	lines := bytes.Count(b, []byte("\n"))
	if line == 0 || line == lines-1 {
		return line, -1
	}
	return line, indices[line-1]
}

// TestBundleEveryByte flips each byte of a bundle in turn: every change
// must fail, and a change inside an entry's line must name an entry.
func TestBundleEveryByte(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 9)
	for name, idx := range map[string][]int{"full": nil, "slice": {1, 4, 8}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := m.bundle(t, idx)
			all := idx
			if all == nil {
				all = []int{0, 1, 2, 3, 4, 5, 6, 7, 8}
			}
			for pos := range orig {
				b := bytes.Clone(orig)
				b[pos] ^= 0x01
				_, err := verifyBundleBytes(b, m.vkey)
				require.Error(t, err, "flipping byte %d (%q) went unnoticed", pos, orig[pos])
				be := bundleErr(t, err)
				if line, entry := bundleLineOf(orig, pos, all); entry >= 0 && orig[pos] != '\n' {
					require.GreaterOrEqual(t, be.Index, int64(0), "flip at %d on line %d: %v", pos, line, err)
				}
			}
		})
	}
}

// TestBundleDataFlipNamesEntry changes one byte of an entry's data.
func TestBundleDataFlipNamesEntry(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 20)
	for name, idx := range map[string][]int{"full": nil, "slice": {2, 5, 11, 19}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := m.bundle(t, idx)
			lines := bytes.SplitAfter(b, []byte("\n"))
			// line 3 holds the third entry; flip a byte in the middle of its data
			target := int64(2)
			if idx != nil {
				target = int64(idx[2])
			}
			l := lines[3]
			at := bytes.Index(l, []byte(`"data":"`)) + 20
			l[at] = flipB64(l[at])
			_, err := verifyBundleBytes(bytes.Join(lines, nil), m.vkey)
			be := bundleErr(t, err)
			require.Equal(t, target, be.Index, "%v", err)
		})
	}
}

// flipB64 swaps a base64 character for another valid one.
func flipB64(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

func TestBundleDropLineNamesEntry(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 12)
	for name, idx := range map[string][]int{"full": nil, "slice": {0, 2, 5, 6, 11}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := m.bundle(t, idx)
			all := idx
			if all == nil {
				all = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
			}
			for k, want := range all {
				lines := bytes.SplitAfter(orig, []byte("\n"))
				lines = append(lines[:k+1], lines[k+2:]...)
				_, err := verifyBundleBytes(bytes.Join(lines, nil), m.vkey)
				be := bundleErr(t, err)
				require.Equal(t, int64(want), be.Index, "dropping entry %d: %v", want, err)
			}
		})
	}
}

func TestBundleSwapLinesNamesEntry(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 12)
	for name, idx := range map[string][]int{"full": nil, "slice": {0, 2, 5, 6, 11}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			orig := m.bundle(t, idx)
			all := idx
			if all == nil {
				all = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
			}
			for k := 0; k+1 < len(all); k++ {
				lines := bytes.SplitAfter(orig, []byte("\n"))
				lines[k+1], lines[k+2] = lines[k+2], lines[k+1]
				_, err := verifyBundleBytes(bytes.Join(lines, nil), m.vkey)
				be := bundleErr(t, err)
				require.Contains(t, []int64{int64(all[k]), int64(all[k+1])}, be.Index, "swapping entries %d and %d: %v", all[k], all[k+1], err)
			}
		})
	}
}

func TestBundleTruncated(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 6)
	b := m.bundle(t, nil)
	lines := bytes.SplitAfter(b, []byte("\n"))
	_, err := verifyBundleBytes(bytes.Join(lines[:len(lines)-2], nil), m.vkey)
	require.ErrorContains(t, err, "without its trailer")
	_, err = verifyBundleBytes(b[:len(b)-1], m.vkey)
	require.Error(t, err)
	_, err = verifyBundleBytes(append(bytes.Clone(b), "x\n"...), m.vkey)
	require.ErrorContains(t, err, "after the trailer")
	require.True(t, strings.HasPrefix(string(b), `{"format":"docket-bundle/v1"`))
}

func TestBundleWriterRefusesEntriesTheCheckpointDoesNotCover(t *testing.T) {
	t.Parallel()
	m := newMemLog(t, 4)
	bw, err := audit.NewBundleWriter(io.Discard, audit.BundleFull, m.vkey, m.checkpoint(t), "test")
	require.NoError(t, err)
	require.NoError(t, bw.Entry(1, m.tree.LeafHash(1), m.data[1], nil))
	require.Error(t, bw.Entry(1, m.tree.LeafHash(1), m.data[1], nil), "a repeat")
	require.Error(t, bw.Entry(0, m.tree.LeafHash(0), m.data[0], nil), "out of order")
	require.Error(t, bw.Entry(4, m.tree.LeafHash(3), m.data[3], nil), "beyond the checkpoint's size")
}
