// Runs the language-neutral conformance suite (bindings/conformance) through
// the Go API: DoAll / Do / Stream, Results and DoAllFailFast.
package barrage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	barrage "github.com/barrage-dev/barrage/bindings/go"
)

type confSuite struct {
	Version   int            `json:"version"`
	Scenarios []confScenario `json:"scenarios"`
}

type confScenario struct {
	Name            string                     `json:"name"`
	Doc             string                     `json:"doc"`
	Engine          map[string]json.RawMessage `json:"engine"`
	Requests        []confRequest              `json:"requests"`
	Run             string                     `json:"run"`
	OverallTimeoutS *float64                   `json:"overall_timeout_s"`
	Expect          confExpect                 `json:"expect"`
}

type confRequest struct {
	Count        int               `json:"count"`
	Method       string            `json:"method"`
	Path         string            `json:"path"`
	Headers      map[string]string `json:"headers"`
	Body         interface{}       `json:"body"`
	Stream       bool              `json:"stream"`
	TimeoutS     *float64          `json:"timeout_s"`
	DeadlineS    *float64          `json:"deadline_s"`
	MaxRetries   *int              `json:"max_retries"`
	LimitKey     *string           `json:"limit_key"`
	CancelAfterS *float64          `json:"cancel_after_s"`
	// ResponseHeaders: true asks for the answer's header fields.
	ResponseHeaders *bool `json:"response_headers"`
	// NoStreamBody: true (streams only) keeps no raw event stream in the final result.
	NoStreamBody *bool `json:"no_stream_body"`
}

type confExpect struct {
	Status              *string                    `json:"status"`
	HTTPStatus          *int                       `json:"http_status"`
	Attempts            *int                       `json:"attempts"`
	BodyJSONPath        map[string]json.RawMessage `json:"body_json_path"`
	StreamTextMinEvents *int                       `json:"stream_text_min_events"`
	StreamText          *string                    `json:"stream_text"`
	Order               json.RawMessage            `json:"order"`
	MaxElapsedS         *float64                   `json:"max_elapsed_s"`
	MinElapsedS         *float64                   `json:"min_elapsed_s"`
	CountByStatus       map[string]int             `json:"count_by_status"`
	FirstError          *string                    `json:"first_error"`
	RetryAfterS         *float64                   `json:"retry_after_s"`
	ResponseHeaders     map[string]json.RawMessage `json:"response_headers"`
	BodyEmpty           *bool                      `json:"body_empty"`
}

// strictDecode fails on any key the structs above do not name, so the suite
// cannot grow a key this runner silently ignores.
func strictDecode(data []byte, v interface{}) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// confOptions maps the engine option NAMEs the suite may use onto Options.
var confOptions = map[string]func(o *barrage.Options, v int64){
	"MAX_INFLIGHT":           func(o *barrage.Options, v int64) { o.MaxInflight = int(v) },
	"MAX_CONNS_PER_HOST":     func(o *barrage.Options, v int64) { o.MaxConnsPerHost = int(v) },
	"TIMEOUT_MS":             func(o *barrage.Options, v int64) { o.Timeout = time.Duration(v) * time.Millisecond },
	"MAX_RETRIES":            func(o *barrage.Options, v int64) { o.MaxRetries = barrage.Int(int(v)) },
	"BACKOFF_BASE_MS":        func(o *barrage.Options, v int64) { o.BackoffBase = time.Duration(v) * time.Millisecond },
	"BACKOFF_MAX_MS":         func(o *barrage.Options, v int64) { o.BackoffMax = time.Duration(v) * time.Millisecond },
	"MAX_RESPONSE_BYTES":     func(o *barrage.Options, v int64) { o.MaxResponseSize = v },
	"FIRST_TOKEN_TIMEOUT_MS": func(o *barrage.Options, v int64) { o.FirstTokenTimeout = time.Duration(v) * time.Millisecond },
	"STREAM_IDLE_TIMEOUT_MS": func(o *barrage.Options, v int64) { o.StreamIdleTimeout = time.Duration(v) * time.Millisecond },
	"MAX_SERVER_WAIT_MS":     func(o *barrage.Options, v int64) { o.MaxServerWait = time.Duration(v) * time.Millisecond },
	"RATE_LIMIT":             func(o *barrage.Options, v int64) { o.RateLimit = int(v) },
	"RATE_PERIOD_MS":         func(o *barrage.Options, v int64) { o.RatePeriod = time.Duration(v) * time.Millisecond },
}

// confOutcome is what one request ended with.
type confOutcome struct {
	status   string // "OK" or a status name minus BRG_
	http     int    // 0 none
	attempts int    // -1 not reported
	body     []byte // the final body: a stream's final result's, an HTTP error's
	streamed bool
	texts    []string // non-empty delta contents, in order
	err      error
	ctxOver  bool // the request's own context had expired or been cancelled
	ctxKind  error
	// The answer's Retry-After (-1 none) and header fields (a stream's as
	// known with its first event).
	retryAfter time.Duration
	header     http.Header
}

func statusOf(err error) string {
	if err == nil {
		return "OK"
	}
	var be *barrage.Error
	if errors.As(err, &be) {
		return strings.TrimPrefix(be.Name, "BRG_")
	}
	return "NOT_A_BARRAGE_ERROR(" + err.Error() + ")"
}

func outcomeOf(resp *barrage.Response, err error) confOutcome {
	o := confOutcome{status: statusOf(err), attempts: -1, err: err, retryAfter: -1}
	if resp != nil {
		o.http, o.attempts, o.body, o.header = resp.Status, resp.Attempts, resp.Body, resp.Header
		if d, ok := resp.RetryAfter(); ok {
			o.retryAfter = d
		}
	}
	var be *barrage.Error
	if errors.As(err, &be) {
		o.http, o.attempts, o.header, o.body = be.HTTPStatus, be.Attempts, be.Header, be.Body
		if d, ok := be.RetryAfter(); ok {
			o.retryAfter = d
		}
	}
	return o
}

func expand(s string, i int, run string) string {
	return strings.NewReplacer("{i}", strconv.Itoa(i), "{run}", run,
		"{i_mod7_x10}", strconv.Itoa(i%7*10)).Replace(s)
}

func expandJSON(v interface{}, i int, run string) interface{} {
	switch x := v.(type) {
	case string:
		return expand(x, i, run)
	case map[string]interface{}:
		m := make(map[string]interface{}, len(x))
		for k, e := range x {
			m[k] = expandJSON(e, i, run)
		}
		return m
	case []interface{}:
		a := make([]interface{}, len(x))
		for k, e := range x {
			a[k] = expandJSON(e, i, run)
		}
		return a
	}
	return v
}

type confReq struct {
	spec *confRequest
	req  *barrage.Request
	msg  string // last user message ("" when none)
}

func buildRequests(t *testing.T, sc *confScenario, base, run string) []confReq {
	var out []confReq
	for gi := range sc.Requests {
		g := &sc.Requests[gi]
		if g.Count < 1 {
			t.Fatalf("request group %d: count %d", gi, g.Count)
		}
		for k := 0; k < g.Count; k++ {
			i := len(out)
			r := &barrage.Request{Method: g.Method, URL: base + g.Path}
			for name, v := range g.Headers {
				r.Headers = append(r.Headers, barrage.Header{Name: name, Value: expand(v, i, run)})
			}
			sort.Slice(r.Headers, func(a, b int) bool { return r.Headers[a].Name < r.Headers[b].Name })
			msg := ""
			if g.Body != nil {
				body := expandJSON(g.Body, i, run)
				r.Body, _ = json.Marshal(body)
				r.Headers = append(r.Headers, barrage.Header{Name: "content-type", Value: "application/json"})
				if m, ok := body.(map[string]interface{}); ok {
					if msgs, ok := m["messages"].([]interface{}); ok && len(msgs) > 0 {
						if last, ok := msgs[len(msgs)-1].(map[string]interface{}); ok {
							msg, _ = last["content"].(string)
						}
					}
				}
			}
			if g.TimeoutS != nil {
				r.Timeout = secs(*g.TimeoutS)
			}
			r.MaxRetries = g.MaxRetries
			r.ResponseHeaders = g.ResponseHeaders != nil && *g.ResponseHeaders
			r.NoStreamBody = g.NoStreamBody != nil && *g.NoStreamBody
			if r.NoStreamBody && !g.Stream {
				t.Fatalf("request group %d: no_stream_body on a request that is not streamed", gi)
			}
			if g.LimitKey != nil {
				r.LimitKey = *g.LimitKey
			}
			out = append(out, confReq{spec: g, req: r, msg: msg})
		}
	}
	return out
}

// runOne runs one request on its own context (deadline_s, cancel_after_s).
func runOne(ctx context.Context, c *barrage.Client, cr confReq) confOutcome {
	if cr.spec.DeadlineS != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, secs(*cr.spec.DeadlineS))
		defer cancel()
	}
	if cr.spec.CancelAfterS != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		time.AfterFunc(secs(*cr.spec.CancelAfterS), cancel)
	}
	var o confOutcome
	if cr.spec.Stream {
		o = runStream(ctx, c, cr.req)
	} else {
		o = outcomeOf(c.Do(ctx, cr.req))
	}
	o.ctxKind = ctx.Err()
	o.ctxOver = o.ctxKind != nil
	return o
}

func runStream(ctx context.Context, c *barrage.Client, req *barrage.Request) confOutcome {
	s, err := c.Stream(ctx, req)
	if err != nil {
		o := outcomeOf(nil, err)
		o.streamed = true
		return o
	}
	defer s.Close()
	var texts []string
	var first http.Header
	for {
		ev, ok := s.Next()
		if !ok {
			break
		}
		if ev.Index == 1 {
			first = s.Header()
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal(ev.Data, &ch) == nil && len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			texts = append(texts, ch.Choices[0].Delta.Content)
		}
	}
	o := outcomeOf(s.Response(), s.Err())
	o.streamed, o.texts = true, texts
	if first != nil {
		o.header = first
	}
	return o
}

// runScenario returns each request's outcome, the arrival order (as
// indexes), the run's error (fail_fast) and the elapsed time.
func runScenario(t *testing.T, c *barrage.Client, sc *confScenario, reqs []confReq) ([]confOutcome, []int, error, time.Duration) {
	ctx := context.Background()
	if sc.OverallTimeoutS != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, secs(*sc.OverallTimeoutS))
		defer cancel()
	}
	outs := make([]confOutcome, len(reqs))
	var order []int
	plain := make([]*barrage.Request, len(reqs))
	simple := true // every request fits one DoAll / Results call
	for i, cr := range reqs {
		plain[i] = cr.req
		if cr.spec.Stream || cr.spec.DeadlineS != nil || cr.spec.CancelAfterS != nil {
			simple = false
		}
	}
	t0 := time.Now()
	var runErr error
	switch {
	case sc.Run == "all" && simple:
		resps, errs := c.DoAll(ctx, plain)
		for i := range reqs {
			outs[i] = outcomeOf(resps[i], errs[i])
			outs[i].ctxKind = ctx.Err()
			outs[i].ctxOver = outs[i].ctxKind != nil
		}
	case sc.Run == "all":
		var wg sync.WaitGroup
		for i := range reqs {
			wg.Add(1)
			go func(i int) { defer wg.Done(); outs[i] = runOne(ctx, c, reqs[i]) }(i)
		}
		wg.Wait()
	case sc.Run == "as_completed" && simple:
		for r := range c.Results(ctx, plain) {
			outs[r.Index] = outcomeOf(r.Response, r.Err)
			outs[r.Index].ctxKind = ctx.Err()
			outs[r.Index].ctxOver = outs[r.Index].ctxKind != nil
			order = append(order, r.Index)
		}
	case sc.Run == "fail_fast" && simple:
		resps, err := c.DoAllFailFast(ctx, plain)
		runErr = err
		for i := range reqs {
			if resps[i] != nil {
				outs[i] = outcomeOf(resps[i], nil)
			} else {
				outs[i] = confOutcome{status: "FAILED_OR_CANCELLED", attempts: -1}
			}
		}
	default:
		t.Fatalf("run %q with streamed or per-request-context requests is not supported by the Go runner", sc.Run)
	}
	return outs, order, runErr, time.Since(t0)
}

func jsonPath(v interface{}, path string) (interface{}, bool) {
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]interface{}:
			e, ok := x[part]
			if !ok {
				return nil, false
			}
			v = e
		case []interface{}:
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 || n >= len(x) {
				return nil, false
			}
			v = x[n]
		default:
			return nil, false
		}
	}
	return v, true
}

func checkScenario(t *testing.T, sc *confScenario, reqs []confReq, outs []confOutcome, order []int, runErr error, el time.Duration) {
	e := &sc.Expect
	for i, o := range outs {
		// Context semantics: a request whose context ended and failed must
		// match the context's error, and a deadline is always E_TIMEOUT.
		if o.ctxOver && o.err != nil {
			if !errors.Is(o.err, o.ctxKind) {
				t.Errorf("request %d: context ended (%v) but error %v does not match it", i, o.ctxKind, o.err)
			}
			if errors.Is(o.ctxKind, context.DeadlineExceeded) && o.status != "E_TIMEOUT" && o.status != "E_HTTP" {
				t.Errorf("request %d: deadline gave status %s (%v)", i, o.status, o.err)
			}
		}
		if e.Status != nil && o.status != *e.Status {
			t.Errorf("request %d: status %s, want %s (%v)", i, o.status, *e.Status, o.err)
		}
		if e.HTTPStatus != nil && (o.status == "OK" || o.status == "E_HTTP") && o.http != *e.HTTPStatus {
			t.Errorf("request %d: HTTP %d, want %d", i, o.http, *e.HTTPStatus)
		}
		if e.Attempts != nil && !o.ctxOver && o.attempts != *e.Attempts {
			t.Errorf("request %d: attempts %d, want %d (%v)", i, o.attempts, *e.Attempts, o.err)
		}
		if e.BodyJSONPath != nil && o.status == "OK" && !o.streamed {
			var v interface{}
			if err := json.Unmarshal(o.body, &v); err != nil {
				t.Errorf("request %d: body is not JSON: %v", i, err)
			}
			for path, raw := range e.BodyJSONPath {
				var want interface{}
				json.Unmarshal(raw, &want)
				got, ok := jsonPath(v, path)
				if !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("request %d: %s = %v, want %v", i, path, got, want)
				}
			}
		}
		answered := o.status == "OK" || o.status == "E_HTTP"
		if e.RetryAfterS != nil && answered {
			want := time.Duration(-1)
			if *e.RetryAfterS >= 0 {
				want = secs(*e.RetryAfterS)
			}
			if o.retryAfter != want {
				t.Errorf("request %d: RetryAfter %v, want %v", i, o.retryAfter, want)
			}
		}
		if e.BodyEmpty != nil && answered && (len(o.body) == 0) != *e.BodyEmpty {
			t.Errorf("request %d: body %.80q, want empty %v", i, o.body, *e.BodyEmpty)
		}
		if e.ResponseHeaders != nil && answered {
			for name, raw := range e.ResponseHeaders {
				var want interface{}
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("response_headers.%s: %v", name, err)
				}
				vs, there := o.header[http.CanonicalHeaderKey(name)]
				switch w := want.(type) {
				case bool:
					if there != w {
						t.Errorf("request %d: header %s present %v, want %v (all: %v)", i, name, there, w, o.header)
					}
				case string:
					if !there || vs[0] != w {
						t.Errorf("request %d: header %s = %q, want %q (all: %v)", i, name, vs, w, o.header)
					}
				default:
					t.Fatalf("response_headers.%s: %s is neither a string nor a bool", name, raw)
				}
			}
		}
		if e.StreamTextMinEvents != nil && o.streamed && len(o.texts) < *e.StreamTextMinEvents {
			t.Errorf("request %d: %d text events, want >= %d", i, len(o.texts), *e.StreamTextMinEvents)
		}
		if e.StreamText != nil && o.streamed && o.status == "OK" && strings.Join(o.texts, "") != *e.StreamText {
			t.Errorf("request %d: stream text %q, want %q", i, strings.Join(o.texts, ""), *e.StreamText)
		}
	}
	if e.CountByStatus != nil {
		got := map[string]int{}
		for _, o := range outs {
			got[o.status]++
		}
		for k, n := range got {
			if e.CountByStatus[k] != n {
				t.Errorf("count_by_status: %s x%d, want %d (all: %v)", k, n, e.CountByStatus[k], got)
			}
		}
		for k, n := range e.CountByStatus {
			if got[k] != n {
				t.Errorf("count_by_status: %s x%d, want %d (all: %v)", k, got[k], n, got)
			}
		}
	}
	if e.FirstError != nil {
		if sc.Run != "fail_fast" {
			t.Errorf("first_error outside fail_fast")
		}
		if st := statusOf(runErr); st != *e.FirstError {
			t.Errorf("first error %s (%v), want %s", st, runErr, *e.FirstError)
		}
	}
	if len(e.Order) > 0 && string(e.Order) != "null" {
		var word string
		var idx []int
		if json.Unmarshal(e.Order, &word) == nil {
			if word != "submission" && word != "any" {
				t.Fatalf("order %q", word)
			}
			// Positions are by construction in the Go API (DoAll slots,
			// Result.Index); the echo proves each answer is its request's.
			for i, o := range outs {
				if o.status != "OK" || o.streamed || reqs[i].msg == "" || !strings.HasSuffix(reqs[i].spec.Path, "/chat/completions") {
					continue
				}
				if got := content(t, o.body); !strings.HasSuffix(got, ": "+reqs[i].msg) {
					t.Errorf("request %d: answer %q does not echo %q", i, got, reqs[i].msg)
				}
			}
		} else if json.Unmarshal(e.Order, &idx) == nil {
			if sc.Run != "as_completed" || !reflect.DeepEqual(order, idx) {
				t.Errorf("arrival order %v, want %v (run %s)", order, idx, sc.Run)
			}
		} else {
			t.Fatalf("order: %s", e.Order)
		}
	}
	if e.MaxElapsedS != nil && el > secs(*e.MaxElapsedS) {
		t.Errorf("took %v, want <= %vs", el, *e.MaxElapsedS)
	}
	if e.MinElapsedS != nil && el < secs(*e.MinElapsedS) {
		t.Errorf("took %v, want >= %vs", el, *e.MinElapsedS)
	}
}

func conformancePath() string {
	if p := os.Getenv("BARRAGE_CONFORMANCE"); p != "" {
		return p
	}
	return filepath.Join("..", "conformance", "scenarios.json")
}

func TestConformance(t *testing.T) {
	data, err := os.ReadFile(conformancePath())
	if err != nil {
		t.Fatal(err)
	}
	var suite confSuite
	if err := strictDecode(data, &suite); err != nil {
		t.Fatalf("scenarios.json: %v", err)
	}
	if suite.Version != 1 {
		t.Fatalf("suite version %d, this runner knows 1", suite.Version)
	}
	if len(suite.Scenarios) < 15 {
		t.Fatalf("only %d scenarios", len(suite.Scenarios))
	}
	m := startMock(t)
	base := strings.TrimSuffix(m.url, "/v1/chat/completions")
	run := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
	names := map[string]bool{}
	for si := range suite.Scenarios {
		sc := &suite.Scenarios[si]
		if names[sc.Name] {
			t.Fatalf("duplicate scenario %q", sc.Name)
		}
		names[sc.Name] = true
		t.Run(sc.Name, func(t *testing.T) {
			opts := barrage.Options{CAFile: m.caFile}
			for name, raw := range sc.Engine {
				set, ok := confOptions[name]
				if !ok {
					t.Fatalf("engine option %s: unknown to the Go runner", name)
				}
				v, err := strconv.ParseInt(string(raw), 10, 64)
				if err != nil {
					t.Fatalf("engine option %s: %s is not an integer", name, raw)
				}
				set(&opts, v)
			}
			c, err := barrage.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			reqs := buildRequests(t, sc, base, run)
			outs, order, runErr, el := runScenario(t, c, sc, reqs)
			checkScenario(t, sc, reqs, outs, order, runErr, el)
			if t.Failed() {
				t.Logf("%s: %s; took %v", sc.Name, sc.Doc, el)
			}
		})
	}
}
