package audit_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/docket-dev/docket/audit"
)

// BenchmarkVerifyBundle measures offline verification of a full bundle
// (recomputing the root) and of a slice with a proof per entry, in
// entries/s. Entries are about 700 bytes, the size of a decision's entry.
func BenchmarkVerifyBundle(b *testing.B) {
	const n = 200_000
	m := newMemLogPadded(b, n, 500)
	full := m.bundle(b, nil)
	var every []int
	for i := 0; i < n; i += 4 {
		every = append(every, i)
	}
	slice := m.bundle(b, every)
	for _, c := range []struct {
		name    string
		bundle  []byte
		entries int
	}{{"full", full, n}, {"proofs", slice, len(every)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.bundle)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				res, err := audit.VerifyBundle(bytes.NewReader(c.bundle), m.vkey, nil)
				require.NoError(b, err)
				require.EqualValues(b, c.entries, res.Entries)
			}
			b.ReportMetric(float64(c.entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
