package loadgen

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The operations a mix can name.
const (
	OpDecisions = "decisions" // POST /v1/decisions
	OpAppeals   = "appeals"   // POST /v1/decisions/{id}/appeals on the bench's own decisions
	OpClaims    = "claims"    // POST /v1/appeals/claim, then resolve what was claimed
	OpReads     = "reads"     // GET /v1/decisions/{id}, every fifth a list
)

// StandardMix is the mix `make bench` runs.
const StandardMix = "decisions=70,appeals=10,claims=10,reads=10"

// Advertiser is an advertiser id and a token bound to it.
type Advertiser struct {
	ID    string
	Token string
}

// Tokens are the credentials the bench acts with. Names must differ between
// the enforcer and the reviewers: the service refuses a reviewer who made
// the decision under appeal.
type Tokens struct {
	Admin       string
	Enforcer    string
	Reviewers   []string
	Advertisers []Advertiser
}

// Config is one run.
type Config struct {
	URL      string
	Duration time.Duration
	Clients  int
	Mix      Mix
	Tokens   Tokens
	// PolicyCode is the policy the bench's decisions cite; it is created
	// (or left unchanged) with the admin token before the run.
	PolicyCode string
	// PollInterval is how often the checkpoint is fetched; default 25 ms.
	PollInterval time.Duration
	// NATSURL, when set, reads stream DOCKET for the notification lag.
	NATSURL string
	// NATSAuth, when set, gives the connect options with the consumer's
	// credentials (a read-only identity suffices); it is called once the
	// service is up, since that may be what creates them.
	NATSAuth func() ([]nats.Option, error)
	// AllowRemote permits a non-loopback URL; without it the bench refuses.
	AllowRemote bool
	Logger      *slog.Logger
}

// Mix is a weight per operation.
type Mix map[string]int

// ParseMix reads "decisions=70,appeals=10,...".
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("mix: %q: want op=weight", part)
		}
		switch k {
		case OpDecisions, OpAppeals, OpClaims, OpReads:
		default:
			return nil, fmt.Errorf("mix: unknown operation %q (want decisions, appeals, claims, reads)", k)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("mix: %q: weight must be a non-negative integer", part)
		}
		m[k] = n
	}
	if m.total() == 0 {
		return nil, errors.New("mix: no operation has weight")
	}
	return m, nil
}

func (m Mix) total() int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

func (m Mix) String() string {
	return joinSorted(m, ",", func(k string, v int) string { return k + "=" + strconv.Itoa(v) })
}

// joinSorted joins part(k, m[k]) for every key of m, in key order.
func joinSorted(m map[string]int, sep string, part func(k string, v int) string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, part(k, m[k]))
	}
	return strings.Join(parts, sep)
}

// picker draws operations in proportion to their weights.
type picker struct {
	ops   []string
	cum   []int
	total int
}

func newPicker(m Mix) picker {
	var p picker
	for _, op := range []string{OpDecisions, OpAppeals, OpClaims, OpReads} {
		if w := m[op]; w > 0 {
			p.total += w
			p.ops = append(p.ops, op)
			p.cum = append(p.cum, p.total)
		}
	}
	return p
}

func (p picker) pick(r *rand.Rand) string {
	n := r.IntN(p.total)
	for i, c := range p.cum {
		if n < c {
			return p.ops[i]
		}
	}
	return p.ops[len(p.ops)-1]
}

// CheckURL refuses anything but an http(s) URL on a loopback host unless
// remote targets are explicitly allowed: a load generator pointed at the
// wrong host is an attack.
func CheckURL(raw string, allowRemote bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("url %q: want http or https", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url %q: no host", raw)
	}
	if allowRemote || IsLoopback(u.Hostname()) {
		return u, nil
	}
	return nil, fmt.Errorf("url %q: host is not a loopback address; pass --allow-remote to load it anyway", raw)
}

// IsLoopback reports whether host names this machine without resolving
// anything but "localhost".
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pool holds the bench's decisions: some still to be appealed, and a ring
// of recent ones to read.
type pool struct {
	mu         sync.Mutex
	unappealed []decisionRef
	recent     []decisionRef
	next       int
}

type decisionRef struct {
	id  string
	adv int
}

const recentSize = 4096

func (p *pool) add(d decisionRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A bounded backlog: appeals only need some decisions, not all.
	if len(p.unappealed) < 100000 {
		p.unappealed = append(p.unappealed, d)
	}
	if len(p.recent) < recentSize {
		p.recent = append(p.recent, d)
	} else {
		p.recent[p.next] = d
		p.next = (p.next + 1) % recentSize
	}
}

// takeUnappealed returns the newest unappealed decision; newest first so
// that appeals land well inside any appeal window.
func (p *pool) takeUnappealed() (decisionRef, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.unappealed)
	if n == 0 {
		return decisionRef{}, false
	}
	d := p.unappealed[n-1]
	p.unappealed = p.unappealed[:n-1]
	return d, true
}

func (p *pool) random(r *rand.Rand) (decisionRef, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.recent) == 0 {
		return decisionRef{}, false
	}
	return p.recent[r.IntN(len(p.recent))], true
}

func newHTTPClient(clients int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = clients * 2
	tr.MaxIdleConnsPerHost = clients * 2
	tr.MaxConnsPerHost = 0
	tr.Proxy = nil // traffic goes to the given URL and nowhere else
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: tr,
		// Following a redirect could send load to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
