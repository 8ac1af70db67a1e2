package crashtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// logOf writes a serve log as Proc and `docket serve` (JSON) write it.
func logOf(t *testing.T, lines ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "serve.log")
	require.NoError(t, os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return f
}

func line(at time.Time, msg string) string {
	return `{"time":"` + at.Format(time.RFC3339Nano) + `","level":"INFO","msg":"` + msg + `"}`
}

// The term check finds two holders at once, and a handover is measured
// from the kill to the successor's election.
func TestTermsFromLogs(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// a leads both, is killed at 1000; b takes the integrator at 1200
	// and the relay at 1300, then steps down from the relay at 2000 and
	// c takes it at 2100. a's second run stays a standby.
	a := logOf(t, startMarker+"1 of a", line(at(10), "audit integrator elected"), line(at(20), "notify relay elected"),
		`{"time":"`+at(900).Format(time.RFC3339Nano)+`","level":"INFO","msg":"ht`, // cut by the kill
		startMarker+"2 of a", line(at(1500), "http"))
	b := logOf(t, startMarker+"1 of b", line(at(1200), "audit integrator elected"), line(at(1300), "notify relay elected"),
		line(at(2000), "notify relay stepped down"), line(at(2050), "audit integrator stepped down"))
	c := logOf(t, startMarker+"1 of c", line(at(2100), "notify relay elected"), line(at(2101), "audit integrator elected"))
	stop := RunEnd{At: at(3000)}
	var terms []Term
	for _, p := range []struct {
		name, log string
		ends      []RunEnd
	}{{"a", a, []RunEnd{{At: at(1000), Killed: true}, stop}}, {"b", b, []RunEnd{stop}}, {"c", c, []RunEnd{stop}}} {
		ts, err := ReadTerms(p.name, p.log, p.ends)
		require.NoError(t, err)
		terms = append(terms, ts...)
	}
	require.Len(t, terms, 6)
	require.Empty(t, CheckTerms(terms))

	hs := Handovers(terms)
	require.Len(t, hs, 2)
	for _, h := range hs {
		require.Equal(t, "b", h.Next.Proc)
		require.Equal(t, map[string]time.Duration{RoleIntegrator: 200 * time.Millisecond, RoleRelay: 300 * time.Millisecond}[h.Role], h.Elected)
	}

	require.Equal(t, map[string]time.Duration{RoleIntegrator: 200 * time.Millisecond, RoleRelay: 300 * time.Millisecond}, Vacancies(terms, at(3000)))
	require.Equal(t, 2*time.Second, Vacancies(terms, at(5000))[RoleRelay], "the last term ended at 3000")

	// Without the lock: c elected as relay while b still is.
	early := logOf(t, startMarker+"1 of c", line(at(1900), "notify relay elected"))
	ts, err := ReadTerms("c", early, []RunEnd{stop})
	require.NoError(t, err)
	problems := CheckTerms(append(terms[:4:4], ts...))
	require.Len(t, problems, 1)
	require.Contains(t, problems[0], "leader: two relays at once: b#1 10:00:01.300000..10:00:02.000000 (stepped down) and c#1 10:00:01.900000")

	// A run whose end was not recorded is an error, not a term left open.
	_, err = ReadTerms("a", a, []RunEnd{{At: at(1000), Killed: true}})
	require.ErrorContains(t, err, "a run 2 has no recorded end")
}
