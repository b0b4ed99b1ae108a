package barrage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

type mock struct {
	url    string
	caFile string
	cmd    *exec.Cmd
}

func mockPath() string {
	if p := os.Getenv("BARRAGE_MOCKSERVER"); p != "" {
		return p
	}
	return filepath.Join("..", "..", "build", "mockserver", "barrage-mockserver")
}

// startMock runs barrage-mockserver on a free port with its CA in a temp dir.
func startMock(t testing.TB, extra ...string) *mock {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	args := append([]string{"--port", "0", "--write-ca", ca}, extra...)
	cmd := exec.Command(mockPath(), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", mockPath(), err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening on ") {
				lines <- strings.TrimPrefix(sc.Text(), "listening on ")
			}
		}
	}()
	select {
	case base := <-lines:
		return &mock{url: base + "/v1/chat/completions", caFile: ca, cmd: cmd}
	case <-time.After(10 * time.Second):
		t.Fatal("mock server did not start")
	}
	return nil
}

func chat(url, msg string, headers ...barrage.Header) *barrage.Request {
	body, _ := json.Marshal(map[string]interface{}{
		"model":    "mock",
		"messages": []map[string]string{{"role": "user", "content": msg}},
	})
	return &barrage.Request{URL: url, Body: body,
		Headers: append([]barrage.Header{{"Content-Type", "application/json"}}, headers...)}
}

func content(t testing.TB, body []byte) string {
	var v struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &v); err != nil || len(v.Choices) == 0 {
		t.Fatalf("bad body %q: %v", body, err)
	}
	return v.Choices[0].Message.Content
}

func newClient(t testing.TB, m *mock, opts barrage.Options) *barrage.Client {
	t.Helper()
	opts.CAFile = m.caFile
	c, err := barrage.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDoAll1000(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxInflight: 100, MaxConnsPerHost: 100})
	const n = 1000
	reqs := make([]*barrage.Request, n)
	for i := range reqs {
		reqs[i] = chat(m.url, fmt.Sprintf("question number %d", i))
	}
	resps, errs := c.DoAll(context.Background(), reqs)
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		r := resps[i]
		if r.Status != 200 || r.Attempts < 1 || r.Total <= 0 {
			t.Fatalf("request %d: status %d attempts %d total %v", i, r.Status, r.Attempts, r.Total)
		}
		got := content(t, r.Body)
		want := fmt.Sprintf(": question number %d", i)
		if !strings.HasPrefix(got, "mock answer to ") || !strings.HasSuffix(got, want) {
			t.Fatalf("request %d: answer %q does not end with %q", i, got, want)
		}
	}
	st, err := c.Stats()
	if err != nil || st.Submitted != n || st.Completed != n {
		t.Fatalf("stats %+v %v", st, err)
	}
}

func TestDoConcurrent(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxInflight: 32})
	errc := make(chan error, 64)
	for g := 0; g < 64; g++ {
		go func(g int) {
			for k := 0; k < 10; k++ {
				msg := fmt.Sprintf("g%d k%d", g, k)
				r, err := c.Do(context.Background(), chat(m.url, msg))
				if err != nil {
					errc <- err
					return
				}
				var v struct {
					Choices []struct{ Message struct{ Content string } } `json:"choices"`
				}
				if json.Unmarshal(r.Body, &v) != nil || !strings.HasSuffix(v.Choices[0].Message.Content, ": "+msg) {
					errc <- fmt.Errorf("%s: wrong answer %s", msg, r.Body)
					return
				}
			}
			errc <- nil
		}(g)
	}
	for g := 0; g < 64; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestHTTP429(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxRetries: barrage.Int(0)})
	_, err := c.Do(context.Background(), chat(m.url, "x", barrage.Header{"x-mock-status", "429"}))
	var be *barrage.Error
	if !errors.Is(err, barrage.ErrHTTP) || !errors.As(err, &be) || be.HTTPStatus != 429 {
		t.Fatalf("want ErrHTTP 429, got %v", err)
	}
	if errors.Is(err, barrage.ErrTimeout) || be.Attempts != 1 || len(be.Body) == 0 {
		t.Fatalf("unexpected %+v", be)
	}
}

func TestDeadlineStall(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err := c.Do(ctx, chat(m.url, "x", barrage.Header{"x-mock-fault", "stall"}))
	el := time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, barrage.ErrTimeout) {
		t.Fatalf("want deadline error, got %v", err)
	}
	if el < 190*time.Millisecond || el > 300*time.Millisecond {
		t.Fatalf("returned after %v, want ~200ms", el)
	}
	st, _ := c.Stats()
	if st.InFlight != 0 || st.Completed != 0 || st.Failed+st.Cancelled+st.TimedOut == 0 {
		t.Fatalf("request not ended in the engine: %+v", st)
	}
	t.Logf("deadline after %v: %v", el, err)
}

func TestCancel(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 := time.Now()
	_, err := c.Do(ctx, chat(m.url, "x", barrage.Header{"x-mock-fault", "stall"}))
	if !errors.Is(err, barrage.ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("want cancelled, got %v", err)
	}
	if el := time.Since(t0); el > 250*time.Millisecond {
		t.Fatalf("cancel took %v", el)
	}
	st, _ := c.Stats()
	if st.Cancelled != 1 || st.InFlight != 0 {
		t.Fatalf("stats after cancel: %+v", st)
	}
	// DoAll with a cancelled context: the whole group is cancelled.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	reqs := []*barrage.Request{chat(m.url, "ok"), chat(m.url, "s1", barrage.Header{"x-mock-fault", "stall"}),
		chat(m.url, "s2", barrage.Header{"x-mock-fault", "stall"})}
	resps, errs := c.DoAll(ctx2, reqs)
	if errs[0] != nil || resps[0] == nil || !errors.Is(errs[1], context.Canceled) || !errors.Is(errs[2], barrage.ErrCancelled) {
		t.Fatalf("DoAll cancel: %v", errs)
	}
}

func TestInvalidURL(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	for _, u := range []string{"not a url", "ftp://x/", "http://127.0.0.1/"} {
		_, err := c.Do(context.Background(), &barrage.Request{URL: u})
		var be *barrage.Error
		if !errors.Is(err, barrage.ErrInvalid) || !errors.As(err, &be) || be.Message == "" {
			t.Fatalf("%q: want ErrInvalid with a reason, got %v", u, err)
		}
	}
	if _, err := c.Do(context.Background(), &barrage.Request{URL: "https://a\x00b/"}); !errors.Is(err, barrage.ErrInvalid) {
		t.Fatalf("NUL: %v", err)
	}
}

func TestOptionsAndClose(t *testing.T) {
	if _, err := barrage.New(barrage.Options{MaxInflight: -5}); !errors.Is(err, barrage.ErrInvalid) {
		t.Fatalf("bad option: %v", err)
	}
	if _, err := barrage.New(barrage.Options{CAFile: "/nonexistent/ca.pem"}); err == nil {
		t.Fatal("missing CA file accepted")
	}
	m := startMock(t)
	c := newClient(t, m, barrage.Options{VerifyPeer: barrage.Bool(true), Timeout: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), chat(m.url, "x", barrage.Header{"x-mock-fault", "stall"}))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	if err := <-done; !errors.Is(err, barrage.ErrCancelled) {
		t.Fatalf("pending Do after Close: %v", err)
	}
	if _, err := c.Do(context.Background(), chat(m.url, "x")); !errors.Is(err, barrage.ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	c.Close()
	// Without the CA, the mock's certificate is refused.
	c2, err := barrage.New(barrage.Options{MaxRetries: barrage.Int(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Do(context.Background(), chat(m.url, "x")); !errors.Is(err, barrage.ErrTLS) {
		t.Fatalf("untrusted cert: %v", err)
	}
}

func cpuUs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

// TestOverhead measures client CPU per request (N=5000, 500 in flight) and,
// when build/examples/load_c exists, the C ABI's figure in the same session.
// Set BARRAGE_OVERHEAD=1 to run it.
func TestOverhead(t *testing.T) {
	if os.Getenv("BARRAGE_OVERHEAD") == "" {
		t.Skip("set BARRAGE_OVERHEAD=1")
	}
	const n, inflight = 5000, 500
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxInflight: inflight, MaxConnsPerHost: inflight})
	body := []byte(`{"model":"mock","messages":[{"role":"user","content":"hello"}]}`)
	mk := func() []*barrage.Request {
		reqs := make([]*barrage.Request, n)
		for i := range reqs {
			reqs[i] = &barrage.Request{URL: m.url, Body: body, Headers: []barrage.Header{{"Content-Type", "application/json"}}}
		}
		return reqs
	}
	// Cold, like load_c: a fresh engine, so 500 TLS handshakes are included.
	for round := 0; round < 2; round++ {
		fresh, err := barrage.New(barrage.Options{MaxInflight: inflight, MaxConnsPerHost: inflight, CAFile: m.caFile})
		if err != nil {
			t.Fatal(err)
		}
		reqs := mk()
		cpu0, t0 := cpuUs(), time.Now()
		_, errs := fresh.DoAll(context.Background(), reqs)
		cpu1, el := cpuUs(), time.Since(t0)
		fresh.Close()
		for i, e := range errs {
			if e != nil {
				t.Fatalf("%d: %v", i, e)
			}
		}
		t.Logf("go DoAll cold: cpu_us_per_req=%.1f req_per_s=%.0f", float64(cpu1-cpu0)/n, n/el.Seconds())
	}
	c.DoAll(context.Background(), mk()[:inflight]) // warm connections
	for round := 0; round < 3; round++ {
		reqs := mk()
		cpu0, t0 := cpuUs(), time.Now()
		_, errs := c.DoAll(context.Background(), reqs)
		cpu1, el := cpuUs(), time.Since(t0)
		for i, e := range errs {
			if e != nil {
				t.Fatalf("%d: %v", i, e)
			}
		}
		t.Logf("go DoAll warm: cpu_us_per_req=%.1f req_per_s=%.0f", float64(cpu1-cpu0)/n, n/el.Seconds())
	}
	// Do from 500 goroutines.
	cpu0, t0 := cpuUs(), time.Now()
	errc := make(chan error, inflight)
	for g := 0; g < inflight; g++ {
		go func() {
			for k := 0; k < n/inflight; k++ {
				if _, err := c.Do(context.Background(), &barrage.Request{URL: m.url, Body: body}); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for g := 0; g < inflight; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("go Do x%d goroutines: cpu_us_per_req=%.1f req_per_s=%.0f", inflight, float64(cpuUs()-cpu0)/n, n/time.Since(t0).Seconds())
	loadC := filepath.Join(filepath.Dir(filepath.Dir(mockPath())), "examples", "load_c")
	if _, err := os.Stat(loadC); err == nil {
		for round := 0; round < 2; round++ {
			out, err := exec.Command(loadC, m.url, fmt.Sprint(n), fmt.Sprint(inflight), "auto", m.caFile).CombinedOutput()
			if err != nil {
				t.Fatalf("load_c: %v %s", err, out)
			}
			t.Logf("load_c: %s", strings.TrimSpace(string(out)))
		}
	}
}
