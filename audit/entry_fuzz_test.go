package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// fuzzOrigin and fuzzSKey sign the bundles and checkpoints the fuzz
// targets build: a fixed key, so that committed seeds stay valid.
const (
	fuzzOrigin = "docket.test/fuzz"
	fuzzSKey   = "PRIVATE+KEY+docket.test/fuzz+ac1bd798+Afz85/SVeUYoTrqopJyEhZKb2rRsoCJ8L5IUe+7WDZL5" // a test key, for fuzzing only
)

type fuzzKeys struct {
	signer note.Signer
	vkey   string
	v      note.Verifier
}

func newFuzzKeys(tb testing.TB) fuzzKeys {
	tb.Helper()
	signer, vkey, err := ParseSignerKey(fuzzSKey)
	require.NoError(tb, err)
	v, err := note.NewVerifier(vkey)
	require.NoError(tb, err)
	return fuzzKeys{signer: signer, vkey: vkey, v: v}
}

func (k fuzzKeys) sign(tb testing.TB, cp log.Checkpoint) []byte {
	tb.Helper()
	signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, k.signer)
	require.NoError(tb, err)
	return signed
}

// FuzzEntryRoundTrip decodes any bytes as an entry, the way a reader of
// the log's leaves does, and checks the encoder on what decodes: encode
// never panics, its bytes decode to the same entry, and encoding that
// again gives the same bytes (the leaf data is stable).
func FuzzEntryRoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"type":"decision.recorded","time":"2026-01-01T00:00:00Z","actor":"enforcer:pipeline","subject":{"kind":"decision","id":"d-1"},"refs":[{"kind":"policy","id":"crypto@1"}],"record":{"id":"d-1","n":1.5,"ok":true,"x":null,"l":[1,"a"]}}`,
		`{"type":"t","time":"2026-01-01T00:00:00.123456789+14:00","actor":"a","subject":{"kind":"k","id":"i"}}`,
		`{"type":"t","time":"9999-12-31T23:59:59-23:59","actor":"a","subject":{"kind":"k","id":"i"}}`,
		`{"type":"t","time":"0000-01-01T00:00:00+01:00","actor":"a","subject":{"kind":"k","id":"i"}}`,
		`{"type":"\u2028<>&","time":"2026-01-01T00:00:00Z","actor":"\ufffd","subject":{"kind":"k","id":"i"},"record":1e308}`,
		`{"type":"","actor":"","subject":{}}`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Entry
		if json.Unmarshal(data, &e) != nil {
			return
		}
		first, err := encode(e)
		if err != nil {
			// Refused: incomplete, or a time JSON cannot hold.
			return
		}
		var back Entry
		require.NoError(t, json.Unmarshal(first, &back), "%s", first)
		require.Equal(t, e.Type, back.Type)
		require.Equal(t, e.Actor, back.Actor)
		require.Equal(t, e.Subject, back.Subject)
		require.True(t, e.Time.Equal(back.Time), "%v != %v", e.Time, back.Time)
		again, err := encode(back)
		require.NoError(t, err)
		require.Equal(t, string(first), string(again), "the encoding is a fixed point")
		args, err := StageArgs(back)
		require.NoError(t, err)
		require.Equal(t, first, args[4])
	})
}

// FuzzEntryEncode builds entries from parts and checks the encoder: an
// entry Validate refuses is never encoded; one it accepts encodes to JSON
// that decodes to the same parts, its time in UTC.
func FuzzEntryEncode(f *testing.F) {
	f.Add("decision.recorded", "enforcer:pipeline", "decision", "d-1", int64(1767225600), int64(0), 0, `{"a":1}`)
	f.Add("", "a", "k", "i", int64(0), int64(0), 3600, `null`)
	f.Add("t", "a", "k", "i", int64(253402300799), int64(999999999), -86340, `"x"`)
	f.Add("t\xff", "a\x00", "k", "i", int64(-62135596800), int64(1), 50400, `[1,2]`)
	f.Fuzz(func(t *testing.T, typ, actor, kind, id string, sec, nsec int64, offset int, record string) {
		e := Entry{Type: typ, Actor: actor, Subject: Subject{Kind: kind, ID: id},
			Time: time.Unix(sec, nsec).In(time.FixedZone("z", offset%(24*3600)))}
		if json.Valid([]byte(record)) {
			e.Record = json.RawMessage(record)
		}
		data, err := encode(e)
		if e.Validate() != nil {
			require.Error(t, err)
			return
		}
		if err != nil {
			// Only a time JSON cannot hold may fail a valid entry.
			y := e.Time.UTC().Year()
			require.True(t, y < 0 || y > 9999, "%v: %v", e.Time, err)
			return
		}
		var back Entry
		require.NoError(t, json.Unmarshal(data, &back))
		// encoding/json writes each invalid byte as U+FFFD; valid text is kept.
		if utf8.ValidString(typ) && utf8.ValidString(actor) {
			require.Equal(t, typ, back.Type)
			require.Equal(t, actor, back.Actor)
		}
		require.True(t, e.Time.Equal(back.Time))
		require.Equal(t, time.UTC, back.Time.Location())
	})
}

// FuzzLeafHash checks the bundle verifier's own hashing against RFC 6962's.
func FuzzLeafHash(f *testing.F) {
	f.Add([]byte(""), []byte(""))
	f.Add([]byte(`{"type":"t"}`), bytes.Repeat([]byte{0xff}, 33))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		h := leafHash(a)
		require.Equal(t, rfc6962.DefaultHasher.HashLeaf(a), h[:])
		if len(a) == sha256.Size && len(b) == sha256.Size {
			require.Equal(t, rfc6962.DefaultHasher.HashChildren(a, b), fastHasher{}.HashChildren(a, b))
		}
	})
}

// FuzzBundleEntryParse runs the hand parser of entry lines on any line:
// no panic, and a line it accepts is exactly the line the writer makes of
// the values it read (the form is canonical), and reads back the same.
func FuzzBundleEntryParse(f *testing.F) {
	for _, s := range []string{
		`{"index":0,"prev":-1,"leaf_hash":"` + strings.Repeat("A", 43) + `=","data":"e30="}` + "\n",
		`{"index":5,"prev":3,"leaf_hash":"` + strings.Repeat("A", 43) + `=","data":"","proof":["` + strings.Repeat("B", 43) + `=","` + strings.Repeat("C", 43) + `="]}` + "\n",
		`{"index":5,"prev":3,"leaf_hash":"` + strings.Repeat("A", 43) + `=","data":"","proof":[]}` + "\n",
		`{"index":-0,"prev":01,"leaf_hash":"","data":""}` + "\n",
		`{"index":9223372036854775808,"prev":-1}`, `{"index":1,"prev":0,"leaf_hash":"AAAA","data":"e30"}` + "\n",
		`{"index":1,"prev":0,"leaf_hash":"` + strings.Repeat("A", 43) + `=","data":"e30=","proof":["` + strings.Repeat("A", 43) + `=",]}` + "\n",
		`{"end":"x"}`, "", "\n", `{"index":`, `{"index":-`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, line []byte, withProof bool) {
		var e bundleEntry
		if err := e.parse(line, withProof); err != nil {
			return
		}
		require.Len(t, e.leafHash, sha256.Size)
		for _, p := range e.proof {
			require.Len(t, p, sha256.Size)
		}
		if e.index < 0 || e.index <= e.prev {
			return // parsed, but not a line the writer makes (the sequencer refuses it)
		}
		mode := BundleFull
		if withProof {
			mode = BundleProofs
		}
		var buf bytes.Buffer
		bw := &BundleWriter{w: bufio.NewWriter(&buf), mode: mode, size: math.MaxUint64, last: e.prev}
		require.NoError(t, bw.Entry(e.index, e.leafHash, e.data, e.proof))
		require.NoError(t, bw.w.Flush())
		require.Equal(t, string(line), buf.String(), "the accepted form is the writer's")
		var again bundleEntry
		require.NoError(t, again.parse(buf.Bytes(), withProof))
		require.Equal(t, e.index, again.index)
		require.Equal(t, e.data, again.data)
	})
}

// fuzzBundle is a small signed log and its bundles, for seeds and for
// the header the verifier needs before it reads any entry.
type fuzzBundle struct {
	keys fuzzKeys
	tree *testonly.Tree
	data [][]byte
}

func newFuzzBundle(tb testing.TB, n int) *fuzzBundle {
	b := &fuzzBundle{keys: newFuzzKeys(tb), tree: testonly.New(rfc6962.DefaultHasher)}
	for i := range n {
		d := []byte(fmt.Sprintf(`{"type":"decision.recorded","time":"2026-01-01T00:00:0%dZ","actor":"enforcer:p","subject":{"kind":"decision","id":"d-%d"}}`, i%10, i))
		b.data = append(b.data, d)
		b.tree.AppendData(d)
	}
	return b
}

// write makes a bundle of indices (nil: all, in mode full); it returns the
// header line and the rest.
func (b *fuzzBundle) write(tb testing.TB, indices []int) (header, rest []byte) {
	tb.Helper()
	mode := BundleProofs
	if indices == nil {
		mode = BundleFull
		for i := range b.data {
			indices = append(indices, i)
		}
	}
	cp := b.keys.sign(tb, log.Checkpoint{Origin: fuzzOrigin, Size: b.tree.Size(), Hash: b.tree.Hash()})
	var buf bytes.Buffer
	bw, err := NewBundleWriter(&buf, mode, b.keys.vkey, cp, "fuzz")
	require.NoError(tb, err)
	for _, i := range indices {
		var p [][]byte
		if mode == BundleProofs {
			p, err = b.tree.InclusionProof(uint64(i), b.tree.Size())
			require.NoError(tb, err)
		}
		require.NoError(tb, bw.Entry(int64(i), b.tree.LeafHash(uint64(i)), b.data[i], p))
	}
	require.NoError(tb, bw.Close())
	out := buf.Bytes()
	nl := bytes.IndexByte(out, '\n') + 1
	return out[:nl], out[nl:]
}

// FuzzVerifyBundle runs the bundle verifier (docket verify --bundle) on
// arbitrary bytes. With header set, the input follows a valid signed
// header (full or proofs), so the fuzzer reaches the entry lines, the
// proofs, the order checks and the trailer, which it could not sign its
// way to. The property: no panic, a failure is a *BundleError naming a
// line the input has, and a bundle that verifies has at most as many
// entries as lines and agrees with its checkpoint.
func FuzzVerifyBundle(f *testing.F) {
	b := newFuzzBundle(f, 5)
	fullHead, fullRest := b.write(f, nil)
	proofHead, proofRest := b.write(f, []int{1, 3})
	f.Add(fullRest, uint8(1))
	f.Add(proofRest, uint8(2))
	f.Add(append(append([]byte{}, fullHead...), fullRest...), uint8(0))
	f.Add(append(append([]byte{}, proofHead...), proofRest...), uint8(0))
	f.Add(bytes.Replace(fullRest, []byte(`"index":2`), []byte(`"index":3`), 1), uint8(1))
	f.Add(bytes.Replace(proofRest, []byte(`"count":2`), []byte(`"count":1`), 1), uint8(2))
	f.Add([]byte(`{"end":"docket-bundle/v1","count":0,"last":-1,"sha256":""}`+"\n"), uint8(2))
	f.Add([]byte(""), uint8(0))
	f.Add([]byte("{}\n"), uint8(0))
	f.Add([]byte(`{"format":"docket-bundle/v1","mode":"full","key":"","checkpoint":"x"}`+"\n"), uint8(0))
	heads := [][]byte{nil, fullHead, proofHead}
	f.Fuzz(func(t *testing.T, body []byte, header uint8) {
		input := append(append([]byte{}, heads[int(header)%len(heads)]...), body...)
		res, err := VerifyBundle(bytes.NewReader(input), b.keys.vkey, nil)
		lines := int64(bytes.Count(input, []byte("\n")))
		if err != nil {
			var be *BundleError
			require.True(t, errors.As(err, &be), "%v", err)
			require.GreaterOrEqual(t, be.Line, int64(1))
			require.LessOrEqual(t, be.Line, lines+1, "%v", err)
			return
		}
		require.LessOrEqual(t, res.Entries, lines)
		require.Equal(t, fuzzOrigin, res.Origin)
		require.Equal(t, b.tree.Size(), res.Size)
		require.Equal(t, b.tree.Hash(), res.Root)
		if res.Entries > 0 {
			require.Less(t, res.Last, int64(res.Size))
			require.LessOrEqual(t, res.First, res.Last)
		}
	})
}

// FuzzOpenCheckpoint opens any bytes as a signed checkpoint, the way the
// log, `docket verify --remote` and the messages about foreign keys do:
// no panic, and a note that opens is a checkpoint of the expected origin.
func FuzzOpenCheckpoint(f *testing.F) {
	k := newFuzzKeys(f)
	good := k.sign(f, log.Checkpoint{Origin: fuzzOrigin, Size: 3, Hash: bytes.Repeat([]byte{1}, 32)})
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("\n3\n"), []byte("\n4\n"), 1))
	f.Add(k.sign(f, log.Checkpoint{Origin: "other", Size: 0, Hash: nil}))
	if signed, err := note.Sign(&note.Note{Text: "not a checkpoint\n"}, k.signer); err == nil {
		f.Add(signed)
	}
	f.Add([]byte("docket.test/fuzz\n1\nAAAA\n\n— docket.test/fuzz AAAA\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n"))
	l := &Log{verifier: k.v, origin: fuzzOrigin}
	f.Fuzz(func(t *testing.T, signed []byte) {
		_ = signersOf(signed)
		_ = originOf(signed)
		_, _ = parseCheckpointText(signed)
		for _, origin := range []string{"", fuzzOrigin} {
			cp, err := OpenCheckpoint(signed, k.v, origin)
			if err != nil {
				continue
			}
			if origin != "" {
				require.Equal(t, origin, cp.Origin)
			}
			var again log.Checkpoint
			rest, err := again.Unmarshal(cp.Marshal())
			require.NoError(t, err)
			require.Empty(t, rest)
			require.Equal(t, cp, again, "the checkpoint round-trips")
		}
		if cp, err := l.openCheckpoint(signed); err == nil {
			require.Equal(t, fuzzOrigin, cp.Origin)
		}
	})
}

// FuzzCheckpointRoundTrip signs checkpoints built from parts: whatever
// the signer produces opens to the same origin, size and root.
func FuzzCheckpointRoundTrip(f *testing.F) {
	k := newFuzzKeys(f)
	f.Add(fuzzOrigin, uint64(0), []byte{})
	f.Add(fuzzOrigin, uint64(math.MaxUint64), bytes.Repeat([]byte{0xff}, 32))
	f.Add("a b\tc", uint64(7), []byte("x"))
	f.Add("line\nbreak", uint64(1), []byte("x"))
	f.Fuzz(func(t *testing.T, origin string, size uint64, hash []byte) {
		cp := log.Checkpoint{Origin: origin, Size: size, Hash: hash}
		signed, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, k.signer)
		if err != nil {
			return // not a note's text (control characters, invalid UTF-8)
		}
		var plain log.Checkpoint
		if rest, err := plain.Unmarshal(cp.Marshal()); err != nil || len(rest) != 0 {
			// Not a checkpoint (an empty or multi-line origin, an empty
			// root): it must not open as one either.
			_, err := OpenCheckpoint(signed, k.v, "")
			require.Error(t, err)
			return
		}
		if _, err := note.Open(signed, note.VerifierList(k.v)); err != nil {
			// The note package signs some texts it will not open (a tab
			// in the origin): not a checkpoint any log of ours makes.
			return
		}
		got, err := OpenCheckpoint(signed, k.v, origin)
		require.NoError(t, err)
		require.Equal(t, origin, got.Origin)
		require.Equal(t, size, got.Size)
		require.Equal(t, hash, got.Hash)
	})
}

// FuzzParseKeys reads any string as a signer key and as a verifier key:
// no panic, and a signer key that parses derives the verifier key of the
// same name and hash.
func FuzzParseKeys(f *testing.F) {
	k := newFuzzKeys(f)
	f.Add(fuzzSKey)
	f.Add(k.vkey)
	f.Add("PRIVATE+KEY+a+00000000+AQ==")
	f.Add("PRIVATE+KEY+")
	f.Add(" " + fuzzSKey + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		if signer, vkey, err := ParseSignerKey(s); err == nil {
			v, err := note.NewVerifier(vkey)
			require.NoError(t, err)
			require.Equal(t, signer.Name(), v.Name())
			require.Equal(t, signer.KeyHash(), v.KeyHash())
			require.Equal(t, KeyID(vkey), KeyID(vkey))
		}
		_, _ = note.NewVerifier(s)
		_ = KeyID(s)
	})
}

// endless is a reader of prefix, then the byte fill for ever.
type endless struct {
	prefix []byte
	fill   byte
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.prefix)
	e.prefix = e.prefix[n:]
	for i := n; i < len(p); i++ {
		p[i] = e.fill
	}
	return len(p), nil
}

// TestVerifyBundleBoundsLineLength: the bundle parser's memory is bounded
// on arbitrary bytes, which the fuzzer's small inputs cannot show: a line
// without end, as header or as entry, stops the verifier at MaxBundleLine
// bytes with a *BundleError rather than growing without bound.
func TestVerifyBundleBoundsLineLength(t *testing.T) {
	t.Parallel()
	b := newFuzzBundle(t, 2)
	head, _ := b.write(t, nil)
	for _, prefix := range [][]byte{nil, head, append(append([]byte{}, head...), `{"index":0,"prev":-1,"leaf_hash":"`...)} {
		_, err := VerifyBundle(&endless{prefix: prefix, fill: 'A'}, b.keys.vkey, nil)
		var be *BundleError
		require.True(t, errors.As(err, &be), "%v", err)
		require.Contains(t, be.Reason, "longer than")
	}
}
