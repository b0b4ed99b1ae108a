// Per-path overhead benchmark, one path per process so maxrss is the path's:
//
//	BARRAGE_OVERHEAD_PATH=doall|results|roundtripper|nethttp [BARRAGE_OVERHEAD_N=50000]
//	BARRAGE_OVERHEAD_URL=https://127.0.0.1:PORT/v1/chat/completions BARRAGE_OVERHEAD_CA=ca.pem
//
// (a mock started outside, so its CPU is not counted). Prints one line:
// path, requests, seconds, req/s, client CPU us per request, maxrss.
package barrage_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

func TestOverheadPath(t *testing.T) {
	path := os.Getenv("BARRAGE_OVERHEAD_PATH")
	if path == "" {
		t.Skip("set BARRAGE_OVERHEAD_PATH (see overhead_test.go)")
	}
	url, caFile := os.Getenv("BARRAGE_OVERHEAD_URL"), os.Getenv("BARRAGE_OVERHEAD_CA")
	n, _ := strconv.Atoi(os.Getenv("BARRAGE_OVERHEAD_N"))
	if n <= 0 {
		n = 50000
	}
	const inflight = 500
	body := []byte(`{"model":"mock","messages":[{"role":"user","content":"hello"}]}`)
	var c *barrage.Client
	var hc *http.Client
	switch path {
	case "doall", "results", "roundtripper":
		var err error
		c, err = barrage.New(barrage.Options{MaxInflight: inflight, MaxConnsPerHost: inflight, CAFile: caFile})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hc = &http.Client{Transport: c.Transport()}
	case "nethttp":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = inflight, inflight, inflight
		hc = &http.Client{Transport: tr}
	default:
		t.Fatalf("path %q", path)
	}
	reqs := func(k int) []*barrage.Request {
		rs := make([]*barrage.Request, k)
		for i := range rs {
			rs[i] = &barrage.Request{URL: url, Body: body, Headers: []barrage.Header{{"Content-Type", "application/json"}}}
		}
		return rs
	}
	viaHTTP := func(k int) error {
		errc := make(chan error, inflight)
		for g := 0; g < inflight; g++ {
			go func(g int) {
				for j := g; j < k; j += inflight {
					resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						errc <- err
						return
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || len(b) == 0 {
						errc <- fmt.Errorf("status %d, %d bytes, %v", resp.StatusCode, len(b), err)
						return
					}
				}
				errc <- nil
			}(g)
		}
		var first error
		for g := 0; g < inflight; g++ {
			if err := <-errc; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	run := func(k int) error {
		switch path {
		case "doall":
			_, errs := c.DoAll(context.Background(), reqs(k))
			for _, e := range errs {
				if e != nil {
					return e
				}
			}
		case "results":
			for r := range c.Results(context.Background(), reqs(k)) {
				if r.Err != nil {
					return r.Err
				}
			}
		default:
			return viaHTTP(k)
		}
		return nil
	}
	if err := run(inflight * 2); err != nil { // warm: connections open
		t.Fatal(err)
	}
	cpu0, t0 := cpuUs(), time.Now()
	if err := run(n); err != nil {
		t.Fatal(err)
	}
	cpu, el := cpuUs()-cpu0, time.Since(t0)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("path=%s requests=%d seconds=%.2f req_per_s=%.0f cpu_us_per_req=%.1f maxrss_kb=%d\n",
		path, n, el.Seconds(), float64(n)/el.Seconds(), float64(cpu)/float64(n), ru.Maxrss)
}
