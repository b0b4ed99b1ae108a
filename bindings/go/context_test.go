// Context semantics under repetition: every failure after a context's end
// matches the context's error and the engine's, and the batch forms return
// within a few ms of the deadline.
package barrage_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

func TestContextDeadlineRepeated(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxInflight: 200, MaxRetries: barrage.Int(0)})
	const rounds, slow, fast = 12, 30, 4
	const dl = 250 * time.Millisecond
	// Warm-up: open the connections first, so the fast requests are fast.
	warm := make([]*barrage.Request, slow+fast)
	for i := range warm {
		warm[i] = chat(m.url, "warm")
	}
	if _, errs := c.DoAll(context.Background(), warm); errs[0] != nil {
		t.Fatal(errs[0])
	}
	var lates []time.Duration
	failures := 0
	for round := 0; round < rounds; round++ {
		reqs := make([]*barrage.Request, 0, slow+fast)
		for i := 0; i < fast; i++ {
			reqs = append(reqs, chat(m.url, fmt.Sprintf("f%d", i), barrage.Header{"x-mock-latency-ms", "5"}))
		}
		for i := 0; i < slow; i++ {
			// Latencies around the deadline make the engine's and the
			// context's ends race, the case that used to come out either way.
			lat := fmt.Sprint(220 + (i*7)%60)
			reqs = append(reqs, chat(m.url, fmt.Sprintf("s%d", i), barrage.Header{"x-mock-latency-ms", lat}))
		}
		ctx, cancel := context.WithTimeout(context.Background(), dl)
		deadline, _ := ctx.Deadline()
		var errs []error
		switch round % 3 {
		case 0:
			_, errs = c.DoAll(ctx, reqs)
		case 1:
			errs = make([]error, len(reqs))
			for r := range c.Results(ctx, reqs) {
				errs[r.Index] = r.Err
			}
		case 2:
			errs = make([]error, len(reqs))
			done := make(chan struct{}, len(reqs))
			for i := range reqs {
				go func(i int) { _, errs[i] = c.Do(ctx, reqs[i]); done <- struct{}{} }(i)
			}
			for range reqs {
				<-done
			}
		}
		late := time.Since(deadline)
		cancel()
		lates = append(lates, late)
		for i, err := range errs {
			if i < fast && err != nil {
				t.Fatalf("round %d: fast request %d failed: %v", round, i, err)
			}
			if err == nil {
				continue
			}
			failures++
			if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, barrage.ErrTimeout) || errors.Is(err, barrage.ErrCancelled) {
				t.Fatalf("round %d request %d: %v does not match DeadlineExceeded and ErrTimeout only", round, i, err)
			}
		}
	}
	sort.Slice(lates, func(a, b int) bool { return lates[a] < lates[b] })
	t.Logf("%d failures over %d rounds, all DeadlineExceeded+ErrTimeout; return after deadline: median %v max %v",
		failures, rounds, lates[len(lates)/2], lates[len(lates)-1])
	if failures < rounds*slow/4 {
		t.Fatalf("only %d failures: the deadline did not bite", failures)
	}
	if lates[len(lates)/2] > 15*time.Millisecond || lates[len(lates)-1] > 60*time.Millisecond {
		t.Fatalf("returned too late after the deadline: median %v max %v", lates[len(lates)/2], lates[len(lates)-1])
	}
}

func TestContextCancelRepeated(t *testing.T) {
	m := startMock(t)
	c := newClient(t, m, barrage.Options{MaxRetries: barrage.Int(0)})
	for round := 0; round < 10; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Duration(20+round*3)*time.Millisecond, cancel)
		reqs := []*barrage.Request{
			chat(m.url, "a", barrage.Header{"x-mock-latency-ms", "2000"}),
			chat(m.url, "b", barrage.Header{"x-mock-fault", "stall"}),
		}
		_, errs := c.DoAll(ctx, reqs)
		for i, err := range errs {
			if !errors.Is(err, context.Canceled) || !errors.Is(err, barrage.ErrCancelled) {
				t.Fatalf("round %d request %d: %v", round, i, err)
			}
		}
		// The fail-fast form returns the first real failure, not a cancel.
		_, err := c.DoAllFailFast(context.Background(), []*barrage.Request{
			chat(m.url, "slow", barrage.Header{"x-mock-latency-ms", "2000"}),
			chat(m.url, "bad", barrage.Header{"x-mock-status", "500"}),
		})
		var be *barrage.Error
		if !errors.Is(err, barrage.ErrHTTP) || !errors.As(err, &be) || be.HTTPStatus != 500 {
			t.Fatalf("round %d fail-fast: %v", round, err)
		}
	}
}
