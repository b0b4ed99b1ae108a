package barrage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Transport is an http.RoundTripper that sends every request through a
// Client, so net/http code and HTTP-based SDKs (OpenAI clients, ...) get the
// engine's connection pool, retries, rate limits and deadlines:
//
//	hc := &http.Client{Transport: c.Transport()}
//
// The request's context is the engine request's context (deadline,
// cancel). A JSON body with "stream": true is sent as a streamed request and
// its events reach resp.Body as they arrive, as "data: ...\n\n" lines ending
// with "data: [DONE]"; closing the body (or ending the context) cancels the
// request. HTTP error answers come back as responses with their status and
// body, as from net/http; engine failures (timeout, connection, TLS) as
// errors matching the package's sentinels.
//
// resp.Header is the server's own header fields (every request asks for
// them, BRG_REQ_HEADERS), keys canonicalised as net/http does: X-Request-Id,
// Retry-After, X-Ratelimit-*, ... A streamed answer's come with its first
// event, without Content-Length (its body is re-framed event by event).
// With a libbarrage older than 0.4, which hands over none, resp.Header holds
// only Content-Type (application/json, or text/event-stream for streams) and
// X-Request-Id when the server sent one.
type Transport struct {
	Client *Client
}

// Transport returns an http.RoundTripper over c.
func (c *Client) Transport() *Transport { return &Transport{Client: c} }

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(hr *http.Request) (*http.Response, error) {
	var body []byte
	if hr.Body != nil {
		b, err := io.ReadAll(hr.Body)
		hr.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req := &Request{Method: hr.Method, URL: hr.URL.String(), Header: endToEnd(hr.Header), Body: body,
		ResponseHeaders: true}
	ctx := hr.Context()
	if wantsStream(hr.Header, body) {
		return t.stream(hr, req)
	}
	resp, err := t.Client.Do(ctx, req)
	if err != nil {
		return httpError(hr, err)
	}
	h := answerHeader(resp.Header, resp.Body, resp.RequestID)
	return newResponse(hr, resp.Status, h, io.NopCloser(bytes.NewReader(resp.Body)), int64(len(resp.Body))), nil
}

// answerHeader is the server's header fields when the engine handed them
// over, else what is known without them: Content-Type sniffed from the body,
// X-Request-Id.
func answerHeader(h http.Header, body []byte, requestID string) http.Header {
	if h != nil {
		return h
	}
	h = http.Header{}
	if ct := sniffJSON(body); ct != "" {
		h.Set("Content-Type", ct)
	}
	if requestID != "" {
		h.Set("X-Request-Id", requestID)
	}
	return h
}

// stream returns once the first event arrived (the answer's headers are in)
// or the request ended.
func (t *Transport) stream(hr *http.Request, req *Request) (*http.Response, error) {
	s, err := t.Client.Stream(hr.Context(), req)
	if err != nil {
		return nil, err
	}
	first, ok := s.Next()
	if !ok {
		if err := s.Err(); err != nil {
			s.Close()
			return httpError(hr, err)
		}
	}
	if !ok {
		// Ended without an event: a server that answered the stream request
		// with a plain body (or an empty stream); hand over that body.
		r := s.Response()
		s.Close()
		h := answerHeader(r.Header, r.Body, "")
		return newResponse(hr, r.Status, h, io.NopCloser(bytes.NewReader(r.Body)), int64(len(r.Body))), nil
	}
	b := &streamBody{s: s, pending: sseLine(first.Data)}
	h := s.Header() // from the first event
	if h == nil {
		h = http.Header{"Content-Type": {"text/event-stream"}}
	} else {
		h = h.Clone()
		h.Del("Content-Length") // the body is re-framed event by event
	}
	return newResponse(hr, 200, h, b, -1), nil
}

// hopByHop are the headers the engine writes itself (it refuses them from
// callers): framing and connection management, as net/http's transport does.
var hopByHop = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection",
	"Upgrade", "Te", "Keep-Alive", "Proxy-Connection"}

// endToEnd returns h without hop-by-hop headers (a copy only when needed).
// Request.Host other than the URL's host is not supported (the engine
// writes Host from the URL).
func endToEnd(h http.Header) http.Header {
	var out http.Header
	for name := range h {
		for _, hb := range hopByHop {
			if strings.EqualFold(name, hb) {
				if out == nil {
					out = h.Clone()
				}
				delete(out, name)
			}
		}
	}
	if out == nil {
		return h
	}
	return out
}

func newResponse(hr *http.Request, status int, h http.Header, body io.ReadCloser, n int64) *http.Response {
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          body,
		ContentLength: n,
		Request:       hr,
	}
}

// httpError turns an ErrHTTP failure into the server's answer (net/http
// returns HTTP errors as responses); anything else stays an error.
func httpError(hr *http.Request, err error) (*http.Response, error) {
	var be *Error
	if errors.As(err, &be) && be.Status == ErrHTTP.Status && be.HTTPStatus != 0 && be.ctxErr == nil {
		h := answerHeader(be.Header, be.Body, "")
		return newResponse(hr, be.HTTPStatus, h, io.NopCloser(bytes.NewReader(be.Body)), int64(len(be.Body))), nil
	}
	return nil, err
}

func sniffJSON(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return "application/json"
	}
	return ""
}

// wantsStream: a JSON body asking for "stream": true.
func wantsStream(h http.Header, body []byte) bool {
	if len(body) == 0 || !bytes.Contains(body, []byte(`"stream"`)) {
		return false
	}
	var v struct {
		Stream bool `json:"stream"`
	}
	return json.Unmarshal(body, &v) == nil && v.Stream
}

func sseLine(data []byte) []byte {
	out := make([]byte, 0, len(data)+8)
	out = append(out, "data: "...)
	out = append(out, data...)
	return append(out, "\n\n"...)
}

// streamBody is resp.Body of a streamed answer: one SSE line per event as
// it arrives; Close cancels the request.
type streamBody struct {
	s       *Stream
	mu      sync.Mutex
	pending []byte
	eof     bool // [DONE] queued or error reached
	err     error
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) == 0 {
		if b.eof {
			if b.err != nil {
				return 0, b.err
			}
			return 0, io.EOF
		}
		ev, ok := b.s.Next()
		if ok {
			b.pending = sseLine(ev.Data)
			break
		}
		b.eof = true
		if err := b.s.Err(); err != nil {
			b.err = err
			continue
		}
		b.pending = []byte("data: [DONE]\n\n")
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

func (b *streamBody) Close() error {
	b.s.Close()
	return nil
}
