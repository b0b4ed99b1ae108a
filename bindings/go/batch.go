package barrage

/*
#include <barrage.h>
#include <stdlib.h>
#include <string.h>

extern int goBatchProgress(brg_batch_progress *p, void *user);

// The C-typed pointer to the exported Go callback.
static brg_batch_progress_fn gobrg_progress_fn(void) { return (brg_batch_progress_fn)goBatchProgress; }

// brg_last_error is thread-local: read it on the thread that ran the batch.
static int gobrg_batch_run(brg_engine *e, const brg_batch_options *o, brg_batch_progress_fn fn,
                           void *user, brg_batch_progress *final_out, char **err_out) {
  int rc = brg_batch_run(e, o, fn, user, final_out);
  if (rc != BRG_OK) *err_out = strdup(brg_last_error());
  return rc;
}
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"time"
	"unsafe"
)

// BatchOptions describes one OpenAI-Batch-API JSONL run (brg_batch_run):
// each input line {"custom_id", "method": "POST", "url", "body"} becomes
// one output line {"id", "custom_id", "response": {...}, "error": ...}.
type BatchOptions struct {
	Input, Output string // output is appended to (created if missing)
	Resume        bool   // skip custom_ids already in Output (a rerun after a stop)
	Ordered       bool   // write in input order (bounded reorder window)
	DryRun        bool   // validate and count, send nothing
	Endpoint      string // base for relative urls; "" = $OPENAI_BASE_URL, else https://api.openai.com
	APIKeyEnv     string // environment variable holding the key ("" = OPENAI_API_KEY); never logged
	Header        map[string]string
	ReorderWindow int
	PricesPath    string        // JSON {"model":{"input":usd_per_1M,"output":usd_per_1M}}; "" = built-in prices
	Deadline      time.Duration // per request; 0 = none
	MaxRetries    *int
	ShardIndex    int
	ShardCount    int
	// Progress is called about every 100 ms and once at the end, on the
	// batch's thread (keep it short).
	Progress func(BatchProgress)
}

// BatchProgress mirrors brg_batch_progress.
type BatchProgress struct {
	Total, Done, OK, Failed, Cached, Invalid, Skipped, InFlight uint64
	PromptTokens, CompletionTokens                              int64
	CostUSD                                                     float64
	Elapsed                                                     time.Duration
}

type batchRun struct {
	ctx      context.Context
	progress func(BatchProgress)
}

func goProgress(p *C.brg_batch_progress) BatchProgress {
	return BatchProgress{Total: uint64(p.total), Done: uint64(p.done), OK: uint64(p.ok),
		Failed: uint64(p.failed), Cached: uint64(p.cached), Invalid: uint64(p.invalid),
		Skipped: uint64(p.skipped), InFlight: uint64(p.in_flight),
		PromptTokens: int64(p.prompt_tokens), CompletionTokens: int64(p.completion_tokens),
		CostUSD: float64(p.cost_usd), Elapsed: time.Duration(float64(p.elapsed_s) * float64(time.Second))}
}

//export goBatchProgress
func goBatchProgress(p *C.brg_batch_progress, user unsafe.Pointer) C.int {
	r := cgo.Handle(*(*uintptr)(user)).Value().(*batchRun)
	if r.progress != nil {
		r.progress(goProgress(p))
	}
	if r.ctx.Err() != nil {
		return 2 // abort: in-flight requests are cancelled and not written, so Resume runs them again
	}
	return 0
}

// RunBatch runs a JSONL batch on an engine of its own made from opts and
// returns the final counts (with cost in USD). When ctx ends the run is
// aborted within about 100 ms: requests in flight are not written, so a
// later run with Resume picks up exactly what is missing; the error then
// matches ErrCancelled and ctx.Err(). Request failures are counted in the
// result, not returned as an error.
func RunBatch(ctx context.Context, opts Options, b BatchOptions) (BatchProgress, error) {
	eng, err := newEngine(opts)
	if err != nil {
		return BatchProgress{}, err
	}
	defer C.brg_engine_free(eng)
	var o C.brg_batch_options
	o.size = C.uint32_t(unsafe.Sizeof(o))
	if b.Resume {
		o.flags |= C.BRG_BATCH_RESUME
	}
	if b.Ordered {
		o.flags |= C.BRG_BATCH_ORDERED
	}
	if b.DryRun {
		o.flags |= C.BRG_BATCH_DRY_RUN
	}
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	cstr := func(s string) *C.char {
		if s == "" {
			return nil
		}
		p := C.CString(s)
		frees = append(frees, unsafe.Pointer(p))
		return p
	}
	o.input_path, o.output_path = cstr(b.Input), cstr(b.Output)
	o.endpoint, o.api_key_env, o.prices_path = cstr(b.Endpoint), cstr(b.APIKeyEnv), cstr(b.PricesPath)
	if n := len(b.Header); n > 0 {
		hs := (*[1 << 20]C.brg_header)(C.malloc(C.size_t(n) * C.size_t(unsafe.Sizeof(C.brg_header{}))))[:n:n]
		frees = append(frees, unsafe.Pointer(&hs[0]))
		i := 0
		for k, v := range b.Header {
			hs[i].name, hs[i].value = cstr(k), cstr(v)
			i++
		}
		o.headers, o.n_headers = &hs[0], C.uint32_t(n)
	}
	o.reorder_window = C.uint32_t(b.ReorderWindow)
	o.deadline_ms = C.int64_t(b.Deadline / time.Millisecond)
	o.max_retries = -1
	if b.MaxRetries != nil {
		o.max_retries = C.int32_t(*b.MaxRetries)
	}
	o.shard_index, o.shard_count = C.uint32_t(b.ShardIndex), C.uint32_t(b.ShardCount)

	h := cgo.NewHandle(&batchRun{ctx: ctx, progress: b.Progress})
	defer h.Delete()
	user := (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	defer C.free(unsafe.Pointer(user))
	*user = C.uintptr_t(h)
	var final C.brg_batch_progress
	final.size = C.uint32_t(unsafe.Sizeof(final))
	var cerr *C.char
	rc := C.gobrg_batch_run(eng, &o, C.gobrg_progress_fn(), unsafe.Pointer(user), &final, &cerr)
	res := goProgress(&final)
	if rc != C.BRG_OK {
		msg := C.GoString(cerr)
		C.free(unsafe.Pointer(cerr))
		return res, withCtx(newError(rc, msg), ctx)
	}
	return res, nil
}
