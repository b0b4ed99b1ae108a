package barrage

/*
#include <barrage.h>
*/
import "C"

import (
	"context"
	"sync/atomic"
)

// Result is one finished request of Client.Results: reqs[Index] ended with
// Response (success) or Err (exactly one is non-nil).
type Result struct {
	Index    int
	Response *Response
	Err      error
}

// Results submits every request (one engine group) and returns a channel
// that yields one Result per request as each completes (not in submission
// order), then is closed. When ctx is done, the unfinished requests are
// cancelled and their Results carry errors matching ctx.Err(). The channel
// holds every Result, so a caller that stops reading leaks nothing.
func (c *Client) Results(ctx context.Context, reqs []*Request) <-chan Result {
	out := make(chan Result, len(reqs))
	fin := make(chan indexedResult, len(reqs))
	group := atomic.AddUint64(&c.group, 1)
	waiting := 0
	for i, req := range reqs {
		if _, _, err := c.submitCall(ctx, req, group, &call{out: fin, idx: i}); err != nil {
			out <- Result{Index: i, Err: err}
			continue
		}
		waiting++
	}
	go func() {
		defer close(out)
		done := ctx.Done()
		for ; waiting > 0; waiting-- {
			var ir indexedResult
			select {
			case ir = <-fin:
			case <-done:
				c.cancelGroup(group)
				done = nil // cancel once; keep collecting
				ir = <-fin
			}
			resp, err := finish(ctx, reqs[ir.idx], ir.r)
			out <- Result{Index: ir.idx, Response: resp, Err: err}
		}
	}()
	return out
}

// DoAllFailFast runs every request like DoAll but with errgroup semantics:
// at the first failure the rest are cancelled, and once every request has
// ended it returns that first error (nil when all succeeded).
// responses[i] belongs to reqs[i] and is nil for a request that failed or
// was cancelled.
func (c *Client) DoAllFailFast(ctx context.Context, reqs []*Request) ([]*Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resps := make([]*Response, len(reqs))
	var first error
	for r := range c.Results(ctx, reqs) {
		if r.Err != nil {
			if first == nil {
				first = r.Err
				cancel()
			}
			continue
		}
		resps[r.Index] = r.Response
	}
	return resps, first
}

func (c *Client) cancelGroup(group uint64) {
	c.mu.RLock()
	if !c.closed {
		C.brg_cancel_group(c.eng, C.uint64_t(group))
	}
	c.mu.RUnlock()
}
