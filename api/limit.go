package api

import (
	"container/list"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what one connection, one client address and one token may
// take. Zero values take the defaults below; a negative duration or rate
// turns that bound off.
type Limits struct {
	// ReadHeaderTimeout bounds the arrival of a request's headers. Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the arrival of a whole request, headers and body,
	// so a trickled body is cut. Default 30 s: a 1 MiB body at 35 KB/s.
	// It does not bound the handler: net/http lifts the deadline once the
	// body has been read.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of a request's headers to
	// the end of its reply. Streamed exports push it forward before every
	// chunk, so it bounds a stalled reader rather than a long export.
	// Default 60 s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its next
	// request. Default 2 min.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers. Default 64 KiB.
	MaxHeaderBytes int

	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For is believed; nil trusts none.
	TrustedProxies []netip.Prefix
	// AuthFailureRate is how many failed token checks per second one client
	// address may sustain, after a burst of AuthFailureBurst; past it the
	// address gets 429 before any look-up. Only failures count. Default 1/s
	// and 20.
	AuthFailureRate  float64
	AuthFailureBurst int
	// TokenRate is how many requests per second one token may make, after a
	// burst of TokenBurst (default: one second's worth, at least 1). Zero or
	// negative: no limit, the default.
	TokenRate  float64
	TokenBurst int
	// LimiterKeys bounds each limiter's table of addresses or tokens; the
	// least recently seen is forgotten first. Default 10,000.
	LimiterKeys int
}

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0 // net/http's "no timeout"
		}
	}
	def(&l.ReadHeaderTimeout, 10*time.Second)
	def(&l.ReadTimeout, 30*time.Second)
	def(&l.WriteTimeout, 60*time.Second)
	def(&l.IdleTimeout, 2*time.Minute)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 64 << 10
	}
	if l.AuthFailureRate == 0 {
		l.AuthFailureRate = 1
	}
	if l.AuthFailureBurst <= 0 {
		l.AuthFailureBurst = 20
	}
	if l.TokenRate > 0 && l.TokenBurst <= 0 {
		l.TokenBurst = max(1, int(math.Ceil(l.TokenRate)))
	}
	if l.LimiterKeys <= 0 {
		l.LimiterKeys = 10_000
	}
	return l
}

// HTTPServer is the http.Server that serves s with its limits: `docket
// serve` runs this one, so tests of it exercise the real configuration.
func (s *Server) HTTPServer() *http.Server {
	l := s.limits
	return &http.Server{Handler: s,
		ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout, WriteTimeout: l.WriteTimeout,
		IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)}
}

// ParseTrustedProxies reads a comma- or space-separated list of CIDRs or
// single addresses.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither a CIDR nor an address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// clientKey names the client a request comes from, for rate limits. Behind
// trusted proxies it is the right-most X-Forwarded-For hop that is not a
// trusted proxy: every hop left of it was written by the client and may be
// forged. IPv6 clients are keyed by their /64, which one host usually holds
// whole, so that walking through it does not escape the limit.
func clientKey(remoteAddr string, forwarded []string, trusted []netip.Prefix) string {
	addr, ok := parseHop(remoteAddr)
	if !ok {
		return remoteAddr
	}
	if len(trusted) == 0 || !isTrusted(addr, trusted) {
		return addrKey(addr)
	}
	var hops []string
	for _, v := range forwarded {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			break // garbage from a proxy: keep the nearest address known good
		}
		addr = hop
		if !isTrusted(hop, trusted) {
			break
		}
	}
	return addrKey(addr)
}

// viaTLS says whether the client's request came over TLS: to this server,
// or to a trusted proxy that says so in X-Forwarded-Proto ("https"). The
// header is believed only from a peer in trusted, as X-Forwarded-For is;
// from any other peer it is ignored.
func viaTLS(r *http.Request, trusted []netip.Prefix) bool {
	if r.TLS != nil {
		return true
	}
	addr, ok := parseHop(r.RemoteAddr)
	if !ok || !isTrusted(addr, trusted) {
		return false
	}
	for _, v := range r.Header.Values("X-Forwarded-Proto") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "https") {
				return true
			}
		}
	}
	return false
}

func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func addrKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// keyedLimiters holds one token bucket per key in a table of bounded size:
// when it is full the least recently seen key is forgotten, so address
// churn costs a forgotten bucket, never unbounded memory. A key that keeps
// arriving stays at the front and keeps its state.
type keyedLimiters struct {
	limit rate.Limit
	burst int
	max   int

	mu    sync.Mutex
	order *list.List // of *keyedLimiter, most recent first
	byKey map[string]*list.Element
}

type keyedLimiter struct {
	key string
	lim *rate.Limiter
}

// newKeyedLimiters returns nil, meaning no limit, when perSecond <= 0.
func newKeyedLimiters(perSecond float64, burst, maxKeys int) *keyedLimiters {
	if perSecond <= 0 {
		return nil
	}
	return &keyedLimiters{limit: rate.Limit(perSecond), burst: burst, max: maxKeys,
		order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns key's limiter, making one when create is set.
func (k *keyedLimiters) get(key string, create bool) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.byKey[key]; ok {
		k.order.MoveToFront(e)
		return e.Value.(*keyedLimiter).lim
	}
	if !create {
		return nil
	}
	for k.order.Len() >= k.max {
		oldest := k.order.Back()
		k.order.Remove(oldest)
		delete(k.byKey, oldest.Value.(*keyedLimiter).key)
	}
	kl := &keyedLimiter{key: key, lim: rate.NewLimiter(k.limit, k.burst)}
	k.byKey[key] = k.order.PushFront(kl)
	return kl.lim
}

func (k *keyedLimiters) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.order.Len()
}

// blocked says how long key must wait before its next event is allowed,
// without spending one: zero when it may go on.
func (k *keyedLimiters) blocked(key string, now time.Time) time.Duration {
	if k == nil {
		return 0
	}
	lim := k.get(key, false)
	if lim == nil {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(k.limit) * float64(time.Second))
}

// spend records one event of key, and says whether key is now blocked.
func (k *keyedLimiters) spend(key string, now time.Time) bool {
	if k == nil {
		return false
	}
	lim := k.get(key, true)
	lim.AllowN(now, 1)
	return lim.TokensAt(now) < 1
}

// take spends one event of key if it is allowed now, else answers how long
// to wait and spends nothing.
func (k *keyedLimiters) take(key string, now time.Time) time.Duration {
	if k == nil {
		return 0
	}
	res := k.get(key, true).ReserveN(now, 1)
	if !res.OK() {
		return time.Second
	}
	d := res.DelayFrom(now)
	if d > 0 {
		res.CancelAt(now)
	}
	return d
}

// tooManyRequests is the 429 for a client or token over its limit.
func tooManyRequests(w http.ResponseWriter, wait time.Duration, detail string) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return &httpError{status: http.StatusTooManyRequests, slug: "rate_limited",
		detail: fmt.Sprintf("%s; retry after %d s", detail, secs)}
}
