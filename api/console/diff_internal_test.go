package console

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDiffLines(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		old, new string
		want     []diffLine
	}{
		{"a\nb\nc", "a\nb\nc", []diffLine{{"same", "a"}, {"same", "b"}, {"same", "c"}}},
		{"a\nb\nc", "a\nB\nc", []diffLine{{"same", "a"}, {"del", "b"}, {"add", "B"}, {"same", "c"}}},
		{"a\nc", "a\nb\nc", []diffLine{{"same", "a"}, {"add", "b"}, {"same", "c"}}},
		{"a\nb\nc", "c", []diffLine{{"del", "a"}, {"del", "b"}, {"same", "c"}}},
		{"x\na\ny\nb", "a\nz\nb", []diffLine{{"del", "x"}, {"same", "a"}, {"del", "y"}, {"add", "z"}, {"same", "b"}}},
	} {
		require.Equal(t, c.want, diffLines(c.old, c.new), "%q -> %q", c.old, c.new)
	}
	// Past the table's bound the texts are shown removed and added whole.
	big := strings.Repeat("l\n", 3000)
	out := diffLines("head\n"+big+"x", "head\n"+strings.Repeat("m\n", 3000)+"y")
	require.Equal(t, diffLine{"same", "head"}, out[0])
	require.Len(t, out, 1+3001+3001)
}
