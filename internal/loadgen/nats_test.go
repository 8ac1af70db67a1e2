package loadgen

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckNATSURLs: the bench watches only a loopback NATS unless told
// otherwise, and every URL of a list counts.
func TestCheckNATSURLs(t *testing.T) {
	require.NoError(t, checkNATSURLs("nats://127.0.0.1:4222", false))
	require.NoError(t, checkNATSURLs("nats://localhost:4222, nats://[::1]:4223", false))
	require.ErrorContains(t, checkNATSURLs("nats://127.0.0.1:4222,nats://nats.example.com:4222", false), "not a loopback")
	require.NoError(t, checkNATSURLs("nats://127.0.0.1:4222,nats://nats.example.com:4222", true))
	require.ErrorContains(t, checkNATSURLs("127.0.0.1", true), "not a URL")
	require.ErrorContains(t, checkNATSURLs("nats://127.0.0.1:4222,", true), "not a URL")
}

// TestJoinSorted: the mix and the statuses print in key order, a
// transport failure (status 0) by that name.
func TestJoinSorted(t *testing.T) {
	require.Equal(t, "appeals=10,claims=5,decisions=70", Mix{"decisions": 70, "claims": 5, "appeals": 10}.String())
	require.Equal(t, "transport:2 201:7 503:1", statuses(map[string]int{"503": 1, "0": 2, "201": 7}))
	require.Equal(t, "", statuses(nil))
}
