package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// BundleError names where a bundle failed verification: the line, and the
// entry's index when the line is an entry (or the entry found missing).
type BundleError struct {
	Line   int64
	Index  int64 // -1 when no entry is concerned
	Reason string
}

func (e *BundleError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("bundle line %d, entry %d: %s", e.Line, e.Index, e.Reason)
	}
	return fmt.Sprintf("bundle line %d: %s", e.Line, e.Reason)
}

// BundleResult describes a bundle that verified.
type BundleResult struct {
	Origin  string
	Size    uint64
	Root    []byte
	Mode    string
	Filter  string
	Entries int64
	// First and Last are the first and last indices in the bundle (-1 when empty).
	First, Last int64
}

// VerifyProgress receives the entries and bytes verified so far.
type VerifyProgress func(entries, bytes int64)

// VerifyBundle checks a bundle against the verifier key alone: the
// checkpoint's signature, every entry's leaf hash, every inclusion proof
// or the recomputed root, the entries' order and count and the header's
// digest. It stops at the first fault in file order and returns a
// *BundleError naming it. Lines are parsed and hashed on every core while
// one goroutine checks their order, so the work per entry that cannot be
// shared is a few comparisons.
func VerifyBundle(r io.Reader, verifierKey string, progress VerifyProgress) (BundleResult, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return BundleResult{}, fmt.Errorf("audit: verifier key: %w", err)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	var scratch []byte
	line, err := readBundleLine(br, &scratch)
	if err != nil {
		return BundleResult{}, &BundleError{Line: 1, Index: -1, Reason: "no header line: " + err.Error()}
	}
	headFail := func(format string, args ...any) error {
		return &BundleError{Line: 1, Index: -1, Reason: fmt.Sprintf(format, args...)}
	}
	var hdr BundleHeader
	if err := strictJSON(line, &hdr); err != nil {
		return BundleResult{}, headFail("bad header: %v", err)
	}
	if hdr.Format != BundleFormat {
		return BundleResult{}, headFail("format %q is not %s", hdr.Format, BundleFormat)
	}
	if hdr.Mode != BundleFull && hdr.Mode != BundleProofs {
		return BundleResult{}, headFail("unknown mode %q", hdr.Mode)
	}
	n, err := note.Open([]byte(hdr.Checkpoint), note.VerifierList(v))
	if err != nil {
		return BundleResult{}, headFail("checkpoint signature does not verify with key %s: %v", v.Name(), err)
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return BundleResult{}, headFail("checkpoint: %v", err)
	}
	if len(cp.Hash) != sha256.Size {
		return BundleResult{}, headFail("checkpoint: root is not a SHA-256 hash")
	}
	seq := &sequencer{
		res: BundleResult{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash, Mode: hdr.Mode, Filter: hdr.Filter, First: -1, Last: -1},
		cp:  cp, full: hdr.Mode == BundleFull, digest: headerDigest(line), prev: -1,
		rng: (&compact.RangeFactory{Hash: fastHasher{}.HashChildren}).NewEmptyRange(0), progress: progress,
		nbytes: int64(len(line)), lineNo: 1,
	}
	return seq.run(br)
}

// MaxBundleLine bounds one line of a bundle: an entry's data, base64,
// is far smaller (a request body is at most 1 MiB), and a hostile file of
// one endless line must not take all the verifier's memory.
const MaxBundleLine = 64 << 20

// readBundleLine reads one whole line, up to MaxBundleLine bytes, into
// scratch when it does not fit the reader's buffer.
func readBundleLine(br *bufio.Reader, scratch *[]byte) ([]byte, error) {
	b, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		*scratch = append((*scratch)[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(*scratch) > MaxBundleLine {
				return nil, fmt.Errorf("a line longer than %d bytes", MaxBundleLine)
			}
			b, err = br.ReadSlice('\n')
			*scratch = append(*scratch, b...)
		}
		b = *scratch
	}
	if err == io.EOF && len(b) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

// lineResult is what a worker learns from one line on its own.
type lineResult struct {
	index, prev int64
	leaf        [sha256.Size]byte
	trailer     bool
	malformed   error
	bad         string // a leaf hash or proof that does not hold
}

// vbatch is a run of consecutive lines, read by the reader, checked by
// one worker, then sequenced in order.
type vbatch struct {
	buf     []byte
	ends    []int
	res     []lineResult
	done    chan struct{}
	readErr error // set on the last batch: io.EOF, or why reading stopped
}

func (b *vbatch) line(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

type sequencer struct {
	res      BundleResult
	cp       log.Checkpoint
	full     bool
	digest   string
	prev     int64
	rng      *compact.Range
	slab     []byte
	lineNo   int64
	nbytes   int64
	progress VerifyProgress
	trailer  *bundleTrailer
}

func (s *sequencer) fail(index int64, format string, args ...any) error {
	return &BundleError{Line: s.lineNo, Index: index, Reason: fmt.Sprintf(format, args...)}
}

// run verifies the bundle in three stages: one goroutine reads lines into
// batches, workers parse and hash batches in any order (the costly part),
// and run sequences them in reading order. Batches are recycled through
// free, which bounds the memory to a few batches however long the bundle.
func (s *sequencer) run(br *bufio.Reader) (BundleResult, error) {
	workers := max(1, runtime.GOMAXPROCS(0))
	depth := 2*workers + 2 // batches in flight: enough to keep every worker fed while the sequencer waits on the oldest
	p := &pipeline{
		free:    make(chan *vbatch, depth),
		work:    make(chan *vbatch, depth),
		ordered: make(chan *vbatch, depth),
		quit:    make(chan struct{}),
	}
	for i := 0; i < cap(p.free); i++ {
		p.free <- &vbatch{done: make(chan struct{}, 1)}
	}
	defer close(p.quit)
	go p.read(br)
	for i := 0; i < workers; i++ {
		go func() {
			var e bundleEntry
			for b := range p.work {
				s.check(b, &e)
				b.done <- struct{}{}
			}
		}()
	}
	for b := range p.ordered {
		<-b.done
		if err := s.sequence(b); err != nil {
			return s.res, err
		}
		if b.readErr != nil {
			return s.res, s.atEnd(b.readErr)
		}
		p.free <- b
	}
	return s.res, errors.New("audit: verify: reader stopped early")
}

// atEnd judges the read error that ended the bundle: the end of input is
// fine once the trailer was seen.
func (s *sequencer) atEnd(readErr error) error {
	if readErr != io.EOF {
		return &BundleError{Line: s.lineNo + 1, Index: -1, Reason: "unreadable: " + readErr.Error()}
	}
	if s.trailer == nil {
		return &BundleError{Line: s.lineNo + 1, Index: -1,
			Reason: fmt.Sprintf("the bundle ends without its trailer (truncated after entry %d)", s.prev)}
	}
	if s.progress != nil {
		s.progress(s.res.Entries, s.nbytes)
	}
	return nil
}

// pipeline holds run's channels: batches go from free to the reader, then
// both to a worker (work) and, in reading order, to the sequencer
// (ordered), which returns them to free.
type pipeline struct {
	free, work, ordered chan *vbatch
	quit                chan struct{}
}

// send hands b on through ch; false when the verification ended first.
func (p *pipeline) send(ch chan<- *vbatch, b *vbatch) bool {
	select {
	case ch <- b:
		return true
	case <-p.quit:
		return false
	}
}

// linesPerBatch is how many lines a worker parses at a time.
const linesPerBatch = 512

// read copies lines into batches until the input ends or fails (the last
// batch carries the error); bufio's slices live only until its next read.
func (p *pipeline) read(br *bufio.Reader) {
	defer close(p.work)
	defer close(p.ordered)
	var scratch []byte
	for {
		var b *vbatch
		select {
		case b = <-p.free:
		case <-p.quit:
			return
		}
		b.buf, b.ends, b.readErr = b.buf[:0], b.ends[:0], nil
		for len(b.ends) < linesPerBatch {
			line, err := readBundleLine(br, &scratch)
			if err != nil {
				b.readErr = err
				break
			}
			b.buf = append(b.buf, line...)
			b.ends = append(b.ends, len(b.buf))
		}
		if !p.send(p.work, b) || !p.send(p.ordered, b) {
			return
		}
		if b.readErr != nil {
			return
		}
	}
}

// check parses and hashes a batch's lines: the work that needs no order.
func (s *sequencer) check(b *vbatch, e *bundleEntry) {
	b.res = slices.Grow(b.res[:0], len(b.ends))[:len(b.ends)]
	for i := range b.ends {
		line, r := b.line(i), &b.res[i]
		*r = lineResult{}
		if bytes.HasPrefix(line, []byte(`{"end":`)) {
			r.trailer = true
			continue
		}
		if err := e.parse(line, !s.full); err != nil {
			r.malformed = err
			r.index = -1
			if rest, err := expect(line, `{"index":`); err == nil {
				if n, _, err := number(rest); err == nil {
					r.index = n
				}
			}
			continue
		}
		r.index, r.prev = e.index, e.prev
		r.leaf = leafHash(e.data)
		switch {
		case !bytes.Equal(r.leaf[:], e.leafHash):
			r.bad = "leaf hash does not match the entry's bytes"
		case s.full || e.index < 0 || uint64(e.index) >= s.cp.Size:
		default:
			if err := proof.VerifyInclusion(fastHasher{}, uint64(e.index), s.cp.Size, r.leaf[:], e.proof, s.cp.Hash); err != nil {
				r.bad = "inclusion proof does not lead to the checkpoint's root: " + err.Error()
			}
		}
	}
}

// sequence checks a batch's lines in order against what came before.
func (s *sequencer) sequence(b *vbatch) error {
	for i := range b.ends {
		s.lineNo++
		s.nbytes += int64(len(b.line(i)))
		r := &b.res[i]
		if s.trailer != nil {
			return s.fail(-1, "data after the trailer")
		}
		if r.trailer {
			if err := s.finish(b.line(i)); err != nil {
				return err
			}
			continue
		}
		if r.malformed != nil {
			idx := r.index
			if idx < 0 {
				idx = s.prev + 1
			}
			return s.fail(idx, "malformed entry line: %v", r.malformed)
		}
		if err := s.inOrder(r); err != nil {
			return err
		}
		if s.full {
			if err := s.appendLeaf(r); err != nil {
				return err
			}
		}
		if s.res.First < 0 {
			s.res.First = r.index
		}
		s.prev = r.index
		s.res.Last = r.index
		s.res.Entries++
		if s.progress != nil && s.res.Entries&0xfff == 0 {
			s.progress(s.res.Entries, s.nbytes)
		}
	}
	return nil
}

// inOrder checks a well-formed line against the one before it and the
// checkpoint: its place in the chain, its index, its hash and proof.
func (s *sequencer) inOrder(r *lineResult) error {
	if r.prev != s.prev {
		if r.prev > s.prev {
			return s.fail(r.prev, "missing or out of order: the line of entry %d says this entry precedes it, but the line before holds entry %d", r.index, s.prev)
		}
		return s.fail(r.index, "out of place: it should follow entry %d, not entry %d (lines reordered or an entry inserted)", r.prev, s.prev)
	}
	if r.index <= s.prev {
		return s.fail(r.index, "index not above the previous entry's %d", s.prev)
	}
	if uint64(r.index) >= s.cp.Size {
		return s.fail(r.index, "index beyond the checkpoint's size %d", s.cp.Size)
	}
	if s.full && r.index != s.prev+1 {
		return s.fail(s.prev+1, "missing: found entry %d where it belongs", r.index)
	}
	if r.bad != "" {
		return s.fail(r.index, "%s", r.bad)
	}
	return nil
}

// appendLeaf adds a full bundle's leaf to the range whose root must be the
// checkpoint's. The range keeps some of the hashes it is given: carve them
// from slabs rather than allocating each.
func (s *sequencer) appendLeaf(r *lineResult) error {
	if len(s.slab) < sha256.Size {
		s.slab = make([]byte, 1024*sha256.Size)
	}
	kept := s.slab[:sha256.Size:sha256.Size]
	s.slab = s.slab[sha256.Size:]
	copy(kept, r.leaf[:])
	if err := s.rng.Append(kept, nil); err != nil {
		return s.fail(r.index, "tree: %v", err)
	}
	return nil
}

// finish checks the trailer and, for a full bundle, the root.
func (s *sequencer) finish(line []byte) error {
	var tr bundleTrailer
	if err := strictJSON(line, &tr); err != nil {
		return s.fail(-1, "bad trailer: %v", err)
	}
	if tr.End != BundleFormat {
		return s.fail(-1, "trailer format %q is not %s", tr.End, BundleFormat)
	}
	if tr.Count != s.res.Entries || tr.Last != s.prev {
		if tr.Last > s.prev {
			return s.fail(tr.Last, "missing at the end: the trailer counts %d entries ending with this one, the bundle has %d ending at %d", tr.Count, s.res.Entries, s.prev)
		}
		return s.fail(s.prev, "the trailer counts %d entries ending at %d; found %d ending at %d", tr.Count, tr.Last, s.res.Entries, s.prev)
	}
	if s.full {
		if uint64(s.res.Entries) != s.cp.Size {
			return s.fail(s.prev+1, "missing: the checkpoint has %d entries, the bundle %d", s.cp.Size, s.res.Entries)
		}
		root := fastHasher{}.EmptyRoot()
		if s.cp.Size > 0 {
			var err error
			if root, err = s.rng.GetRootHash(nil); err != nil {
				return s.fail(-1, "tree: %v", err)
			}
		}
		if !bytes.Equal(root, s.cp.Hash) {
			return s.fail(-1, "the entries' root %s differs from the checkpoint's %s",
				base64.StdEncoding.EncodeToString(root), base64.StdEncoding.EncodeToString(s.cp.Hash))
		}
	}
	if s.digest != tr.SHA256 {
		return s.fail(-1, "the header's digest does not match the trailer's: the header or the trailer was changed")
	}
	s.trailer = &tr
	return nil
}

func leafHash(data []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(data)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// fastHasher is RFC 6962's SHA-256 hasher without the per-call hasher
// allocation of rfc6962.DefaultHasher: verification hashes tens of
// millions of node pairs, and this halves their cost.
type fastHasher struct{}

func (fastHasher) EmptyRoot() []byte {
	h := sha256.Sum256(nil)
	return h[:]
}

func (fastHasher) HashLeaf(leaf []byte) []byte {
	h := leafHash(leaf)
	return h[:]
}

func (fastHasher) HashChildren(l, r []byte) []byte {
	if len(l) != sha256.Size || len(r) != sha256.Size {
		return rfc6962.DefaultHasher.HashChildren(l, r)
	}
	var buf [1 + 2*sha256.Size]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l)
	copy(buf[1+sha256.Size:], r)
	h := sha256.Sum256(buf[:])
	return h[:]
}

func (fastHasher) Size() int { return sha256.Size }

// strictJSON decodes one header or trailer line and insists that it is
// exactly the encoding the writer produces, so that no byte of it can
// change without notice (encoding/json alone ignores case in key names
// and accepts many spellings of one value).
func strictJSON(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	again, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(append(again, '\n'), line) {
		return errors.New("not in canonical form")
	}
	return nil
}

// bundleEntry is one parsed entry line; its slices are reused.
type bundleEntry struct {
	index, prev int64
	leafHash    []byte
	data        []byte
	proof       [][]byte
	proofBuf    []byte
	ends        []int
}

var strictB64 = base64.StdEncoding.Strict()

// parse reads an entry line in exactly the writer's form. The form is
// fixed, so a hand parser is both faster than encoding/json and strict:
// any other spelling of the same values is refused.
func (e *bundleEntry) parse(line []byte, withProof bool) error {
	p := line
	var err error
	if p, err = expect(p, `{"index":`); err != nil {
		return err
	}
	if e.index, p, err = number(p); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if p, err = expect(p, `,"prev":`); err != nil {
		return err
	}
	if e.prev, p, err = number(p); err != nil {
		return fmt.Errorf("prev: %w", err)
	}
	if p, err = expect(p, `,"leaf_hash":"`); err != nil {
		return err
	}
	if e.leafHash, p, err = b64(p, e.leafHash); err != nil {
		return fmt.Errorf("leaf_hash: %w", err)
	}
	if len(e.leafHash) != sha256.Size {
		return errors.New("leaf_hash: not 32 bytes")
	}
	if p, err = expect(p, `,"data":"`); err != nil {
		return err
	}
	if e.data, p, err = b64(p, e.data); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	e.proof = e.proof[:0]
	if withProof {
		if p, err = expect(p, `,"proof":[`); err != nil {
			return err
		}
		if p, err = e.parseProof(p); err != nil {
			return err
		}
		if p, err = expect(p, `]`); err != nil {
			return err
		}
	}
	if !bytes.Equal(p, []byte("}\n")) {
		return errors.New(`want "}" and the end of the line`)
	}
	return nil
}

// parseProof reads the proof's hashes up to its closing bracket. All are
// decoded into one buffer, then sliced: no allocation per hash once the
// buffer has grown.
func (e *bundleEntry) parseProof(p []byte) ([]byte, error) {
	var err error
	e.proofBuf = e.proofBuf[:0]
	ends := e.ends[:0]
	for len(p) > 0 && p[0] == '"' {
		start := len(e.proofBuf)
		var h []byte
		if h, p, err = b64(p[1:], e.proofBuf[start:]); err != nil {
			return nil, fmt.Errorf("proof: %w", err)
		}
		if len(h) != sha256.Size {
			return nil, errors.New("proof: hash not 32 bytes")
		}
		e.proofBuf = append(e.proofBuf[:start], h...)
		ends = append(ends, len(e.proofBuf))
		if len(p) == 0 || p[0] != ',' {
			break
		}
		if p = p[1:]; len(p) == 0 || p[0] != '"' {
			return nil, errors.New("proof: want a hash after ','")
		}
	}
	e.ends = ends
	begin := 0
	for _, end := range ends {
		e.proof = append(e.proof, e.proofBuf[begin:end:end])
		begin = end
	}
	return p, nil
}

func expect(p []byte, s string) ([]byte, error) {
	if !bytes.HasPrefix(p, []byte(s)) {
		return nil, fmt.Errorf("want %s", s)
	}
	return p[len(s):], nil
}

// number reads a canonical decimal integer (no leading zeros or plus).
func number(p []byte) (int64, []byte, error) {
	i := 0
	if i < len(p) && p[i] == '-' {
		i++
	}
	j := i
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		j++
	}
	if j == i || (p[i] == '0' && j-i > 1) || (i == 1 && p[1] == '0') {
		return 0, nil, errors.New("not a canonical integer")
	}
	n, err := strconv.ParseInt(string(p[:j]), 10, 64)
	if err != nil {
		return 0, nil, err
	}
	return n, p[j:], nil
}

// b64 decodes standard, strictly padded base64 up to the closing quote
// into dst's storage and returns the rest after the quote.
func b64(p []byte, dst []byte) ([]byte, []byte, error) {
	end := bytes.IndexByte(p, '"')
	if end < 0 {
		return nil, nil, errors.New("unterminated string")
	}
	n := strictB64.DecodedLen(end)
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	m, err := strictB64.Decode(dst, p[:end])
	if err != nil {
		return nil, nil, err
	}
	return dst[:m], p[end+1:], nil
}
