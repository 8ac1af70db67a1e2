package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAFailedExportLeavesNoFile: a file cut short would pass for a smaller
// export, so a failed one is removed and a finished one kept.
func TestAFailedExportLeavesNoFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, failed := range []bool{true, false} {
		path := filepath.Join(dir, map[bool]string{true: "failed", false: "done"}[failed])
		out, err := createOutput(nil, path)
		require.NoError(t, err)
		_, err = out.Write([]byte("line\n"))
		require.NoError(t, err)
		require.NoError(t, out.finish(failed))
		require.NoError(t, out.finish(true), "finishing twice does nothing")
		_, err = os.Stat(path)
		if failed {
			require.ErrorIs(t, err, os.ErrNotExist)
		} else {
			require.NoError(t, err)
		}
	}
	var stdout bytes.Buffer
	out, err := createOutput(&stdout, "-")
	require.NoError(t, err)
	_, _ = out.Write([]byte("x"))
	require.NoError(t, out.finish(true))
	require.Equal(t, "x", stdout.String())
}
