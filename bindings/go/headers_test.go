// The answer's header fields and Retry-After (C ABI 0.4.0): the block read
// into an http.Header, through Do, Stream and the RoundTripper.
package barrage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

func TestParseHeaderBlock(t *testing.T) {
	h := barrage.ParseHeaderBlock([]byte("content-type: application/json\nset-cookie: a=1\nx-ratelimit-remaining-requests:  9 \nset-cookie: b=2\n"))
	want := http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"},
		"X-Ratelimit-Remaining-Requests": {"9"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v", h)
	}
	if barrage.ParseHeaderBlock(nil) != nil {
		t.Fatal("an empty block is a nil Header")
	}
}

func TestResponseHeadersAndRetryAfter(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxRetries: barrage.Int(0)})
	ctx := context.Background()
	req := func(hdr map[string]string, ask bool, key string) *barrage.Request {
		r := &barrage.Request{URL: m.url, Body: []byte(`{"model":"m","messages":[{"role":"user","content":"h"}]}`),
			Header: http.Header{}, ResponseHeaders: ask, LimitKey: key}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return r
	}
	resp, err := c.Do(ctx, req(nil, true, ""))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("X-Request-Id") != resp.RequestID || resp.Header.Get("Openai-Processing-Ms") != "0" ||
		resp.Header.Get("Content-Length") != strconv.Itoa(len(resp.Body)) {
		t.Fatalf("headers %v", resp.Header)
	}
	if _, ok := resp.RetryAfter(); ok {
		t.Fatal("a 200 without Retry-After reports one")
	}
	if resp, err = c.Do(ctx, req(nil, false, "")); err != nil || resp.Header != nil {
		t.Fatalf("not asked: %v %v", resp.Header, err)
	}
	// A 429's wait as sent (each on its own limit key: a 429 holds its key).
	_, err = c.Do(ctx, req(map[string]string{"x-mock-status": "429", "x-mock-retry-after": "7"}, true, "k7"))
	var be *barrage.Error
	if !errors.As(err, &be) || be.HTTPStatus != 429 {
		t.Fatalf("want HTTP 429, got %v", err)
	}
	if d, ok := be.RetryAfter(); !ok || d != 7*time.Second || be.Header.Get("Retry-After") != "7" {
		t.Fatalf("RetryAfter %v %v, header %v", d, ok, be.Header)
	}
	_, err = c.Do(ctx, req(map[string]string{"x-mock-status": "503", "x-mock-retry-after-ms": "250"}, false, "k250"))
	if !errors.As(err, &be) || be.Header != nil {
		t.Fatalf("503: %v", err)
	}
	if d, ok := be.RetryAfter(); !ok || d != 250*time.Millisecond {
		t.Fatalf("retry-after-ms: %v %v", d, ok)
	}
	if _, ok := barrage.ErrTimeout.RetryAfter(); ok {
		t.Fatal("a sentinel has no Retry-After")
	}
}

func TestStreamHeaderWithFirstEvent(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	r := &barrage.Request{URL: m.url, ResponseHeaders: true,
		Body:   []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"s"}]}`),
		Header: http.Header{"X-Mock-Stream-Tokens": {"3"}, "X-Mock-Stream-Interval-Ms": {"200"}}}
	s, err := c.Stream(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.Next(); !ok {
		t.Fatal(s.Err())
	}
	h := s.Header() // the stream has 600 ms to go: these came with the first event
	if h.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(h.Get("X-Request-Id"), "req_") {
		t.Fatalf("first event's headers %v", h)
	}
	select {
	case <-s.Done():
		t.Fatal("stream ended before the check")
	default:
	}
}

func TestTransportRealHeaders(t *testing.T) {
	m := startMock(t)
	base := strings.TrimSuffix(m.url, "/v1/chat/completions")
	c := newClient(t, m, barrage.Options{MaxRetries: barrage.Int(0)})
	hc := &http.Client{Transport: c.Transport()}
	post := func(hdr map[string]string, body string) *http.Response {
		hreq, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
		hreq.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			hreq.Header.Set(k, v)
		}
		resp, err := hc.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	chat := `{"model":"m","messages":[{"role":"user","content":"x"}]}`
	resp := post(nil, chat)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Openai-Processing-Ms") != "0" || resp.Header.Get("Content-Length") != strconv.Itoa(len(b)) ||
		!strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Fatalf("plain: %v", resp.Header)
	}
	resp = post(map[string]string{"x-mock-stream-tokens": "2"},
		`{"model":"other","stream":true,"messages":[{"role":"user","content":"s"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Openai-Processing-Ms") != "0" ||
		resp.Header.Get("Content-Length") != "" {
		t.Fatalf("stream: %v", resp.Header)
	}
	// Last: the 429 holds the origin's limit key for 7 s.
	resp = post(map[string]string{"x-mock-status": "429", "x-mock-retry-after": "7"}, chat)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("429: %d %v", resp.StatusCode, resp.Header)
	}
}
