"""ctypes declarations of capi/barrage.h and the library loader.

Struct layouts mirror the header field for field, in order; each struct's
``size`` member is set to ``ctypes.sizeof`` of the mirror, as the ABI asks.
"""
import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int, c_int32,
                    c_int64, c_size_t, c_uint32, c_uint64, c_void_p)

SONAME = "libbarrage.so.0"


class BrgHeader(Structure):
    _fields_ = [("name", c_char_p), ("value", c_char_p)]


class BrgRequest(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("method", c_char_p),
        ("url", c_char_p),
        ("headers", POINTER(BrgHeader)),
        ("n_headers", c_uint32),
        ("body", c_char_p),  # const void *; bytes are passed as-is (length below)
        ("body_len", c_size_t),
        ("user_data", c_uint64),
        ("timeout_ms", c_int64),
        ("deadline_ms", c_int64),
        ("max_retries", c_int32),
        ("token_estimate", c_uint32),
        ("limit_key", c_char_p),
        ("group", c_uint64),
        # since 0.2.0 (third part; a library reads it only when size covers it)
        ("first_token_timeout_ms", c_int64),
        ("stream_idle_timeout_ms", c_int64),
    ]


class BrgResult(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("id", c_uint64),
        ("user_data", c_uint64),
        ("status", c_int32),
        ("http_status", c_int32),
        ("attempts", c_uint32),
        ("reserved0", c_uint32),
        ("body", c_void_p),
        ("body_len", c_size_t),
        ("error", c_char_p),
        ("queued_us", c_int64),
        ("ttfb_us", c_int64),
        ("total_us", c_int64),
        ("prompt_tokens", c_int64),
        ("completion_tokens", c_int64),
        ("sent_us", c_int64),
        ("request_id", c_char_p),
        # since 0.2.0: present only when the producing library's r.size covers
        # them (has_stream_fields below), so a 0.1 library is still readable.
        ("ttft_us", c_int64),
        ("events", c_uint32),
        ("reserved1", c_uint32),
        ("gap_max_us", c_int64),
        ("gap_mean_us", c_int64),
        # since 0.4.0: present only when r.size covers them (has_0_4_fields)
        ("retry_after_ms", c_int64),
        ("headers", c_void_p),  # "name: value\n" each (BRG_REQ_HEADERS), length below
        ("headers_len", c_size_t),
    ]


# Size of a 0.2 brg_result up to and including gap_mean_us: a result whose
# size is smaller came from an older library and lacks the stream fields.
RESULT_STREAM_FIELDS_END = BrgResult.gap_mean_us.offset + ctypes.sizeof(c_int64)
# The same for 0.4's retry_after_ms, headers and headers_len.
RESULT_0_4_FIELDS_END = BrgResult.headers_len.offset + ctypes.sizeof(c_size_t)


_STATS_U64 = ["submitted", "completed", "failed", "cancelled", "retried", "timed_out",
              "queued", "in_flight", "connections_open", "connections_idle",
              "connections_opened", "tls_resumed", "bytes_sent", "bytes_received",
              "results_waiting", "waiting_rate", "throttled", "cooling_keys",
              "breaker_open_keys", "rejected", "prompt_tokens", "completion_tokens",
              "cache_hits", "shared_round_trips", "shared_fallback_keys"]


class BrgStats(Structure):
    _fields_ = [("size", c_uint32), ("backend", c_int32)] + [(n, c_uint64) for n in _STATS_U64]


class BrgBatchOptions(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("input_path", c_char_p),
        ("output_path", c_char_p),
        ("endpoint", c_char_p),
        ("api_key_env", c_char_p),
        ("headers", POINTER(BrgHeader)),
        ("n_headers", c_uint32),
        ("reorder_window", c_uint32),
        ("prices_path", c_char_p),
        ("deadline_ms", c_int64),
        ("max_retries", c_int32),
        ("shard_index", c_uint32),
        ("shard_count", c_uint32),
        ("reserved0", c_uint32),
    ]


class BrgBatchProgress(Structure):
    _fields_ = [
        ("size", c_uint32), ("reserved0", c_uint32),
        ("total", c_uint64), ("done", c_uint64), ("ok", c_uint64), ("failed", c_uint64),
        ("cached", c_uint64), ("invalid", c_uint64), ("skipped", c_uint64),
        ("in_flight", c_uint64),
        ("prompt_tokens", c_int64), ("completion_tokens", c_int64),
        ("cost_usd", c_double), ("elapsed_s", c_double),
    ]

    def to_dict(self):
        return {n: getattr(self, n) for n, _ in self._fields_ if n not in ("size", "reserved0")}


BATCH_PROGRESS_FN = CFUNCTYPE(c_int, POINTER(BrgBatchProgress), c_void_p)

# flags
REQ_STREAM = 0x1
REQ_NO_RETRY = 0x2
REQ_NO_CACHE = 0x4
REQ_HEADERS = 0x8  # since 0.4.0; an older library refuses it (see HAS_HEADERS)
# since 0.5.0, with REQ_STREAM only: a 2xx event stream's final body is b""
# (see HAS_NO_STREAM_BODY)
REQ_NO_STREAM_BODY = 0x10
RES_PARTIAL = 0x1
RES_CACHED = 0x2
BATCH_RESUME = 0x1
BATCH_ORDERED = 0x2
BATCH_DRY_RUN = 0x4


def _env_candidates(env):
    """BARRAGE_LIBRARY names the library file or a directory holding it
    (directly or in capi/, as a Meson build dir does)."""
    if os.path.isdir(env):
        for sub in ("", "capi", "lib"):
            p = os.path.join(env, sub, SONAME)
            if os.path.exists(p):
                yield p
        yield os.path.join(env, SONAME)  # for the error message
    else:
        yield env


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    # 1. the copy bundled in an installed wheel
    bundled = os.path.join(here, "_libs", SONAME)
    if os.path.exists(bundled):
        yield bundled
    # 2. BARRAGE_LIBRARY (file or directory)
    env = os.environ.get("BARRAGE_LIBRARY")
    if env:
        yield from _env_candidates(env)
        return
    # 3. a build dir of the checkout this package is imported from
    d = here
    while True:
        for sub in ("build", "builddir", "_build"):
            p = os.path.join(d, sub, "capi", SONAME)
            if os.path.exists(p):
                yield p
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    # 4. the system
    found = ctypes.util.find_library("barrage")
    if found:
        yield found
    for prefix in (os.environ.get("BARRAGE_PREFIX"), "/usr/local", "/usr"):
        if prefix:
            for libdir in ("lib", "lib64", "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu"):
                p = os.path.join(prefix, libdir, SONAME)
                if os.path.exists(p):
                    yield p
    yield SONAME  # let the dynamic loader search (LD_LIBRARY_PATH, ld.so.cache)


def _declare(lib):
    E = c_void_p  # brg_engine * / brg_config * as opaque pointers
    sig = {
        "brg_config_new": (E, []),
        "brg_config_set_int": (c_int, [E, c_int, c_int64]),
        "brg_config_set_str": (c_int, [E, c_int, c_char_p]),
        "brg_config_from_env": (c_int, [E]),
        "brg_config_error": (c_char_p, [E]),
        "brg_config_free": (None, [E]),
        "brg_engine_new": (c_int, [E, POINTER(c_void_p)]),
        "brg_engine_free": (None, [E]),
        "brg_submit": (c_int, [E, POINTER(BrgRequest), POINTER(c_uint64)]),
        "brg_cancel": (c_int, [E, c_uint64]),
        "brg_cancel_group": (c_int, [E, c_uint64]),
        "brg_group_deadline": (c_int, [E, c_uint64, c_int64]),
        "brg_results": (c_size_t, [E, POINTER(POINTER(BrgResult)), c_size_t]),
        "brg_result_free": (None, [POINTER(BrgResult)]),
        "brg_start": (c_int, [E]),
        "brg_results_fd": (c_int, [E]),
        "brg_stats": (c_int, [E, POINTER(BrgStats)]),
        "brg_strerror": (c_char_p, [c_int]),
        "brg_status_name": (c_char_p, [c_int]),
        "brg_last_error": (c_char_p, []),
        "brg_version": (c_char_p, []),
        "brg_version_hex": (c_uint32, []),
        "brg_batch_run": (c_int, [E, POINTER(BrgBatchOptions), BATCH_PROGRESS_FN, c_void_p,
                                  POINTER(BrgBatchProgress)]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


def load():
    errors = []
    for path in _candidates():
        try:
            # CDLL (not PyDLL): the GIL is released for the duration of every call.
            return _declare(ctypes.CDLL(path)), path
        except OSError as exc:
            errors.append(f"{path}: {exc}")
    raise OSError("libbarrage not found (set BARRAGE_LIBRARY): " + "; ".join(errors))


lib, library_path = load()
# The loaded library takes BRG_REQ_HEADERS (0.4.0 and later); an older one
# refuses the flag with BRG_E_INVALID, so it is only set when this is true.
HAS_HEADERS = lib.brg_version_hex() >= 0x000400


# The loaded library takes BRG_REQ_NO_STREAM_BODY (0.5.0 and later); an older
# one refuses the unknown flag bit with BRG_E_INVALID. Without it the flag is
# not sent and a stream's final body is kept: the same events and usage, only
# the memory saving is lost.
HAS_NO_STREAM_BODY = lib.brg_version_hex() >= 0x000500
