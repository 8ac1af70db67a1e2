package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Roles elected by advisory lock, one process at a time.
const (
	RoleIntegrator = "integrator"
	RoleRelay      = "relay"
)

// roleLines are the log lines that open and close a term. Both are
// written while the process holds the lock: "elected" after it is
// granted, "stepped down" before the connection that holds it is given
// up (audit.Log.term, notify.Relay.term).
var roleLines = map[string][2]string{
	RoleIntegrator: {"audit integrator elected", "audit integrator stepped down"},
	RoleRelay:      {"notify relay elected", "notify relay stepped down"},
}

// Term is one process's time in a role, read from its log.
type Term struct {
	Role string
	Proc string
	Run  int // which start of the process, from 1
	From time.Time
	To   time.Time
	// Ended says how: "stepped down" (its own line), or "killed" or
	// "stopped" (still open when the run ended; To is when it was
	// signalled, before the lock went with the process).
	Ended string
}

func (t Term) String() string {
	return fmt.Sprintf("%s#%d %s..%s (%s)", t.Proc, t.Run, t.From.Format("15:04:05.000000"), t.To.Format("15:04:05.000000"), t.Ended)
}

// RunEnd is how and when one run of a process ended.
type RunEnd struct {
	At     time.Time
	Killed bool
}

const startMarker = "=== crashtest: start "

// ReadTerms reads the terms of every role from the log of process proc: the
// file Proc writes, with serve logging JSON at level info or lower. ends[i]
// is how run i+1 ended; a term still open then ends there.
func ReadTerms(proc, logFile string, ends []RunEnd) ([]Term, error) {
	f, err := os.Open(logFile)
	if err != nil {
		return nil, fmt.Errorf("crashtest: terms: %w", err)
	}
	defer f.Close()
	tr := &termReader{proc: proc, ends: ends, open: map[string]*Term{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if err := tr.line(sc.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("crashtest: terms: %s: %w", logFile, err)
	}
	if err := tr.endRun(); err != nil {
		return nil, err
	}
	return tr.terms, nil
}

// termReader follows one process's log, line by line: the runs its
// start markers begin, and the terms each run opens and closes.
type termReader struct {
	proc  string
	ends  []RunEnd
	run   int              // the run being read, from 1; 0 before the first marker
	open  map[string]*Term // by role
	terms []Term           // closed
}

// line reads one line of the log: a start marker ends the run before
// and begins the next, a role's line opens or closes its term, and
// anything else is passed over.
func (tr *termReader) line(line []byte) error {
	if bytes.HasPrefix(line, []byte(startMarker)) {
		if err := tr.endRun(); err != nil {
			return err
		}
		tr.run++
		return nil
	}
	if !bytes.HasPrefix(line, []byte("{")) {
		return nil
	}
	var rec struct {
		Time time.Time `json:"time"`
		Msg  string    `json:"msg"`
	}
	if json.Unmarshal(line, &rec) != nil {
		return nil // cut short by a SIGKILL
	}
	for role, l := range roleLines {
		switch rec.Msg {
		case l[0]:
			if tr.open[role] != nil {
				return fmt.Errorf("crashtest: terms: %s run %d elected as %s twice without stepping down", tr.proc, tr.run, role)
			}
			tr.open[role] = &Term{Role: role, Proc: tr.proc, Run: tr.run, From: rec.Time}
		case l[1]:
			tr.close(role, rec.Time, "stepped down")
		}
	}
	return nil
}

// close ends role's open term, if it has one, at at.
func (tr *termReader) close(role string, at time.Time, how string) {
	if t := tr.open[role]; t != nil {
		t.To, t.Ended = at, how
		tr.terms = append(tr.terms, *t)
		delete(tr.open, role)
	}
}

// endRun closes the terms still open when the run ended, when and as
// it ended.
func (tr *termReader) endRun() error {
	if tr.run == 0 {
		return nil
	}
	if tr.run > len(tr.ends) {
		return fmt.Errorf("crashtest: terms: %s run %d has no recorded end", tr.proc, tr.run)
	}
	end := tr.ends[tr.run-1]
	how := "stopped"
	if end.Killed {
		how = "killed"
	}
	for role := range tr.open {
		tr.close(role, end.At, how)
	}
	return nil
}

// CheckTerms reports every pair of terms of one role that overlap: two
// processes acting as integrator, or as relay, at once.
func CheckTerms(terms []Term) []string {
	var problems []string
	byRole := map[string][]Term{}
	for _, t := range terms {
		byRole[t.Role] = append(byRole[t.Role], t)
	}
	roles := make([]string, 0, len(byRole))
	for r := range byRole {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, role := range roles {
		ts := byRole[role]
		sort.Slice(ts, func(i, j int) bool { return ts[i].From.Before(ts[j].From) })
		for i := 1; i < len(ts); i++ {
			for j := 0; j < i; j++ {
				if ts[i].From.Before(ts[j].To) && len(problems) < 50 {
					problems = append(problems, fmt.Sprintf("leader: two %ss at once: %s and %s", role, ts[j], ts[i]))
				}
			}
		}
	}
	return problems
}

// Handover is what followed the death of a role's holder.
type Handover struct {
	Role   string
	Killed Term
	// Next is the first term of the role that began after the kill; zero
	// when none did.
	Next Term
	// Elected is from the kill to Next's start.
	Elected time.Duration
}

// Handovers pairs each term ended by a kill with the next term of its role.
func Handovers(terms []Term) []Handover {
	var hs []Handover
	for _, k := range terms {
		if k.Ended != "killed" {
			continue
		}
		h := Handover{Role: k.Role, Killed: k}
		for _, t := range terms {
			if t.Role == k.Role && !t.From.Before(k.To) && (h.Next.Proc == "" || t.From.Before(h.Next.From)) {
				h.Next = t
			}
		}
		if h.Next.Proc != "" {
			h.Elected = h.Next.From.Sub(k.To)
		}
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Killed.To.Before(hs[j].Killed.To) })
	return hs
}

// Sampler scrapes every running process's /metrics for the two leader
// gauges (docket_audit_integrator_leader, docket_notify_relay_leader) and
// its /v1/audit/checkpoint, round after round, until its context ends.
type Sampler struct {
	Procs    []*Proc
	HC       *http.Client
	Interval time.Duration

	mu        sync.Mutex
	rounds    int
	doubled   map[string]int // consecutive rounds with two holders, by role
	problems  []string
	latest    map[string]*Proc
	latestAt  map[string]time.Time // when the round that last saw a holder of the role began
	notes     map[string]bool
	maxSeen   map[string]int // most holders of a role seen in one round
	scrapeErr int
}

// Run samples until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	s.mu.Lock()
	s.doubled, s.latest, s.notes, s.maxSeen = map[string]int{}, map[string]*Proc{}, map[string]bool{}, map[string]int{}
	s.latestAt = map[string]time.Time{}
	s.mu.Unlock()
	for i := 0; ctx.Err() == nil; i++ {
		s.round(ctx, i)
		select {
		case <-ctx.Done():
		case <-time.After(s.Interval):
		}
	}
}

// sample is one process's leader gauges in a round; p is nil for a
// process that was not running.
type sample struct {
	p       *Proc
	ok      bool
	leaders map[string]bool
}

// round scrapes every running process's gauges and one process's
// checkpoint (each in turn), and records what it saw.
func (s *Sampler) round(ctx context.Context, i int) {
	began := time.Now()
	samples := s.scrape(ctx)
	var note string
	if p := s.Procs[i%len(s.Procs)]; p.Running() {
		note, _ = s.get(ctx, p, "/v1/audit/checkpoint")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.rounds++
	if note != "" {
		s.notes[note] = true
	}
	for _, sm := range samples {
		if sm.p != nil && !sm.ok {
			s.scrapeErr++
		}
	}
	for _, role := range []string{RoleIntegrator, RoleRelay} {
		s.checkHolders(role, began, samples)
	}
}

// scrape reads the gauges of every running process at once.
func (s *Sampler) scrape(ctx context.Context) []sample {
	samples := make([]sample, len(s.Procs))
	var wg sync.WaitGroup
	for k, p := range s.Procs {
		if !p.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls, err := s.gauges(ctx, p)
			samples[k] = sample{p: p, ok: err == nil, leaders: ls}
		}()
	}
	wg.Wait()
	return samples
}

// checkHolders notes who held role in the round that began at began,
// and reports two holders in two rounds running. s.mu is held.
func (s *Sampler) checkHolders(role string, began time.Time, samples []sample) {
	var holders []string
	for _, sm := range samples {
		if sm.ok && sm.leaders[role] {
			holders = append(holders, sm.p.Name)
			s.latest[role], s.latestAt[role] = sm.p, began
		}
	}
	s.maxSeen[role] = max(s.maxSeen[role], len(holders))
	if len(holders) < 2 {
		s.doubled[role] = 0
		return
	}
	// The scrapes of a round are not one instant: a handover between
	// two of them shows both holders once. Two rounds running cannot.
	s.doubled[role]++
	if s.doubled[role] >= 2 && len(s.problems) < 50 {
		s.problems = append(s.problems, fmt.Sprintf("leader: %s gauge at 1 on %v in two rounds running (round %d)", role, holders, s.rounds))
	}
}

func (s *Sampler) get(ctx context.Context, p *Proc, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := s.HC.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("crashtest: %s %s: %d", p.Name, path, resp.StatusCode)
	}
	return string(raw), nil
}

var gaugeNames = map[string]string{
	"docket_audit_integrator_leader": RoleIntegrator,
	"docket_notify_relay_leader":     RoleRelay,
}

// gauges reads which roles p's /metrics says it holds.
func (s *Sampler) gauges(ctx context.Context, p *Proc) (map[string]bool, error) {
	body, err := s.get(ctx, p, "/metrics")
	if err != nil {
		return nil, err
	}
	ls := map[string]bool{}
	found := 0
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if role, known := gaugeNames[name]; ok && known {
			found++
			ls[role] = value == "1"
		}
	}
	if found != len(gaugeNames) {
		return nil, fmt.Errorf("crashtest: %s /metrics lacks a leader gauge", p.Name)
	}
	return ls, nil
}

// Leader is the process that most recently reported holding role; nil
// before any did.
func (s *Sampler) Leader(role string) *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest[role]
}

// HeldSince says whether a round that began after t found a holder of
// every role.
func (s *Sampler) HeldSince(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latestAt[RoleIntegrator].After(t) && s.latestAt[RoleRelay].After(t)
}

// SamplerReport is what the sampler saw.
type SamplerReport struct {
	Rounds, ScrapeErrors int
	MaxHolders           map[string]int
	Problems             []string
	Checkpoints          []string // distinct checkpoint notes served
}

// Report returns what was sampled so far.
func (s *Sampler) Report() SamplerReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := SamplerReport{Rounds: s.rounds, ScrapeErrors: s.scrapeErr, MaxHolders: map[string]int{},
		Problems: append([]string(nil), s.problems...)}
	for k, v := range s.maxSeen {
		r.MaxHolders[k] = v
	}
	for n := range s.notes {
		r.Checkpoints = append(r.Checkpoints, n)
	}
	sort.Strings(r.Checkpoints)
	return r
}

// Vacancies is, by role, the longest time from the role's first term to
// until during which no process held it: "exactly one at a time" is also
// "never none for long".
func Vacancies(terms []Term, until time.Time) map[string]time.Duration {
	byRole := map[string][]Term{}
	for _, t := range terms {
		byRole[t.Role] = append(byRole[t.Role], t)
	}
	out := map[string]time.Duration{}
	for role, ts := range byRole {
		sort.Slice(ts, func(i, j int) bool { return ts[i].From.Before(ts[j].From) })
		held := ts[0].To
		longest := time.Duration(0)
		for _, t := range ts[1:] {
			if t.From.After(held) {
				longest = max(longest, t.From.Sub(held))
			}
			if t.To.After(held) {
				held = t.To
			}
		}
		if until.After(held) {
			longest = max(longest, until.Sub(held))
		}
		out[role] = longest
	}
	return out
}
