package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/docket-dev/docket/internal/oapitest"
)

// TestMain routes every request the end-to-end tests make with
// http.DefaultClient (http.Get included) through a transport that checks
// each exchange against the
// /openapi.json the real program serves: an answer the document does not
// describe, or a request it accepted that the document refuses, fails the
// run, naming the exchange.
func TestMain(m *testing.M) {
	d := &driftLog{base: http.DefaultTransport, docs: map[string]*oapitest.Validator{}}
	// DefaultTransport itself stays an *http.Transport: loadgen clones it.
	http.DefaultClient.Transport = d
	code := m.Run()
	if n := d.report(os.Stderr); n > 0 && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// driftLog checks exchanges per host against the document that host
// serves, and keeps what did not match.
type driftLog struct {
	base http.RoundTripper
	mu   sync.Mutex
	docs map[string]*oapitest.Validator // nil: the host serves no document
	seen []string
}

func (d *driftLog) RoundTrip(req *http.Request) (*http.Response, error) {
	v := d.validator(req)
	if v == nil {
		return d.base.RoundTrip(req)
	}
	return v.Transport(d.base, d.add).RoundTrip(req)
}

func (d *driftLog) add(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, msg)
}

// validator loads the host's /openapi.json the first time it answers one.
func (d *driftLog) validator(req *http.Request) *oapitest.Validator {
	if req.URL.Path == "/openapi.json" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	host := req.URL.Scheme + "://" + req.URL.Host
	if v, ok := d.docs[host]; ok {
		return v
	}
	get, err := http.NewRequest("GET", host+"/openapi.json", nil)
	if err != nil {
		return nil
	}
	resp, err := d.base.RoundTrip(get)
	if err != nil {
		return nil // not up yet: try again next time
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		d.docs[host] = nil
		return nil
	}
	v, err := oapitest.Cached(body)
	if err != nil {
		d.seen = append(d.seen, fmt.Sprintf("%s/openapi.json: %v", host, err))
	}
	d.docs[host] = v
	return v
}

func (d *driftLog) report(w io.Writer) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.seen {
		fmt.Fprintln(w, "openapi drift:", s)
	}
	return len(d.seen)
}
