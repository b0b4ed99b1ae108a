package barrage

import (
	"bytes"
	"net/http"
	"strings"
)

// Request URL and header assembly: Options.BaseURL and Options.Header
// applied to each Request; and the answer's header block read back.

// resolve puts the client's BaseURL before a URL without a scheme.
func (c *Client) resolve(u string) string {
	if c.baseURL == "" || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return u
	}
	if u == "" || u[0] != '/' {
		u = "/" + u
	}
	return c.baseURL + u
}

// headers lists the headers to send: the client's defaults not set by the
// request, then Request.Header, then Request.Headers.
func (c *Client) headers(req *Request) []Header {
	if len(c.defHeader) == 0 && len(req.Header) == 0 {
		return req.Headers
	}
	out := make([]Header, 0, len(c.defHeader)+len(req.Header)+len(req.Headers))
	for name, vs := range c.defHeader {
		if hasHeader(req, name) {
			continue
		}
		for _, v := range vs {
			out = append(out, Header{name, v})
		}
	}
	for name, vs := range req.Header {
		for _, v := range vs {
			out = append(out, Header{name, v})
		}
	}
	return append(out, req.Headers...)
}

func hasHeader(req *Request, name string) bool {
	for n := range req.Header {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	for _, h := range req.Headers {
		if strings.EqualFold(h.Name, name) {
			return true
		}
	}
	return false
}

// Header returns a copy of the client's default headers.
func (c *Client) Header() http.Header { return c.defHeader.Clone() }

// parseHeaderBlock reads the engine's header block ("name: value\n" each,
// names in lower case, in the order received) into an http.Header with
// canonical keys (textproto's, as net/http does); nil for an empty block.
func parseHeaderBlock(block []byte) http.Header {
	if len(block) == 0 {
		return nil
	}
	h := make(http.Header, bytes.Count(block, []byte{'\n'}))
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		if i := bytes.IndexByte(line, ':'); i > 0 {
			h.Add(string(line[:i]), strings.TrimSpace(string(line[i+1:])))
		}
	}
	return h
}
