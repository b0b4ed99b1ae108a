// Package barrage is the Go binding of libbarrage, an engine that runs very
// many HTTPS (LLM API) requests at once, over its stable C ABI (barrage.h).
//
// Build flags. cgo asks pkg-config for "barrage" (meson installs
// barrage.pc; a build tree has build/meson-uninstalled/barrage-uninstalled.pc,
// which pkg-config prefers when PKG_CONFIG_PATH points there). README.md
// has the recipes for an installed library and for a local checkout.
//
// Streaming. Client.Stream sends a request with BRG_REQ_STREAM and returns a
// *Stream whose Next yields one Event per server-sent event as it arrives;
// Do and DoAll never stream (they always get the one final result).
//
// Threads. The engine runs in threaded mode (brg_start): its reactor has its
// own thread, brg_submit/brg_cancel are called directly from any goroutine
// (they never block), and one dispatcher goroutine per Client waits in
// epoll_wait on brg_results_fd, takes finished results with brg_results and
// hands each to the goroutine waiting for it. No cgo call blocks.
package barrage

/*
#cgo pkg-config: barrage
#include <barrage.h>
#include <stdlib.h>
#include <string.h>

// One cgo call per submit. strs holds NUL-terminated strings back to back:
// method, url, limit_key, then name, value for each header. brg_last_error
// is thread-local, so it is read here, on the thread that submitted.
static int gobrg_submit(brg_engine *e, const char *strs, uint32_t n_headers, int has_method,
                        int has_limit_key, const void *body, size_t body_len, uint64_t user_data,
                        int64_t timeout_ms, int64_t deadline_ms, int32_t max_retries,
                        uint32_t token_estimate, uint32_t flags, uint64_t group,
                        int64_t first_token_timeout_ms, int64_t stream_idle_timeout_ms,
                        uint64_t *id_out, char **err_out) {
  brg_header stack_h[16];
  brg_header *h = stack_h;
  brg_request r;
  const char *p = strs;
  uint32_t i;
  int rc;
  if (n_headers > 16) {
    h = (brg_header *)malloc(sizeof(brg_header) * n_headers);
    if (!h) return BRG_E_NOMEM;
  }
  memset(&r, 0, sizeof r);
  r.size = sizeof r;
  r.flags = flags;
  r.method = has_method ? p : NULL; p += strlen(p) + 1;
  r.url = p; p += strlen(p) + 1;
  r.limit_key = has_limit_key ? p : NULL; p += strlen(p) + 1;
  for (i = 0; i < n_headers; ++i) {
    h[i].name = p; p += strlen(p) + 1;
    h[i].value = p; p += strlen(p) + 1;
  }
  r.headers = h;
  r.n_headers = n_headers;
  r.body = body;
  r.body_len = body_len;
  r.user_data = user_data;
  r.timeout_ms = timeout_ms;
  r.deadline_ms = deadline_ms;
  r.max_retries = max_retries;
  r.token_estimate = token_estimate;
  r.group = group;
  r.first_token_timeout_ms = first_token_timeout_ms;
  r.stream_idle_timeout_ms = stream_idle_timeout_ms;
  rc = brg_submit(e, &r, id_out);
  if (rc != BRG_OK) *err_out = strdup(brg_last_error());
  if (h != stack_h) free(h);
  return rc;
}

static int gobrg_engine_new(const brg_config *cfg, brg_engine **out, char **err_out) {
  int rc = brg_engine_new(cfg, out);
  if (rc != BRG_OK) *err_out = strdup(brg_last_error());
  return rc;
}

static void gobrg_free_results(brg_result **rs, size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) brg_result_free(rs[i]);
}

static brg_result *gobrg_at(brg_result **rs, size_t i) { return rs[i]; }

// Whether the producer's brg_result carries the 0.2.0 stream fields.
static int gobrg_has_stream_fields(const brg_result *r) {
  return r->size >= offsetof(brg_result, gap_mean_us) + sizeof r->gap_mean_us;
}

// Whether it carries 0.4.0's retry_after_ms, headers and headers_len.
static int gobrg_has_0_4_fields(const brg_result *r) {
  return r->size >= offsetof(brg_result, headers_len) + sizeof r->headers_len;
}
*/
import "C"

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Backend selects the reactor backend.
type Backend int

const (
	BackendAuto    Backend = C.BRG_BACKEND_AUTO
	BackendIOUring Backend = C.BRG_BACKEND_IO_URING
	BackendEpoll   Backend = C.BRG_BACKEND_EPOLL
)

// Options configures a Client. Zero values keep the engine's defaults; the
// pointer fields distinguish "unset" from a meaningful zero.
type Options struct {
	FromEnv          bool          // read BARRAGE_* and wrapper env vars first; fields set below win
	MaxInflight      int           // default 256
	MaxConnsPerHost  int           // default 0 = bounded by MaxInflight
	RateLimit        int           // requests per RatePeriod, 0 = off
	RatePeriod       time.Duration // default 1 minute
	RateBurst        int
	TokensPerMinute  int
	TokensBurst      int
	Timeout          time.Duration // per attempt, default 10 minutes
	ConnectTimeout   time.Duration
	MaxRetries       *int // nil = default (2); use Int(0) for no retries
	BackoffBase      time.Duration
	BackoffMax       time.Duration
	Backend          Backend
	CAFile           string
	VerifyPeer       *bool // nil = default (true)
	TLSResume        *bool // nil = default (true); false forces a full handshake per connection
	MaxHandshakes    int   // 0 = default (64) TLS handshakes in progress at once
	MaxResponseSize  int64
	CachePath        string
	CacheTTL         time.Duration
	AllowHTTP        bool
	MaxPending       int
	RetryStatuses    string // e.g. "408,409,429,500-504"
	BreakerThreshold *int
	BreakerPause     time.Duration

	// Streams (Client.Stream) only; Request fields of the same name win.
	FirstTokenTimeout time.Duration // an attempt whose first token (non-empty delta) has not arrived this long after the request was sent fails with ErrTimeout; 0 = no limit
	StreamIdleTimeout time.Duration // longest silence before the first event and between two events; 0 = no limit

	HTTPVersion HTTPVersion // HTTPVersionAuto (default): HTTP/2 when the server offers it with ALPN, else HTTP/1.1
	Proxy       string      // HTTP proxy for https:// URLs, reached with CONNECT: "http://[user:password@]host:port"; "" = direct (or the environment's with FromEnv)
	NoProxy     string      // hosts that bypass Proxy, curl's NO_PROXY rules (suffixes, IPs, CIDR, host:port, "*")
	DNSServers  string      // "ip[:port],..." ([v6]:port) asked instead of /etc/resolv.conf's

	// BaseURL is put before every Request.URL that has no scheme
	// ("https://api.openai.com/v1" + "/chat/completions"); "" = URLs are absolute.
	BaseURL string
	// Header is sent with every request unless the request sets the same name.
	Header http.Header

	MaxHeaderBytes int           // largest response header block (default 64 KiB)
	IdleTimeout    time.Duration // close pooled connections idle this long (default 60 s)

	MaxServerWait time.Duration // longest Retry-After / rate-limit reset wait honoured (default 60 s)
	// Rate limits shared by every process using this Redis ("redis://[user:password@]host:port[/db]")
	// and namespace; see BRG_OPT_SHARED_LIMITS.
	SharedLimits    string
	SharedNamespace string        // default "barrage"
	SharedTimeout   time.Duration // a slower Redis counts as unavailable (default 250 ms)
	SharedLease     time.Duration // how far ahead one round trip reserves (default 1 s)
}

// HTTPVersion selects the HTTP protocol (BRG_OPT_HTTP_VERSION). Plain http://
// URLs always use HTTP/1.1.
type HTTPVersion int

const (
	HTTPVersionAuto HTTPVersion = 0 // HTTP/2 when the server offers it with ALPN, else HTTP/1.1
	HTTPVersion1    HTTPVersion = 1 // HTTP/1.1 only
	HTTPVersion2    HTTPVersion = 2 // HTTP/2 only; a server that does not agree fails the request (ErrProtocol or ErrTLS)
)

// Int returns a pointer to v, for Options.MaxRetries and the like.
func Int(v int) *int { return &v }

// Bool returns a pointer to v, for Options.VerifyPeer.
func Bool(v bool) *bool { return &v }

// Header is one request header.
type Header struct{ Name, Value string }

// Request is one HTTP request. URL must be https:// (http:// only with
// Options.AllowHTTP).
type Request struct {
	Method     string // "" = POST
	URL        string
	Header     http.Header // sent as is (canonical or not); wins over Options.Header for the same name
	Headers    []Header    // more headers, in order, after Header (the pre-0.3 form)
	Body       []byte
	Timeout    time.Duration // per attempt; 0 = engine default
	MaxRetries *int          // nil = engine default
	NoRetry    bool
	NoCache    bool
	// ResponseHeaders asks for the answer's header fields (BRG_REQ_HEADERS):
	// Response.Header, Error.Header and Stream.Header then hold them. Off by
	// default (a provider's head is ~1 KiB per result); needs libbarrage 0.4,
	// an older library is not asked and the headers stay nil.
	ResponseHeaders bool
	TokenEstimate   uint32
	LimitKey        string
	UserData        interface{} // returned in Response.UserData

	// Streams (Client.Stream) only; 0 = the Options value of the same name.
	// The body must still ask the server for a stream ("stream": true).
	FirstTokenTimeout time.Duration // per attempt: request sent -> first token (non-empty delta)
	StreamIdleTimeout time.Duration // longest silence before the first event and between two events
	// NoStreamBody (BRG_REQ_NO_STREAM_BODY, libbarrage 0.5; Client.Stream
	// only, Do and DoAll ignore it): once the answer is a 2xx event stream
	// its bytes are not kept, so Stream.Response().Body is empty while the
	// events, token counts and timings are the same, and a long stream costs
	// no memory for the events already delivered (Options.MaxResponseSize
	// then bounds each event rather than the whole stream). Error answers
	// (Error.Body) and answers that are not an event stream keep their
	// body. An older library refuses the flag, so it is not sent there and
	// the body is kept.
	NoStreamBody bool
}

// Response is a successful (2xx) answer. For a stream (Stream.Response) Body
// is the raw event stream (empty with Request.NoStreamBody) and the token
// counts come from its usage chunk (OpenAI: ask with "stream_options":
// {"include_usage": true}).
type Response struct {
	Status           int // HTTP status
	Body             []byte
	Header           http.Header // the answer's header fields when Request.ResponseHeaders asked (canonical keys, as net/http); else nil
	RequestID        string      // x-request-id header
	PromptTokens     int64       // -1 unknown
	CompletionTokens int64       // -1 unknown
	Attempts         int
	Cached           bool
	Queued           time.Duration
	TTFB             time.Duration // -1 when none
	Total            time.Duration
	UserData         interface{}

	// Streams only (Do: TTFT, GapMax, GapMean are -1 and Events 0).
	TTFT    time.Duration // submit -> first token (non-empty delta) of the last attempt; -1 when none
	Events  int           // data events delivered (OpenAI's [DONE] is not one)
	GapMax  time.Duration // longest gap between two token events; -1 when fewer than two
	GapMean time.Duration // mean gap between token events; -1 when fewer than two

	retryAfter   time.Duration
	retryAfterOK bool
}

// RetryAfter is the answer's Retry-After (or retry-after-ms) as the server
// sent it (an HTTP-date: the time until then); ok is false when it sent none
// (and with a libbarrage older than 0.4). Not clamped: the engine's own
// waits obey Options.MaxServerWait.
func (r *Response) RetryAfter() (d time.Duration, ok bool) { return r.retryAfter, r.retryAfterOK }

type result struct {
	status     C.int
	httpStatus int
	attempts   int
	flags      uint32
	body       []byte
	errText    string
	requestID  string
	queued     time.Duration
	ttfb       time.Duration
	total      time.Duration
	prompt     int64
	completion int64
	ttft       time.Duration // -1 none
	events     int
	gapMax     time.Duration // -1 none
	gapMean    time.Duration // -1 none
	retryAfter time.Duration // -1 none
	headers    []byte        // the answer's header block ("name: value\n" each); nil none
}

type call struct {
	ch  chan result          // buffered 1; nil for a stream or a shared-channel call
	st  *Stream              // non-nil for a streamed request
	out chan<- indexedResult // shared, buffered for every call of its batch (Client.Results)
	idx int                  // position in the batch, for out
	id  uint64               // engine id, set after a successful submit
}

type indexedResult struct {
	idx int
	r   result
}

// complete hands the final result over; called with Client.pmu held. Every
// channel it sends on has room, so the dispatcher never blocks.
func (cl *call) complete(r result) {
	switch {
	case cl.st != nil:
		cl.st.complete(r)
	case cl.out != nil:
		cl.out <- indexedResult{cl.idx, r}
	default:
		cl.ch <- r
	}
}

// Client owns one engine. All methods are safe for concurrent use.
type Client struct {
	eng *C.brg_engine

	mu      sync.RWMutex // RLock around engine calls; Lock to close
	closed  bool
	pmu     sync.Mutex
	pending map[uint64]*call
	seq     uint64
	group   uint64

	baseURL   string
	defHeader http.Header

	resultsFd int
	epfd      int
	wake      [2]int // pipe: dispatcher stop
	stopping  int32
	done      chan struct{}
}

func optErr(cfg *C.brg_config, what string) error {
	return newError(C.BRG_E_INVALID, what+": "+C.GoString(C.brg_config_error(cfg)))
}

// newConfig turns opts into a brg_config (the caller frees it).
func newConfig(opts Options) (cfg *C.brg_config, err error) {
	cfg = C.brg_config_new()
	if cfg == nil {
		return nil, newError(C.BRG_E_NOMEM, "brg_config_new")
	}
	made := cfg // the returns below set cfg to nil
	defer func() {
		if err != nil {
			C.brg_config_free(made)
		}
	}()
	if opts.FromEnv {
		if C.brg_config_from_env(cfg) != C.BRG_OK {
			return nil, optErr(cfg, "environment")
		}
	}
	type iopt struct {
		set  bool
		opt  C.brg_option
		val  int64
		name string
	}
	ms := func(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }
	ints := []iopt{
		{opts.MaxInflight != 0, C.BRG_OPT_MAX_INFLIGHT, int64(opts.MaxInflight), "MaxInflight"},
		{opts.MaxConnsPerHost != 0, C.BRG_OPT_MAX_CONNS_PER_HOST, int64(opts.MaxConnsPerHost), "MaxConnsPerHost"},
		{opts.RateLimit != 0, C.BRG_OPT_RATE_LIMIT, int64(opts.RateLimit), "RateLimit"},
		{opts.RatePeriod != 0, C.BRG_OPT_RATE_PERIOD_MS, ms(opts.RatePeriod), "RatePeriod"},
		{opts.RateBurst != 0, C.BRG_OPT_RATE_BURST, int64(opts.RateBurst), "RateBurst"},
		{opts.TokensPerMinute != 0, C.BRG_OPT_TOKENS_PER_MINUTE, int64(opts.TokensPerMinute), "TokensPerMinute"},
		{opts.TokensBurst != 0, C.BRG_OPT_TOKENS_BURST, int64(opts.TokensBurst), "TokensBurst"},
		{opts.Timeout != 0, C.BRG_OPT_TIMEOUT_MS, ms(opts.Timeout), "Timeout"},
		{opts.ConnectTimeout != 0, C.BRG_OPT_CONNECT_TIMEOUT_MS, ms(opts.ConnectTimeout), "ConnectTimeout"},
		{opts.BackoffBase != 0, C.BRG_OPT_BACKOFF_BASE_MS, ms(opts.BackoffBase), "BackoffBase"},
		{opts.BackoffMax != 0, C.BRG_OPT_BACKOFF_MAX_MS, ms(opts.BackoffMax), "BackoffMax"},
		{opts.Backend != BackendAuto, C.BRG_OPT_BACKEND, int64(opts.Backend), "Backend"},
		{opts.MaxResponseSize != 0, C.BRG_OPT_MAX_RESPONSE_BYTES, opts.MaxResponseSize, "MaxResponseSize"},
		{opts.CacheTTL != 0, C.BRG_OPT_CACHE_TTL_S, int64(opts.CacheTTL / time.Second), "CacheTTL"},
		{opts.AllowHTTP, C.BRG_OPT_ALLOW_HTTP, 1, "AllowHTTP"},
		{opts.MaxPending != 0, C.BRG_OPT_MAX_PENDING, int64(opts.MaxPending), "MaxPending"},
		{opts.BreakerPause != 0, C.BRG_OPT_BREAKER_PAUSE_MS, ms(opts.BreakerPause), "BreakerPause"},
		{opts.MaxHandshakes != 0, C.BRG_OPT_MAX_HANDSHAKES, int64(opts.MaxHandshakes), "MaxHandshakes"},
		{opts.FirstTokenTimeout != 0, C.BRG_OPT_FIRST_TOKEN_TIMEOUT_MS, ms(opts.FirstTokenTimeout), "FirstTokenTimeout"},
		{opts.StreamIdleTimeout != 0, C.BRG_OPT_STREAM_IDLE_TIMEOUT_MS, ms(opts.StreamIdleTimeout), "StreamIdleTimeout"},
		{opts.MaxHeaderBytes != 0, C.BRG_OPT_MAX_HEADER_BYTES, int64(opts.MaxHeaderBytes), "MaxHeaderBytes"},
		{opts.IdleTimeout != 0, C.BRG_OPT_IDLE_TIMEOUT_MS, ms(opts.IdleTimeout), "IdleTimeout"},
		{opts.MaxServerWait != 0, C.BRG_OPT_MAX_SERVER_WAIT_MS, ms(opts.MaxServerWait), "MaxServerWait"},
		{opts.SharedTimeout != 0, C.BRG_OPT_SHARED_TIMEOUT_MS, ms(opts.SharedTimeout), "SharedTimeout"},
		{opts.SharedLease != 0, C.BRG_OPT_SHARED_LEASE_MS, ms(opts.SharedLease), "SharedLease"},
		{opts.HTTPVersion != HTTPVersionAuto, C.BRG_OPT_HTTP_VERSION, int64(opts.HTTPVersion), "HTTPVersion"},
	}
	if opts.MaxRetries != nil {
		ints = append(ints, iopt{true, C.BRG_OPT_MAX_RETRIES, int64(*opts.MaxRetries), "MaxRetries"})
	}
	if opts.BreakerThreshold != nil {
		ints = append(ints, iopt{true, C.BRG_OPT_BREAKER_THRESHOLD, int64(*opts.BreakerThreshold), "BreakerThreshold"})
	}
	if opts.VerifyPeer != nil {
		v := int64(0)
		if *opts.VerifyPeer {
			v = 1
		}
		ints = append(ints, iopt{true, C.BRG_OPT_VERIFY_PEER, v, "VerifyPeer"})
	}
	if opts.TLSResume != nil {
		v := int64(0)
		if *opts.TLSResume {
			v = 1
		}
		ints = append(ints, iopt{true, C.BRG_OPT_TLS_RESUME, v, "TLSResume"})
	}
	for _, o := range ints {
		if o.set && C.brg_config_set_int(cfg, o.opt, C.int64_t(o.val)) != C.BRG_OK {
			return nil, optErr(cfg, o.name)
		}
	}
	strOpts := []struct {
		opt  C.brg_option
		val  string
		name string
	}{
		{C.BRG_OPT_CA_FILE, opts.CAFile, "CAFile"},
		{C.BRG_OPT_CACHE_PATH, opts.CachePath, "CachePath"},
		{C.BRG_OPT_RETRY_STATUSES, opts.RetryStatuses, "RetryStatuses"},
		{C.BRG_OPT_PROXY, opts.Proxy, "Proxy"},
		{C.BRG_OPT_NO_PROXY, opts.NoProxy, "NoProxy"},
		{C.BRG_OPT_DNS_SERVERS, opts.DNSServers, "DNSServers"},
		{C.BRG_OPT_SHARED_LIMITS, opts.SharedLimits, "SharedLimits"},
		{C.BRG_OPT_SHARED_NAMESPACE, opts.SharedNamespace, "SharedNamespace"},
	}
	for _, o := range strOpts {
		if o.val == "" {
			continue
		}
		cs := C.CString(o.val)
		rc := C.brg_config_set_str(cfg, o.opt, cs)
		C.free(unsafe.Pointer(cs))
		if rc != C.BRG_OK {
			return nil, optErr(cfg, o.name)
		}
	}

	return cfg, nil
}

// newEngine creates an engine (not started) from opts.
func newEngine(opts Options) (*C.brg_engine, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	defer C.brg_config_free(cfg)
	var eng *C.brg_engine
	var cerr *C.char
	if rc := C.gobrg_engine_new(cfg, &eng, &cerr); rc != C.BRG_OK {
		msg := C.GoString(cerr)
		C.free(unsafe.Pointer(cerr))
		return nil, newError(rc, msg)
	}
	return eng, nil
}

// New creates an engine, starts its reactor thread and the dispatcher.
func New(opts Options) (*Client, error) {
	eng, err := newEngine(opts)
	if err != nil {
		return nil, err
	}
	if rc := C.brg_start(eng); rc != C.BRG_OK {
		C.brg_engine_free(eng)
		return nil, newError(rc, "brg_start")
	}
	c := &Client{eng: eng, pending: make(map[uint64]*call), done: make(chan struct{}),
		baseURL: strings.TrimRight(opts.BaseURL, "/"), defHeader: opts.Header.Clone()}
	c.resultsFd = int(C.brg_results_fd(eng))
	if err := c.setupPoll(); err != nil {
		C.brg_engine_free(eng)
		return nil, err
	}
	go c.dispatch()
	return c, nil
}

func (c *Client) setupPoll() error {
	if err := syscall.Pipe2(c.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return err
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		syscall.Close(c.wake[0])
		syscall.Close(c.wake[1])
		return err
	}
	c.epfd = epfd
	for _, fd := range []int{c.resultsFd, c.wake[0]} {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			syscall.Close(epfd)
			syscall.Close(c.wake[0])
			syscall.Close(c.wake[1])
			return err
		}
	}
	return nil
}

const batchMax = 256

// dispatch is the one goroutine that takes results. It blocks only in
// epoll_wait (a plain syscall: the Go scheduler hands its P to others).
func (c *Client) dispatch() {
	defer close(c.done)
	buf := (*[batchMax]*C.brg_result)(C.malloc(C.size_t(unsafe.Sizeof(uintptr(0))) * batchMax))
	defer C.free(unsafe.Pointer(buf))
	events := make([]syscall.EpollEvent, 2)
	for {
		n := int(C.brg_results(c.eng, &buf[0], batchMax))
		if n > 0 {
			c.deliver(buf, n)
			continue
		}
		if atomic.LoadInt32(&c.stopping) != 0 {
			return
		}
		if _, err := syscall.EpollWait(c.epfd, events, -1); err != nil && err != syscall.EINTR {
			return
		}
	}
}

func (c *Client) deliver(buf *[batchMax]*C.brg_result, n int) {
	c.pmu.Lock()
	for i := 0; i < n; i++ {
		r := buf[i]
		res := result{
			status:     C.int(r.status),
			httpStatus: int(r.http_status),
			attempts:   int(r.attempts),
			flags:      uint32(r.flags),
			queued:     time.Duration(r.queued_us) * time.Microsecond,
			ttfb:       time.Duration(r.ttfb_us) * time.Microsecond,
			total:      time.Duration(r.total_us) * time.Microsecond,
			prompt:     int64(r.prompt_tokens),
			completion: int64(r.completion_tokens),
		}
		if r.ttfb_us < 0 {
			res.ttfb = -1
		}
		res.ttft, res.gapMax, res.gapMean, res.retryAfter = -1, -1, -1, -1
		if C.gobrg_has_0_4_fields(r) != 0 {
			if r.retry_after_ms >= 0 {
				res.retryAfter = time.Duration(r.retry_after_ms) * time.Millisecond
			}
			if r.headers_len > 0 {
				res.headers = C.GoBytes(unsafe.Pointer(r.headers), C.int(r.headers_len))
			}
		}
		if C.gobrg_has_stream_fields(r) != 0 {
			res.ttft = usOrNone(r.ttft_us)
			res.events = int(r.events)
			res.gapMax = usOrNone(r.gap_max_us)
			res.gapMean = usOrNone(r.gap_mean_us)
		}
		if r.body_len > 0 {
			res.body = C.GoBytes(unsafe.Pointer(r.body), C.int(r.body_len))
		}
		if r.error != nil && *r.error != 0 {
			res.errText = C.GoString(r.error)
		}
		if r.request_id != nil && *r.request_id != 0 {
			res.requestID = C.GoString(r.request_id)
		}
		cl, ok := c.pending[uint64(r.user_data)]
		if !ok {
			continue
		}
		if res.flags&C.BRG_RES_PARTIAL != 0 {
			// One event of a stream; the final result follows. Only
			// streamed requests get these; anything else is dropped so a
			// Do never completes with a partial.
			if cl.st != nil {
				if res.events == 1 {
					cl.st.setHead(res.headers)
				}
				cl.st.push(Event{Data: res.body, Index: res.events, TTFT: res.ttft, Elapsed: res.total})
			}
			continue
		}
		delete(c.pending, uint64(r.user_data))
		cl.complete(res)
	}
	c.pmu.Unlock()
	C.gobrg_free_results(&buf[0], C.size_t(n))
}

func usOrNone(us C.int64_t) time.Duration {
	if us < 0 {
		return -1
	}
	return time.Duration(us) * time.Microsecond
}

var zero = [1]byte{}

// submit sends req; st is the Stream that receives its events, or nil.
func (c *Client) submit(ctx context.Context, req *Request, group uint64, st *Stream) (*call, uint64, error) {
	return c.submitCall(ctx, req, group, &call{st: st})
}

// submitCall submits req for cl (cl.st, cl.out and cl.idx already set).
func (c *Client) submitCall(ctx context.Context, req *Request, group uint64, cl *call) (*call, uint64, error) {
	st := cl.st
	if req == nil {
		return nil, 0, newError(C.BRG_E_INVALID, "nil request")
	}
	var deadlineMs int64
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return nil, 0, withCtx(newError(C.BRG_E_TIMEOUT, "deadline already passed"), ctx)
		}
		// The engine's deadline comes ctxGrace after the context's, so the
		// context's timer wins and the error is always the context's.
		deadlineMs = int64((left+ctxGrace)+time.Millisecond-1) / int64(time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, withCtx(newError(C.BRG_E_CANCELLED, "context done before submit"), ctx)
	}
	// Pack strings: method, url, limit_key, header names and values.
	url := c.resolve(req.URL)
	hdrs := c.headers(req)
	size := len(req.Method) + len(url) + len(req.LimitKey) + 3
	for _, h := range hdrs {
		size += len(h.Name) + len(h.Value) + 2
	}
	strs := make([]byte, 0, size)
	add := func(s, what string) error {
		if strings.IndexByte(s, 0) >= 0 {
			return newError(C.BRG_E_INVALID, what+" contains a NUL byte")
		}
		strs = append(strs, s...)
		strs = append(strs, 0)
		return nil
	}
	if err := add(req.Method, "method"); err != nil {
		return nil, 0, err
	}
	if err := add(url, "url"); err != nil {
		return nil, 0, err
	}
	if err := add(req.LimitKey, "limit key"); err != nil {
		return nil, 0, err
	}
	for _, h := range hdrs {
		if err := add(h.Name, "header name"); err != nil {
			return nil, 0, err
		}
		if err := add(h.Value, "header value"); err != nil {
			return nil, 0, err
		}
	}
	var flags C.uint32_t
	if req.NoRetry {
		flags |= C.BRG_REQ_NO_RETRY
	}
	if req.NoCache {
		flags |= C.BRG_REQ_NO_CACHE
	}
	if req.ResponseHeaders && libTakesHeaders {
		flags |= C.BRG_REQ_HEADERS
	}
	maxRetries := int32(-1)
	if req.MaxRetries != nil {
		maxRetries = int32(*req.MaxRetries)
	}
	if req.Timeout < 0 {
		return nil, 0, newError(C.BRG_E_INVALID, "negative timeout")
	}
	if req.FirstTokenTimeout < 0 || req.StreamIdleTimeout < 0 {
		return nil, 0, newError(C.BRG_E_INVALID, "negative stream timeout")
	}
	msUp := func(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }
	timeoutMs := msUp(req.Timeout)
	if st != nil {
		flags |= C.BRG_REQ_STREAM
		// The engine refuses it without BRG_REQ_STREAM: Do never sends it.
		if req.NoStreamBody && libTakesNoStreamBody {
			flags |= C.BRG_REQ_NO_STREAM_BODY
		}
	}
	var bodyPtr unsafe.Pointer
	if len(req.Body) > 0 {
		bodyPtr = unsafe.Pointer(&req.Body[0])
	}
	hasMethod, hasKey := C.int(0), C.int(0)
	if req.Method != "" {
		hasMethod = 1
	}
	if req.LimitKey != "" {
		hasKey = 1
	}

	if st == nil && cl.out == nil {
		cl.ch = make(chan result, 1)
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return nil, 0, newError(C.BRG_E_CLOSED, "client closed")
	}
	c.pmu.Lock()
	c.seq++
	key := c.seq
	c.pending[key] = cl // before submit: the result may arrive at once
	c.pmu.Unlock()
	var id C.uint64_t
	var cerr *C.char
	rc := C.gobrg_submit(c.eng, (*C.char)(unsafe.Pointer(&strs[0])), C.uint32_t(len(hdrs)),
		hasMethod, hasKey, bodyPtr, C.size_t(len(req.Body)), C.uint64_t(key), C.int64_t(timeoutMs),
		C.int64_t(deadlineMs), C.int32_t(maxRetries), C.uint32_t(req.TokenEstimate), flags,
		C.uint64_t(group), C.int64_t(msUp(req.FirstTokenTimeout)), C.int64_t(msUp(req.StreamIdleTimeout)),
		&id, &cerr)
	cl.id = uint64(id) // under RLock: Close reads it after taking the write lock
	c.mu.RUnlock()
	if rc != C.BRG_OK {
		c.pmu.Lock()
		delete(c.pending, key)
		c.pmu.Unlock()
		msg := C.GoString(cerr)
		C.free(unsafe.Pointer(cerr))
		return nil, 0, newError(rc, msg)
	}
	return cl, uint64(id), nil
}

func (c *Client) cancel(id uint64) {
	c.mu.RLock()
	if !c.closed {
		C.brg_cancel(c.eng, C.uint64_t(id))
	}
	c.mu.RUnlock()
}

func finish(ctx context.Context, req *Request, r result) (*Response, error) {
	if r.status != C.BRG_OK {
		e := &Error{Status: int(r.status), Name: C.GoString(C.brg_status_name(r.status)),
			Message: r.errText, HTTPStatus: r.httpStatus, Body: r.body, Attempts: r.attempts,
			Header: parseHeaderBlock(r.headers), retryAfter: r.retryAfter,
			retryAfterOK: r.retryAfter >= 0}
		return nil, withCtx(e, ctx)
	}

	return &Response{Status: r.httpStatus, Body: r.body, Header: parseHeaderBlock(r.headers),
		RequestID: r.requestID, PromptTokens: r.prompt, CompletionTokens: r.completion,
		Attempts: r.attempts, Cached: r.flags&C.BRG_RES_CACHED != 0, Queued: r.queued,
		TTFB: r.ttfb, Total: r.total, UserData: req.UserData, TTFT: r.ttft, Events: r.events,
		GapMax: r.gapMax, GapMean: r.gapMean, retryAfter: r.retryAfter,
		retryAfterOK: r.retryAfter >= 0}, nil
}

// Do runs one request. The context's deadline becomes the request's
// deadline_ms (whole request, retries included); when ctx is done first the
// request is cancelled (brg_cancel) and Do returns after the engine has
// finished it, with an *Error that matches both ErrCancelled/ErrTimeout and
// ctx.Err() under errors.Is. A body that asks for a stream ("stream": true)
// is answered here with the whole raw event stream as Body once it ended;
// Client.Stream hands out the events as they arrive.
func (c *Client) Do(ctx context.Context, req *Request) (*Response, error) {
	cl, id, err := c.submit(ctx, req, 0, nil)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-cl.ch:
		return finish(ctx, req, r)
	case <-ctx.Done():
		c.cancel(id)
		return finish(ctx, req, <-cl.ch)
	}
}

// DoAll submits every request (sharing one engine group) and waits for all
// of them. responses[i] and errs[i] belong to reqs[i]; exactly one is non-nil.
// When ctx is done, every unfinished request of the batch is cancelled.
func (c *Client) DoAll(ctx context.Context, reqs []*Request) ([]*Response, []error) {
	resps := make([]*Response, len(reqs))
	errs := make([]error, len(reqs))
	calls := make([]*call, len(reqs))
	group := atomic.AddUint64(&c.group, 1)
	for i, req := range reqs {
		cl, _, err := c.submit(ctx, req, group, nil)
		if err != nil {
			errs[i] = err
			continue
		}
		calls[i] = cl
	}
	cancelled := false
	for i, cl := range calls {
		if cl == nil {
			continue
		}
		var r result
		if cancelled {
			r = <-cl.ch
		} else {
			select {
			case r = <-cl.ch:
			case <-ctx.Done():
				cancelled = true
				c.mu.RLock()
				if !c.closed {
					C.brg_cancel_group(c.eng, C.uint64_t(group))
				}
				c.mu.RUnlock()
				r = <-cl.ch
			}
		}
		resps[i], errs[i] = finish(ctx, reqs[i], r)
	}
	return resps, errs
}

// Stats is a snapshot of the engine's counters (struct brg_stats).
type Stats struct {
	Backend                                                         Backend
	Submitted, Completed, Failed, Cancelled, Retried, TimedOut      uint64
	Queued, InFlight                                                uint64
	ConnectionsOpen, ConnectionsIdle, ConnectionsOpened, TLSResumed uint64
	BytesSent, BytesReceived, ResultsWaiting                        uint64
	Throttled, Rejected, PromptTokens, CompletionTokens, CacheHits  uint64
	SharedRoundTrips, SharedFallbackKeys                            uint64 // BRG_OPT_SHARED_LIMITS
}

// Stats returns the engine's counters (they may be a moment old).
func (c *Client) Stats() (Stats, error) {
	var s C.struct_brg_stats
	s.size = C.uint32_t(unsafe.Sizeof(s))
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return Stats{}, newError(C.BRG_E_CLOSED, "client closed")
	}
	if rc := C.brg_stats(c.eng, &s); rc != C.BRG_OK {
		return Stats{}, newError(rc, "brg_stats")
	}
	return Stats{Backend: Backend(s.backend), Submitted: uint64(s.submitted),
		Completed: uint64(s.completed), Failed: uint64(s.failed), Cancelled: uint64(s.cancelled),
		Retried: uint64(s.retried), TimedOut: uint64(s.timed_out), Queued: uint64(s.queued),
		InFlight: uint64(s.in_flight), ConnectionsOpen: uint64(s.connections_open),
		ConnectionsIdle: uint64(s.connections_idle), ConnectionsOpened: uint64(s.connections_opened),
		TLSResumed: uint64(s.tls_resumed), BytesSent: uint64(s.bytes_sent),
		BytesReceived: uint64(s.bytes_received), ResultsWaiting: uint64(s.results_waiting),
		Throttled: uint64(s.throttled), Rejected: uint64(s.rejected),
		PromptTokens: uint64(s.prompt_tokens), CompletionTokens: uint64(s.completion_tokens),
		CacheHits: uint64(s.cache_hits), SharedRoundTrips: uint64(s.shared_round_trips),
		SharedFallbackKeys: uint64(s.shared_fallback_keys)}, nil
}

// Close cancels every pending request (their Do calls return ErrCancelled,
// their streams end with ErrCancelled after the events already received),
// waits until their results are delivered, stops the dispatcher and frees
// the engine. Calling Close again is a no-op.
func (c *Client) Close() error {
	c.mu.Lock() // waits for submits and cancels in progress
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.pmu.Lock()
	ids := make([]uint64, 0, len(c.pending))
	for _, cl := range c.pending {
		ids = append(ids, cl.id)
	}
	c.pmu.Unlock()
	for _, id := range ids {
		C.brg_cancel(c.eng, C.uint64_t(id))
	}
	c.mu.Unlock()
	// Every cancelled request yields a result promptly; wait for delivery.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		c.pmu.Lock()
		n := len(c.pending)
		c.pmu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	atomic.StoreInt32(&c.stopping, 1)
	syscall.Write(c.wake[1], []byte{1})
	<-c.done
	C.brg_engine_free(c.eng) // cancels anything left; no other call runs now
	c.eng = nil
	syscall.Close(c.epfd)
	syscall.Close(c.wake[0])
	syscall.Close(c.wake[1])
	// Anyone still waiting (only possible if the engine stalled) gets ErrClosed.
	c.pmu.Lock()
	for k, cl := range c.pending {
		cl.complete(result{status: C.BRG_E_CLOSED, errText: "client closed", ttft: -1, gapMax: -1,
			gapMean: -1, retryAfter: -1})
		delete(c.pending, k)
	}
	c.pmu.Unlock()
	return nil
}

// Version is the run-time library version (e.g. "0.2.0").
func Version() string { return C.GoString(C.brg_version()) }

var errSkew = errors.New("barrage: library major version differs from the header")

// libTakesHeaders: the loaded library takes BRG_REQ_HEADERS (0.4.0 and
// later); an older one refuses the flag, so it is not sent there.
var libTakesHeaders = uint32(C.brg_version_hex()) >= 0x000400

// libTakesNoStreamBody: the loaded library takes BRG_REQ_NO_STREAM_BODY
// (0.5.0 and later); an older one refuses the flag, so it is not sent there
// and a stream's final body is kept.
var libTakesNoStreamBody = uint32(C.brg_version_hex()) >= 0x000500

func init() {
	if uint32(C.brg_version_hex())>>16 != uint32(C.BRG_VERSION_HEX)>>16 {
		panic(errSkew)
	}
}
