package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jmoiron/sqlx"
	"github.com/transparency-dev/formats/log"
)

// A bundle is one file an auditor verifies with nothing but the log's
// public key: no database, no network. It is line-oriented UTF-8, every
// line ending in "\n":
//
//	line 1      header:  {"format":"docket-bundle/v1","mode":"full"|"proofs","key":KEY,"checkpoint":NOTE[,"filter":TEXT]}
//	lines 2..   entries: {"index":I,"prev":P,"leaf_hash":H,"data":D}                  (mode full)
//	                     {"index":I,"prev":P,"leaf_hash":H,"data":D,"proof":[H,...]}  (mode proofs)
//	last line   trailer: {"end":"docket-bundle/v1","count":N,"last":L,"sha256":S}
//
// KEY is the note verifier key (name+hash+base64key) the producer saw; the
// auditor checks against a key obtained independently. NOTE is the signed
// C2SP checkpoint. I is the leaf index, P the index of the entry on the
// line before (-1 on the first), D the entry's exact bytes and H hashes,
// all standard base64. In mode full the entries are 0..size-1 and the
// root is recomputed from them; in mode proofs each entry carries its
// RFC 6962 inclusion proof against the checkpoint (the hashes of a C2SP
// tlog-proof). N counts entry lines, L is the last index (-1 when none)
// and S is SHA-256 of the header line.
//
// The signature, leaf hashes, proofs and recomputed root make rewriting
// an entry detectable by anyone; "prev", the count and "last" make a
// dropped or reordered line detectable and nameable even where the Merkle
// proofs alone would still hold (a filtered slice). Entry lines are read
// in exactly the form written, so every byte of them is checked; the
// digest extends that to the header's unsigned parts (the key and filter
// texts). None of this stops a forger who rewrites the unsigned parts
// consistently: what the bundle proves is that each entry is in the signed
// log at its index, and, for a full bundle, that the log is exactly these entries.
const BundleFormat = "docket-bundle/v1"

// Bundle modes.
const (
	BundleFull   = "full"
	BundleProofs = "proofs"
)

// BundleHeader is a bundle's first line.
type BundleHeader struct {
	Format     string `json:"format"`
	Mode       string `json:"mode"`
	Key        string `json:"key"`
	Checkpoint string `json:"checkpoint"`
	Filter     string `json:"filter,omitempty"`
}

type bundleTrailer struct {
	End    string `json:"end"`
	Count  int64  `json:"count"`
	Last   int64  `json:"last"`
	SHA256 string `json:"sha256"`
}

// BundleWriter writes a bundle line by line. It keeps no entries, only the
// running digest, so a bundle of any size costs constant memory.
type BundleWriter struct {
	w     *bufio.Writer
	head  []byte
	mode  string
	size  uint64
	count int64
	last  int64
	buf   []byte
}

// NewBundleWriter writes the header. checkpoint is the signed note the
// entries are proven against; mode is BundleFull or BundleProofs.
func NewBundleWriter(w io.Writer, mode, key string, checkpoint []byte, filter string) (*BundleWriter, error) {
	cp, err := parseCheckpointText(checkpoint)
	if err != nil {
		return nil, err
	}
	if mode != BundleFull && mode != BundleProofs {
		return nil, fmt.Errorf("audit: bundle mode %q", mode)
	}
	bw := &BundleWriter{w: bufio.NewWriterSize(w, 256<<10), mode: mode, size: cp.Size, last: -1}
	line, err := json.Marshal(BundleHeader{Format: BundleFormat, Mode: mode, Key: key, Checkpoint: string(checkpoint), Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("audit: bundle header: %w", err)
	}
	bw.head = append(line, '\n')
	return bw, bw.line(bw.head)
}

func (bw *BundleWriter) line(b []byte) error {
	if _, err := bw.w.Write(b); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	return nil
}

// Entry writes one entry; proof is required in mode proofs and ignored in mode full.
func (bw *BundleWriter) Entry(index int64, leafHash, data []byte, proof [][]byte) error {
	return bw.entry(index, base64.StdEncoding.AppendEncode(nil, leafHash), data, proof)
}

// entry takes the leaf hash in base64, as exports read it.
func (bw *BundleWriter) entry(index int64, leafHashB64, data []byte, proof [][]byte) error {
	// An entry the checkpoint does not cover could never verify: refuse it
	// here rather than hand an auditor a bundle that fails.
	if index < 0 || uint64(index) >= bw.size || index <= bw.last {
		return fmt.Errorf("audit: bundle entry %d: outside the checkpoint (size %d) or out of order", index, bw.size)
	}
	b := bw.buf[:0]
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, index, 10)
	b = append(b, `,"prev":`...)
	b = strconv.AppendInt(b, bw.last, 10)
	b = append(b, `,"leaf_hash":"`...)
	b = append(b, leafHashB64...)
	b = append(b, `","data":"`...)
	b = base64.StdEncoding.AppendEncode(b, data)
	b = append(b, '"')
	if bw.mode == BundleProofs {
		b = append(b, `,"proof":[`...)
		for i, p := range proof {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, p)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	b = append(b, "}\n"...)
	bw.buf = b
	bw.count++
	bw.last = index
	return bw.line(b)
}

// Close writes the trailer and flushes.
func (bw *BundleWriter) Close() error {
	line, err := json.Marshal(bundleTrailer{End: BundleFormat, Count: bw.count, Last: bw.last,
		SHA256: headerDigest(bw.head)})
	if err != nil {
		return fmt.Errorf("audit: bundle trailer: %w", err)
	}
	if _, err := bw.w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	if err := bw.w.Flush(); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	return nil
}

// BundleSource is what a bundle needs from the log besides its entries.
type BundleSource struct {
	// Checkpoint is the signed checkpoint note the bundle is pinned to.
	Checkpoint []byte
	// Key is the log's note verifier key.
	Key string
	// InclusionProof proves index in the tree of size; needed unless the
	// bundle holds the whole tree.
	InclusionProof func(ctx context.Context, index, size uint64) ([][]byte, error)
}

// BundleStats says what WriteBundle wrote.
type BundleStats struct {
	Mode    string
	Size    uint64
	Entries int64
}

// WriteBundle writes a bundle of the entries f selects, pinned to the
// source's checkpoint. A filter that keeps every entry of the tree makes a
// full bundle (no proofs: the verifier recomputes the root); anything else
// carries one inclusion proof per entry. progress, when set, is called
// after each entry with the count so far.
func WriteBundle(ctx context.Context, db *sqlx.DB, w io.Writer, f ExportFilter, filter string, src BundleSource, progress func(n int64)) (BundleStats, error) {
	cp, err := parseCheckpointText(src.Checkpoint)
	if err != nil {
		return BundleStats{}, err
	}
	mode := BundleProofs
	if f.Indexed() && f.FromIndex == 0 && (f.ToIndex == nil || *f.ToIndex >= int64(cp.Size)) {
		mode = BundleFull
	}
	if mode == BundleProofs && src.InclusionProof == nil {
		return BundleStats{}, errors.New("audit: bundle of a slice needs inclusion proofs")
	}
	bw, err := NewBundleWriter(w, mode, src.Key, src.Checkpoint, filter)
	if err != nil {
		return BundleStats{}, err
	}
	err = Export(ctx, db, f, int64(cp.Size), Narrow, func(r *Row) error {
		var proof [][]byte
		if mode == BundleProofs {
			p, err := src.InclusionProof(ctx, uint64(r.Index), cp.Size)
			if err != nil {
				return fmt.Errorf("audit: bundle: proof of %d: %w", r.Index, err)
			}
			proof = p
		}
		if err := bw.entry(r.Index, r.LeafHash, r.Data, proof); err != nil {
			return err
		}
		if progress != nil {
			progress(bw.count)
		}
		return nil
	})
	if err != nil {
		return BundleStats{}, err
	}
	if mode == BundleFull && uint64(bw.count) != cp.Size {
		return BundleStats{}, fmt.Errorf("audit: bundle: the log holds %d of the checkpoint's %d entries", bw.count, cp.Size)
	}
	if err := bw.Close(); err != nil {
		return BundleStats{}, err
	}
	return BundleStats{Mode: mode, Size: cp.Size, Entries: bw.count}, nil
}

func headerDigest(line []byte) string {
	sum := sha256.Sum256(line)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// parseCheckpointText reads the checkpoint body of a signed note without
// checking the signature (the producer side trusts its own database).
func parseCheckpointText(note []byte) (log.Checkpoint, error) {
	var cp log.Checkpoint
	if _, err := cp.Unmarshal(note); err != nil {
		return cp, fmt.Errorf("audit: bundle checkpoint: %w", err)
	}
	return cp, nil
}

// describeFilter renders a filter for a bundle's header, for people.
func describeFilter(f ExportFilter) string {
	var b bytes.Buffer
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + v)
	}
	if f.FromIndex > 0 {
		add("from_index", strconv.FormatInt(f.FromIndex, 10))
	}
	if f.ToIndex != nil {
		add("to_index", strconv.FormatInt(*f.ToIndex, 10))
	}
	if !f.From.IsZero() {
		add("from", f.From.UTC().Format("2006-01-02T15:04:05.999999999Z"))
	}
	if !f.To.IsZero() {
		add("to", f.To.UTC().Format("2006-01-02T15:04:05.999999999Z"))
	}
	for _, t := range f.Types {
		add("type", t)
	}
	for _, k := range f.keyNames() {
		add(k, f.Keys[k])
	}
	return b.String()
}

// String describes the filter in one line (key=value pairs).
func (f ExportFilter) String() string { return describeFilter(f) }
