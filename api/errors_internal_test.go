package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAbandonedRequestIsNotAnError: a request whose client went away
// fails with the context's error; that is logged at info, not as a
// failure of the service, while the same failure with the client still
// there is an error.
func TestAbandonedRequestIsNotAnError(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := &Server{logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	fail := errors.New("sql: transaction has already been committed or rolled back")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.writeError(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/decisions", nil).WithContext(ctx), fail)
	require.Contains(t, buf.String(), `"level":"INFO","msg":"request abandoned by the client"`)
	require.NotContains(t, buf.String(), `"level":"ERROR"`)

	buf.Reset()
	rec := httptest.NewRecorder()
	s.writeError(rec, httptest.NewRequest("POST", "/v1/decisions", nil), fail)
	require.Equal(t, 500, rec.Code)
	require.Contains(t, buf.String(), `"level":"ERROR","msg":"request failed"`)
}
