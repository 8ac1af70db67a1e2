package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeAppliesItsLimits runs the real program with tight limits from
// the environment: a trickled body is cut, and guessed tokens get 429.
func TestServeAppliesItsLimits(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{"DOCKET_READ_TIMEOUT": "1s",
		"DOCKET_AUTH_FAILURE_RATE": "0.01", "DOCKET_AUTH_FAILURE_BURST": "3"})
	admin := s.token("--role", "admin", "--name", "ada")

	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	body := `{"title": "Slow", "text": "` + strings.Repeat("x", 200) + `"}`
	_, err = fmt.Fprintf(conn, "PUT /v1/policies/slow HTTP/1.1\r\nHost: docket\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", admin, len(body))
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 100 ms: 20 s for the whole body
		for i := range len(body) {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "a trickled body was neither answered nor cut within 10 s")
	if err == nil {
		resp.Body.Close()
		require.Contains(t, []int{400, 408}, resp.StatusCode)
	}

	var last int
	var retry string
	for i := range 4 {
		req, err := http.NewRequest("GET", s.url+"/v1/policies", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer guess-%d", i))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		last, retry = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	require.Equal(t, http.StatusTooManyRequests, last)
	require.NotEmpty(t, retry)
}
