// net/http through barrage: plain calls, HTTP errors as responses, streamed
// bodies delivered as they arrive, cancel by Body.Close and by context.
package barrage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

func TestTransportPlain(t *testing.T) {
	m := startMock(t)
	base := strings.TrimSuffix(m.url, "/v1/chat/completions")
	c := newClient(t, m, barrage.Options{MaxRetries: barrage.Int(0)})
	hc := &http.Client{Transport: c.Transport()}
	body := `{"model":"m","messages":[{"role":"user","content":"over net/http"}]}`
	resp, err := hc.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" ||
		!strings.HasSuffix(content(t, b), ": over net/http") {
		t.Fatalf("got %d %v %s", resp.StatusCode, resp.Header, b)
	}
	// An HTTP error is a response, as with net/http's own transport.
	hreq, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
	hreq.Header.Set("x-mock-status", "429")
	resp, err = hc.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || !strings.Contains(string(b), "error") {
		t.Fatalf("429: got %d %s", resp.StatusCode, b)
	}
	// An engine failure is an error matching the sentinel; a context
	// deadline matches context.DeadlineExceeded.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	hreq, _ = http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", strings.NewReader(body))
	hreq.Header.Set("x-mock-fault", "stall")
	t0 := time.Now()
	_, err = hc.Do(hreq)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, barrage.ErrTimeout) || time.Since(t0) > 500*time.Millisecond {
		t.Fatalf("deadline: %v after %v", err, time.Since(t0))
	}
}

func TestTransportStream(t *testing.T) {
	m := startMock(t)
	base := strings.TrimSuffix(m.url, "/v1/chat/completions")
	c := newClient(t, m, barrage.Options{BaseURL: base, Header: http.Header{"Content-Type": {"application/json"}}})
	hc := &http.Client{Transport: c.Transport()}
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"s"}]}`
	hreq, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
	hreq.Header.Set("x-mock-stream-tokens", "4")
	hreq.Header.Set("x-mock-stream-interval-ms", "150")
	t0 := time.Now()
	resp, err := hc.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream answer %d %v", resp.StatusCode, resp.Header)
	}
	if el := time.Since(t0); el > 300*time.Millisecond {
		t.Fatalf("RoundTrip waited %v: it must return at the first event", el)
	}
	sc := bufio.NewScanner(resp.Body)
	var text string
	var at []time.Duration
	done := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		data := strings.TrimPrefix(line, "data: ")
		if data == "[DONE]" {
			done = true
			continue
		}
		var ch struct {
			Choices []struct{ Delta struct{ Content string } } `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			text += ch.Choices[0].Delta.Content
			at = append(at, time.Since(t0))
		}
	}
	resp.Body.Close()
	if text != " tok1 tok2 tok3 tok4" || !done || sc.Err() != nil {
		t.Fatalf("text %q done %v err %v", text, done, sc.Err())
	}
	// Delivered as they arrive: the first token well before the last.
	if at[3]-at[0] < 350*time.Millisecond {
		t.Fatalf("tokens arrived together: %v", at)
	}
	// Body.Close mid-stream cancels the engine request.
	hreq, _ = http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
	hreq.Header.Set("x-mock-stream-tokens", "10")
	hreq.Header.Set("x-mock-stream-stall-after", "1")
	resp, err = hc.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitStats(t, c, func(st barrage.Stats) bool { return st.Cancelled == 1 && st.InFlight == 0 })
	// Cancelling the context mid-stream ends the body with context.Canceled.
	ctx, cancel := context.WithCancel(context.Background())
	hreq, _ = http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", strings.NewReader(body))
	hreq.Header.Set("x-mock-stream-tokens", "10")
	hreq.Header.Set("x-mock-stream-stall-after", "1")
	resp, err = hc.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("body after cancel: %v", err)
	}
}

func TestBaseURLAndHeaders(t *testing.T) {
	m := startMock(t)
	base := strings.TrimSuffix(m.url, "/v1/chat/completions")
	c := newClient(t, m, barrage.Options{BaseURL: base + "/v1/", MaxRetries: barrage.Int(0),
		Header: http.Header{"Content-Type": {"application/json"}, "X-Mock-Status": {"500"}}})
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"b"}]}`)
	// The default x-mock-status: 500 applies...
	if _, err := c.Do(context.Background(), &barrage.Request{URL: "chat/completions", Body: body}); !errors.Is(err, barrage.ErrHTTP) {
		t.Fatalf("default header not sent: %v", err)
	}
	// ...unless the request sets the same name (any case).
	r, err := c.Do(context.Background(), &barrage.Request{URL: "/chat/completions", Body: body,
		Header: http.Header{"x-mock-status": {"200"}}})
	if err != nil || !strings.HasSuffix(content(t, r.Body), ": b") {
		t.Fatalf("request header did not win: %v", err)
	}
}

// A stream request the server answers with a plain JSON body (here: the
// embeddings endpoint ignores "stream") reaches the caller as that body.
func TestTransportStreamPlainAnswer(t *testing.T) {
	m := startMock(t)
	base := strings.TrimSuffix(m.url, "/v1/chat/completions")
	c := newClient(t, m, barrage.Options{})
	hc := &http.Client{Transport: c.Transport()}
	resp, err := hc.Post(base+"/v1/embeddings", "application/json", strings.NewReader(`{"model":"m","input":"x","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"embedding"`) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %v %.100s", resp.StatusCode, resp.Header, b)
	}
}
