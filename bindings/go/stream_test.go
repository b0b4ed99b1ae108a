package barrage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

// streamChat is a chat request that asks for a stream with a usage chunk.
func streamChat(url, msg string, headers ...barrage.Header) *barrage.Request {
	body, _ := json.Marshal(map[string]interface{}{
		"model":          "mock",
		"messages":       []map[string]string{{"role": "user", "content": msg}},
		"stream":         true,
		"stream_options": map[string]bool{"include_usage": true},
	})
	return &barrage.Request{URL: url, Body: body,
		Headers: append([]barrage.Header{{"Content-Type", "application/json"}}, headers...)}
}

func hdr(name string, v int) barrage.Header { return barrage.Header{Name: name, Value: fmt.Sprint(v)} }

// chunk is the part of an OpenAI chat.completion.chunk the tests look at.
type chunk struct {
	ID      string `json:"id"`
	Choices []struct {
		Delta struct {
			Role    *string `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

func parseChunk(t testing.TB, data []byte) chunk {
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("event is not a JSON chunk: %q: %v", data, err)
	}
	return c
}

// drain reads a stream to its end; it fails the test on out-of-order indices.
func drain(t testing.TB, s *barrage.Stream) []barrage.Event {
	var evs []barrage.Event
	for {
		ev, ok := s.Next()
		if !ok {
			return evs
		}
		if ev.Index != len(evs)+1 {
			t.Errorf("event %d has Index %d", len(evs)+1, ev.Index)
		}
		evs = append(evs, ev)
	}
}

// tokens returns the concatenated content deltas of chat chunk events.
func tokens(t testing.TB, evs []barrage.Event) (string, []string) {
	var all strings.Builder
	var pieces []string
	for _, ev := range evs {
		c := parseChunk(t, ev.Data)
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil && *c.Choices[0].Delta.Content != "" {
			all.WriteString(*c.Choices[0].Delta.Content)
			pieces = append(pieces, *c.Choices[0].Delta.Content)
		}
	}
	return all.String(), pieces
}

func TestStreamEvents(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	const n = 5
	req := streamChat(m.url, "hello", hdr("x-mock-stream-tokens", n))
	req.UserData = "mine"
	s, err := c.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := drain(t, s)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	// role event, n tokens, finish chunk, usage chunk; [DONE] is not an event.
	if len(evs) != n+3 {
		t.Fatalf("%d events, want %d", len(evs), n+3)
	}
	first := parseChunk(t, evs[0].Data)
	if first.Choices[0].Delta.Role == nil || *first.Choices[0].Delta.Role != "assistant" || evs[0].TTFT != -1 {
		t.Fatalf("first event %q TTFT %v", evs[0].Data, evs[0].TTFT)
	}
	text, pieces := tokens(t, evs)
	if text != " tok1 tok2 tok3 tok4 tok5" || len(pieces) != n {
		t.Fatalf("tokens %q (%d pieces)", text, len(pieces))
	}
	for i, ev := range evs[1:] {
		if ev.TTFT <= 0 || ev.Elapsed < ev.TTFT || ev.Elapsed < evs[i].Elapsed {
			t.Fatalf("event %d: TTFT %v Elapsed %v (previous %v)", ev.Index, ev.TTFT, ev.Elapsed, evs[i].Elapsed)
		}
	}
	if fin := parseChunk(t, evs[n+1].Data); fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" {
		t.Fatalf("finish event %q", evs[n+1].Data)
	}
	if u := parseChunk(t, evs[n+2].Data); u.Usage == nil || u.Usage.CompletionTokens != n {
		t.Fatalf("usage event %q", evs[n+2].Data)
	}
	r := s.Response()
	if r == nil || r.Status != 200 || r.CompletionTokens != n || r.PromptTokens <= 0 || r.Events != n+3 {
		t.Fatalf("response %+v", r)
	}
	if r.TTFT <= 0 || r.TTFT != evs[1].TTFT || r.TTFB <= 0 || r.TTFB > r.TTFT || r.Total < evs[len(evs)-1].Elapsed {
		t.Fatalf("timings: TTFB %v TTFT %v Total %v", r.TTFB, r.TTFT, r.Total)
	}
	if r.GapMax < 0 || r.GapMean < 0 || r.GapMean > r.GapMax {
		t.Fatalf("gaps: max %v mean %v", r.GapMax, r.GapMean)
	}
	if r.UserData != "mine" || !strings.HasPrefix(r.RequestID, "req_") {
		t.Fatalf("UserData %v RequestID %q", r.UserData, r.RequestID)
	}
	// Body is the raw event stream: every event's data, then [DONE].
	for _, ev := range evs {
		if !bytes.Contains(r.Body, append([]byte("data: "), ev.Data...)) {
			t.Fatalf("body lacks event %d", ev.Index)
		}
	}
	if !bytes.Contains(r.Body, []byte("data: [DONE]")) {
		t.Fatalf("body lacks [DONE]: %q", r.Body)
	}
	// Ended: Next stays false, Close is a no-op.
	if _, ok := s.Next(); ok {
		t.Fatal("Next after the end returned an event")
	}
	if err := s.Close(); err != nil || s.Err() != nil || s.Response() != r {
		t.Fatalf("after Close: %v %v", err, s.Err())
	}
}

func TestStreamTiming(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	const firstMs, intervalMs, n = 150, 20, 6
	t0 := time.Now()
	s, err := c.Stream(context.Background(), streamChat(m.url, "timing",
		hdr("x-mock-stream-tokens", n), hdr("x-mock-first-token-ms", firstMs), hdr("x-mock-stream-interval-ms", intervalMs)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var arrivals []time.Duration // when Next returned each token event
	var evs []barrage.Event
	for {
		ev, ok := s.Next()
		if !ok {
			break
		}
		evs = append(evs, ev)
		if c := parseChunk(t, ev.Data); len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil && *c.Choices[0].Delta.Content != "" {
			arrivals = append(arrivals, time.Since(t0))
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	r := s.Response()
	if len(arrivals) != n || r.CompletionTokens != n {
		t.Fatalf("%d tokens, usage %d", len(arrivals), r.CompletionTokens)
	}
	// Events are handed out as they arrive, not at the end.
	if spread := arrivals[n-1] - arrivals[0]; spread < (n-1)*intervalMs*time.Millisecond*3/4 {
		t.Fatalf("token events arrived within %v, want about %v", spread, (n-1)*intervalMs*time.Millisecond)
	}
	if r.TTFT < firstMs*time.Millisecond || evs[1].TTFT != r.TTFT {
		t.Fatalf("TTFT %v (event %v), want >= %dms", r.TTFT, evs[1].TTFT, firstMs)
	}
	if evs[0].TTFT != -1 {
		t.Fatalf("role event TTFT %v", evs[0].TTFT)
	}
	if r.GapMean < intervalMs*time.Millisecond/2 || r.GapMax < r.GapMean {
		t.Fatalf("gaps: mean %v max %v, want about %dms", r.GapMean, r.GapMax, intervalMs)
	}
	t.Logf("TTFB %v TTFT %v gap mean %v max %v total %v", r.TTFB, r.TTFT, r.GapMean, r.GapMax, r.Total)
}

func TestStreamIdleTimeout(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	req := streamChat(m.url, "idle", hdr("x-mock-stream-tokens", 10), hdr("x-mock-stream-stall-after", 3))
	req.StreamIdleTimeout = 200 * time.Millisecond
	t0 := time.Now()
	s, err := c.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := drain(t, s)
	el := time.Since(t0)
	text, _ := tokens(t, evs)
	if len(evs) != 4 || text != " tok1 tok2 tok3" {
		t.Fatalf("%d events before the timeout, tokens %q", len(evs), text)
	}
	err = s.Err()
	var be *barrage.Error
	if !errors.Is(err, barrage.ErrTimeout) || !errors.As(err, &be) || be.Attempts != 1 {
		t.Fatalf("want ErrTimeout after one attempt, got %v", err)
	}
	if s.Response() != nil {
		t.Fatal("a failed stream has a Response")
	}
	if el < 200*time.Millisecond || el > 2*time.Second {
		t.Fatalf("ended after %v, want ~200ms", el)
	}
	t.Logf("idle timeout after %v: %v", el, err)
}

func TestStreamFirstTokenTimeout(t *testing.T) {
	m := startMock(t)
	// The engine-wide option ...
	c := newClient(t, m, barrage.Options{FirstTokenTimeout: 100 * time.Millisecond})
	s, err := c.Stream(context.Background(), streamChat(m.url, "slow", hdr("x-mock-stream-tokens", 3), hdr("x-mock-first-token-ms", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	evs := drain(t, s)
	if _, pieces := tokens(t, evs); len(pieces) != 0 || !errors.Is(s.Err(), barrage.ErrTimeout) {
		t.Fatalf("tokens %v err %v", pieces, s.Err())
	}
	s.Close()
	// ... is overridden by the request's.
	req := streamChat(m.url, "slow", hdr("x-mock-stream-tokens", 3), hdr("x-mock-first-token-ms", 300))
	req.FirstTokenTimeout = 5 * time.Second
	s, err = c.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs = drain(t, s)
	if text, _ := tokens(t, evs); s.Err() != nil || text != " tok1 tok2 tok3" {
		t.Fatalf("tokens %q err %v", text, s.Err())
	}
	// Negative durations are refused before anything is sent.
	req.StreamIdleTimeout = -time.Second
	if _, err := c.Stream(context.Background(), req); !errors.Is(err, barrage.ErrInvalid) {
		t.Fatalf("negative idle timeout: %v", err)
	}
}

func TestStreamReset(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	s, err := c.Stream(context.Background(), streamChat(m.url, "reset", hdr("x-mock-stream-tokens", 10), hdr("x-mock-stream-reset-after", 2)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := drain(t, s)
	text, _ := tokens(t, evs)
	var be *barrage.Error
	if text != " tok1 tok2" || !errors.Is(s.Err(), barrage.ErrIO) || !errors.As(s.Err(), &be) || be.Attempts != 1 {
		t.Fatalf("tokens %q, err %v (a stream that delivered events is not retried)", text, s.Err())
	}
	t.Logf("after a reset: %v", s.Err())
}

func TestStreamHTTPError(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxRetries: barrage.Int(0)})
	s, err := c.Stream(context.Background(), streamChat(m.url, "x", barrage.Header{Name: "x-mock-status", Value: "429"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := drain(t, s)
	var be *barrage.Error
	if len(evs) != 0 || !errors.Is(s.Err(), barrage.ErrHTTP) || !errors.As(s.Err(), &be) || be.HTTPStatus != 429 || len(be.Body) == 0 {
		t.Fatalf("%d events, err %v", len(evs), s.Err())
	}
}

func TestStreamNoBody(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxRetries: barrage.Int(0)})
	const n = 5
	run := func(noBody bool, headers ...barrage.Header) ([]barrage.Event, *barrage.Response, error) {
		req := streamChat(m.url, "no body", append([]barrage.Header{hdr("x-mock-stream-tokens", n)}, headers...)...)
		req.NoStreamBody = noBody
		s, err := c.Stream(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		evs := drain(t, s)
		return evs, s.Response(), s.Err()
	}
	keptEvs, kept, err := run(false)
	if err != nil {
		t.Fatal(err)
	}
	evs, r, err := run(true)
	if err != nil {
		t.Fatal(err)
	}
	// The same events: role, the tokens, finish, usage.
	text, _ := tokens(t, evs)
	keptText, _ := tokens(t, keptEvs)
	if text != " tok1 tok2 tok3 tok4 tok5" || text != keptText || len(evs) != n+3 || len(keptEvs) != n+3 {
		t.Fatalf("tokens %q (%d events), without the flag %q (%d events)", text, len(evs), keptText, len(keptEvs))
	}
	if len(r.Body) != 0 {
		t.Fatalf("NoStreamBody: body %q", r.Body)
	}
	if !bytes.Contains(kept.Body, []byte("data: [DONE]")) {
		t.Fatalf("the default keeps the raw stream: body %q", kept.Body)
	}
	// Usage and timings still come from the events.
	if r.Status != 200 || r.CompletionTokens != n || r.PromptTokens != kept.PromptTokens || r.Events != n+3 || r.TTFT <= 0 {
		t.Fatalf("response %+v", r)
	}
	// An error answer keeps its body.
	_, _, err = run(true, barrage.Header{Name: "x-mock-status", Value: "400"})
	var be *barrage.Error
	if !errors.As(err, &be) || be.HTTPStatus != 400 || !bytes.Contains(be.Body, []byte(`"error"`)) {
		t.Fatalf("err %v", err)
	}
	// Do never streams: the flag (which the engine refuses without a stream) is not sent.
	req := chat(m.url, "plain")
	req.NoStreamBody = true
	if resp, err := c.Do(context.Background(), req); err != nil || !strings.HasSuffix(content(t, resp.Body), ": plain") {
		t.Fatalf("Do with NoStreamBody: %v", err)
	}
}

func TestStreamCloseEarly(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background()) // a context with Done: a watcher goroutine
	defer cancel()
	s, err := c.Stream(ctx, streamChat(m.url, "long", hdr("x-mock-stream-tokens", 100000), hdr("x-mock-stream-interval-ms", 5)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, ok := s.Next(); !ok {
			t.Fatalf("stream ended early: %v", s.Err())
		}
	}
	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > time.Second {
		t.Fatalf("Close took %v", el)
	}
	if _, ok := s.Next(); ok {
		t.Fatal("Next after Close returned an event")
	}
	if !errors.Is(s.Err(), barrage.ErrCancelled) || errors.Is(s.Err(), context.Canceled) {
		t.Fatalf("after Close: %v", s.Err())
	}
	s.Close()
	waitStats(t, c, func(st barrage.Stats) bool { return st.Cancelled == 1 && st.InFlight == 0 && st.ResultsWaiting == 0 })
	waitGoroutines(t, base)
}

func TestStreamContext(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{})
	base := runtime.NumGoroutine()
	// Cancel while Next waits on a stalled stream.
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.Stream(ctx, streamChat(m.url, "stall", hdr("x-mock-stream-tokens", 10), hdr("x-mock-stream-stall-after", 2)))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(150*time.Millisecond, cancel)
	t0 := time.Now()
	evs := drain(t, s)
	el := time.Since(t0)
	if text, _ := tokens(t, evs); text != " tok1 tok2" {
		t.Fatalf("events before the cancel: %q", text)
	}
	if !errors.Is(s.Err(), barrage.ErrCancelled) || !errors.Is(s.Err(), context.Canceled) {
		t.Fatalf("want cancelled, got %v", s.Err())
	}
	if el < 140*time.Millisecond || el > time.Second {
		t.Fatalf("cancel took effect after %v", el)
	}
	s.Close()
	// Cancel without anyone reading: the engine request still ends.
	ctx2, cancel2 := context.WithCancel(context.Background())
	s2, err := c.Stream(ctx2, streamChat(m.url, "unread", hdr("x-mock-stream-tokens", 10), hdr("x-mock-stream-stall-after", 1)))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	cancel2()
	select {
	case <-s2.Done():
	case <-time.After(time.Second):
		t.Fatal("cancelled context did not end the engine request")
	}
	if !errors.Is(s2.Err(), context.Canceled) {
		t.Fatalf("unread cancelled stream: %v", s2.Err())
	}
	// A deadline.
	ctx3, cancel3 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel3()
	s3, err := c.Stream(ctx3, streamChat(m.url, "deadline", hdr("x-mock-stream-tokens", 10), hdr("x-mock-stream-stall-after", 1)))
	if err != nil {
		t.Fatal(err)
	}
	drain(t, s3)
	// The engine's deadline and the context's timer race (as for Do).
	if err := s3.Err(); !errors.Is(err, barrage.ErrTimeout) && !(errors.Is(err, context.DeadlineExceeded) && errors.Is(err, barrage.ErrCancelled)) {
		t.Fatalf("deadline: %v", err)
	}
	s3.Close()
	// A context already done is refused without a request.
	if _, err := c.Stream(ctx, streamChat(m.url, "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
	waitStats(t, c, func(st barrage.Stats) bool { return st.InFlight == 0 && st.ResultsWaiting == 0 })
	waitGoroutines(t, base)
}

// TestStreamConcurrent runs 50 streams at once next to plain Do calls: every
// stream gets exactly its own events, in order, and no Do sees a partial.
// Once per backend (auto is io_uring where the kernel allows it).
func TestStreamConcurrent(t *testing.T) {
	m := startMock(t)
	for _, b := range []barrage.Backend{barrage.BackendAuto, barrage.BackendEpoll} {
		t.Run(map[barrage.Backend]string{barrage.BackendAuto: "auto", barrage.BackendEpoll: "epoll"}[b], func(t *testing.T) { testStreamConcurrent(t, m, b) })
	}
}

func testStreamConcurrent(t *testing.T, m *mock, backend barrage.Backend) {
	c := newClient(t, m, barrage.Options{MaxInflight: 64, Backend: backend})
	base := runtime.NumGoroutine()
	const streams, dos = 50, 40
	var wg sync.WaitGroup
	errc := make(chan error, streams+dos)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msg := fmt.Sprintf("stream number %d", i)
			hs := []barrage.Header{hdr("x-mock-stream-interval-ms", 5+5*(i%3))} // all overlap
			n := 3 + i%7
			if i%2 == 0 { // fixed " tok1".." tokN"
				hs = append(hs, hdr("x-mock-stream-tokens", n))
			} // else: one event per word of the answer, which ends with msg
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := c.Stream(ctx, streamChat(m.url, msg, hs...))
			if err != nil {
				errc <- err
				return
			}
			defer s.Close()
			var evs []barrage.Event
			for {
				ev, ok := s.Next()
				if !ok {
					break
				}
				if ev.Index != len(evs)+1 {
					errc <- fmt.Errorf("%s: event %d has index %d", msg, len(evs)+1, ev.Index)
					return
				}
				evs = append(evs, ev)
			}
			r := s.Response()
			if r == nil {
				errc <- fmt.Errorf("%s: %v", msg, s.Err())
				return
			}
			id := "chatcmpl-" + strings.TrimPrefix(r.RequestID, "req_")
			var text strings.Builder
			pieces := 0
			for _, ev := range evs {
				var ch chunk
				if err := json.Unmarshal(ev.Data, &ch); err != nil || ch.ID != id {
					errc <- fmt.Errorf("%s: event %q is not from %s (%v)", msg, ev.Data, id, err)
					return
				}
				if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != nil && *ch.Choices[0].Delta.Content != "" {
					text.WriteString(*ch.Choices[0].Delta.Content)
					pieces++
				}
			}
			if i%2 == 0 {
				var want strings.Builder
				for k := 1; k <= n; k++ {
					fmt.Fprintf(&want, " tok%d", k)
				}
				if text.String() != want.String() {
					errc <- fmt.Errorf("%s: tokens %q want %q", msg, text.String(), want.String())
					return
				}
			} else if !strings.HasPrefix(text.String(), "mock answer to ") || !strings.HasSuffix(text.String(), ": "+msg) {
				errc <- fmt.Errorf("%s: streamed answer %q", msg, text.String())
				return
			}
			if int64(pieces) != r.CompletionTokens || r.Events != len(evs) || len(evs) != pieces+3 {
				errc <- fmt.Errorf("%s: %d pieces, %d events, usage %d, Events %d", msg, pieces, len(evs), r.CompletionTokens, r.Events)
				return
			}
			errc <- nil
		}(i)
	}
	for i := 0; i < dos; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msg := fmt.Sprintf("do number %d", i)
			req := chat(m.url, msg)
			if i%4 == 0 { // a streamed body through Do: one final result, the raw stream
				req = streamChat(m.url, msg, hdr("x-mock-stream-tokens", 4))
			}
			r, err := c.Do(context.Background(), req)
			if err != nil {
				errc <- fmt.Errorf("%s: %v", msg, err)
				return
			}
			if r.Events != 0 || r.TTFT != -1 {
				errc <- fmt.Errorf("%s: Do response has stream figures: Events %d TTFT %v", msg, r.Events, r.TTFT)
				return
			}
			if i%4 == 0 {
				if !bytes.Contains(r.Body, []byte(`"content":" tok4"`)) || !bytes.Contains(r.Body, []byte("data: [DONE]")) {
					errc <- fmt.Errorf("%s: Do of a streamed body: %q", msg, r.Body)
					return
				}
			} else if got := content(t, r.Body); !strings.HasSuffix(got, ": "+msg) {
				errc <- fmt.Errorf("%s: answer %q", msg, got)
				return
			}
			errc <- nil
		}(i)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	waitStats(t, c, func(st barrage.Stats) bool {
		return st.Completed == streams+dos && st.InFlight == 0 && st.ResultsWaiting == 0
	})
	waitGoroutines(t, base)
}

// TestStreamClientClose: closing the Client ends its open streams.
func TestStreamClientClose(t *testing.T) {
	m := startMock(t)
	c, err := barrage.New(barrage.Options{CAFile: m.caFile})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Stream(context.Background(), streamChat(m.url, "x", hdr("x-mock-stream-tokens", 10), hdr("x-mock-stream-stall-after", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Next(); !ok {
		t.Fatal(s.Err())
	}
	c.Close()
	more := 0 // the token event may have been queued before the cancel
	for {
		ev, ok := s.Next()
		if !ok {
			break
		}
		if more++; ev.Index != 2 {
			t.Fatalf("event index %d after Client.Close", ev.Index)
		}
	}
	if !errors.Is(s.Err(), barrage.ErrCancelled) || more > 1 {
		t.Fatalf("stream after Client.Close: %d more events, %v", more, s.Err())
	}
	s.Close()
	if _, err := c.Stream(context.Background(), streamChat(m.url, "x")); !errors.Is(err, barrage.ErrClosed) {
		t.Fatalf("Stream after Close: %v", err)
	}
}

func TestNewOptions02(t *testing.T) {
	for _, o := range []barrage.Options{
		{HTTPVersion: 3},
		{FirstTokenTimeout: -time.Second},
		{Proxy: "not a proxy url"},
		{DNSServers: "not an address"},
	} {
		if c, err := barrage.New(o); !errors.Is(err, barrage.ErrInvalid) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%+v: want ErrInvalid, got %v", o, err)
		}
	}
	m := startMock(t)
	// Valid values; the proxy is bypassed for 127.0.0.1 and the mock speaks HTTP/1.1.
	c := newClient(t, m, barrage.Options{HTTPVersion: barrage.HTTPVersion1, StreamIdleTimeout: 5 * time.Second,
		FirstTokenTimeout: 5 * time.Second, Proxy: "http://127.0.0.1:9", NoProxy: "127.0.0.1,localhost",
		DNSServers: "127.0.0.1:53"})
	s, err := c.Stream(context.Background(), streamChat(m.url, "opts", hdr("x-mock-stream-tokens", 2)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if text, _ := tokens(t, drain(t, s)); text != " tok1 tok2" || s.Err() != nil {
		t.Fatalf("%q %v", text, s.Err())
	}
}

func waitStats(t testing.TB, c *barrage.Client, ok func(barrage.Stats) bool) {
	t.Helper()
	var st barrage.Stats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var err error
		if st, err = c.Stats(); err == nil && ok(st) {
			return
		}
	}
	t.Fatalf("engine stats never settled: %+v", st)
}

// waitGoroutines fails when goroutines started since base do not exit.
func waitGoroutines(t testing.TB, base int) {
	t.Helper()
	n := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n = runtime.NumGoroutine(); n <= base {
			return
		}
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
}

// ExampleClient_Stream prints an OpenAI chat answer as it streams in.
func ExampleClient_Stream() {
	c, err := barrage.New(barrage.Options{FromEnv: true, FirstTokenTimeout: 30 * time.Second})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	body := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},` +
		`"messages":[{"role":"user","content":"Say hello"}]}`
	s, err := c.Stream(context.Background(), &barrage.Request{
		URL:               "https://api.openai.com/v1/chat/completions",
		Headers:           []barrage.Header{{Name: "Authorization", Value: "Bearer " + "sk-..."}},
		Body:              []byte(body),
		StreamIdleTimeout: 20 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	for {
		ev, ok := s.Next()
		if !ok {
			break
		}
		var chunk struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal(ev.Data, &chunk) == nil && len(chunk.Choices) > 0 {
			fmt.Print(chunk.Choices[0].Delta.Content)
		}
	}
	if err := s.Err(); err != nil {
		fmt.Println("\nstream failed:", err)
		return
	}
	r := s.Response()
	fmt.Printf("\n%d tokens, first after %v\n", r.CompletionTokens, r.TTFT)
}
