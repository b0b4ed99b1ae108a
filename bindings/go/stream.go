package barrage

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Event is one server-sent event of a streamed answer.
type Event struct {
	// Data is the event's data (for OpenAI one JSON chunk, e.g.
	// {"choices":[{"delta":{"content":" tok1"}}],...}). It is the caller's.
	Data []byte
	// Index is the event's 1-based position in the stream.
	Index int
	// TTFT is submit -> first token (non-empty delta) of this attempt; -1
	// while no token has arrived yet (e.g. OpenAI's role event).
	TTFT time.Duration
	// Elapsed is submit -> this event.
	Elapsed time.Duration
}

// Stream is one streamed request (see Client.Stream). Read it with Next
// until Next returns false, then look at Err and Response:
//
//	s, err := c.Stream(ctx, req)
//	if err != nil { ... }
//	defer s.Close()
//	for {
//		ev, ok := s.Next()
//		if !ok {
//			break
//		}
//		use(ev.Data)
//	}
//	if err := s.Err(); err != nil { ... } // events before a failure were still delivered
//	resp := s.Response()                 // usage, TTFT, Events, GapMax, GapMean
//
// Next is for one goroutine at a time; Close, Err and Response may be called
// from any goroutine.
type Stream struct {
	c   *Client
	ctx context.Context
	req *Request
	id  uint64

	mu     sync.Mutex
	queue  []Event
	final  *result
	ended  bool // resp/err are set
	closed bool
	resp   *Response
	err    error
	head   []byte // the header block of the first event (Request.ResponseHeaders)
	header http.Header

	notify chan struct{} // cap 1: an event was queued
	done   chan struct{} // closed once the final result arrived
}

// Stream sends req as a streamed request (BRG_REQ_STREAM); the body must ask
// the server for a stream itself (OpenAI: "stream": true, and
// "stream_options": {"include_usage": true} for token counts). Each data
// event of a 2xx text/event-stream answer becomes one Event, in order
// (OpenAI's "[DONE]" is not one); the final outcome follows.
//
// The context's deadline becomes the request's deadline (retries
// included); when ctx is done before the stream ended, the engine request is
// cancelled, Next returns the events already received and then false, and
// Err matches ErrCancelled (or ErrTimeout) and ctx.Err() under errors.Is.
// Failed attempts are retried only while no event has been delivered; after
// that a failure (a reset, the stream idle timeout, ...) ends the stream
// with the events that arrived followed by the error.
//
// Request.FirstTokenTimeout and Request.StreamIdleTimeout (or the Options
// of the same name) bound the wait for the first token and the silences
// between events. Events are buffered in the Stream without limit until
// Next takes them; a caller that stops reading should Close the Stream.
// A Stream that is not Closed stays registered until the engine finishes
// the request (or the Client is closed).
func (c *Client) Stream(ctx context.Context, req *Request) (*Stream, error) {
	s := &Stream{c: c, ctx: ctx, req: req, notify: make(chan struct{}, 1), done: make(chan struct{})}
	_, id, err := c.submit(ctx, req, 0, s)
	if err != nil {
		return nil, err
	}
	s.id = id
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				c.cancel(id) // harmless when the result is already on its way
			case <-s.done:
			}
		}()
	}
	return s, nil
}

// push queues one event; called by the dispatcher (Client.pmu held).
func (s *Stream) push(ev Event) {
	s.mu.Lock()
	if !s.closed {
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// setHead keeps the first event's header block; called by the dispatcher.
func (s *Stream) setHead(block []byte) {
	s.mu.Lock()
	s.head = block
	s.mu.Unlock()
}

// Header is the answer's header fields (canonical keys) when
// Request.ResponseHeaders asked: known once the first event has arrived
// (the engine hands them over with it), or from the final result; nil
// before that and when they were not asked for.
func (s *Stream) Header() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.header == nil && s.head != nil {
		s.header = parseHeaderBlock(s.head)
	}
	if s.header == nil && s.final != nil {
		s.header = parseHeaderBlock(s.final.headers)
	}
	return s.header
}

// complete stores the final result; called by the dispatcher (Client.pmu
// held) exactly once.
func (s *Stream) complete(r result) {
	s.mu.Lock()
	s.final = &r
	s.mu.Unlock()
	close(s.done)
}

// end turns the final result into resp/err once; s.mu held, s.final set.
func (s *Stream) end() {
	if !s.ended {
		s.ended = true
		s.resp, s.err = finish(s.ctx, s.req, *s.final)
	}
}

// Next waits for the next event. It returns false once the stream has
// ended and every event received has been returned (or after Close); Err
// and Response then tell how it ended.
func (s *Stream) Next() (Event, bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			return ev, true
		}
		if s.final != nil {
			s.end()
			s.mu.Unlock()
			return Event{}, false
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-s.done:
		}
	}
}

// Err is nil until the engine has finished the request (see Done) and after
// a successful one; otherwise an *Error (ErrTimeout for the first-token or idle timeout, ErrIO for a
// reset, ErrHTTP with the server's body for a non-2xx answer, ...).
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.final == nil {
		return nil
	}
	s.end()
	return s.err
}

// Response is the final answer once the stream has ended successfully: the
// raw event stream as Body (empty with Request.NoStreamBody), usage token
// counts, TTFB, TTFT, Events, GapMax and GapMean. nil until the engine has
// finished the request, and when it failed (see Err).
func (s *Stream) Response() *Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.final == nil {
		return nil
	}
	s.end()
	return s.resp
}

// Done is closed once the engine has finished the request (events may still
// be waiting for Next).
func (s *Stream) Done() <-chan struct{} { return s.done }

// Close stops the stream: if the engine has not finished the request it is
// cancelled (its connection is closed at once). Close waits for the engine's
// final result, drops events not yet taken and returns nil; Next then
// returns false. Calling it again is a no-op.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	s.queue = nil
	running := s.final == nil
	s.mu.Unlock()
	if running {
		s.c.cancel(s.id)
	}
	<-s.done
	return nil
}
