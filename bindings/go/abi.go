package barrage

/*
#include <barrage.h>
*/
import "C"

import "reflect"

// The binding's view of the C ABI, for the mirror check against
// tests/abi/abi_layout (abi_test.go): cgo's struct layouts as this package
// was compiled, and which Options field sets each BRG_OPT_* option.

type fieldLayout struct{ Offset, Size uintptr }

type structLayout struct {
	Size, Align uintptr
	Fields      map[string]fieldLayout
}

// abiStructs reads the layouts from cgo's Go types of the C structs
// (padding fields "_" are skipped; Go-keyword names lose cgo's "_" prefix).
func abiStructs() map[string]structLayout {
	types := map[string]reflect.Type{
		"brg_header":         reflect.TypeOf(C.brg_header{}),
		"brg_request":        reflect.TypeOf(C.brg_request{}),
		"brg_result":         reflect.TypeOf(C.brg_result{}),
		"brg_stats":          reflect.TypeOf(C.struct_brg_stats{}),
		"brg_batch_options":  reflect.TypeOf(C.brg_batch_options{}),
		"brg_batch_progress": reflect.TypeOf(C.brg_batch_progress{}),
	}
	out := map[string]structLayout{}
	for name, t := range types {
		sl := structLayout{Size: t.Size(), Align: uintptr(t.Align()), Fields: map[string]fieldLayout{}}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Name == "_" {
				continue
			}
			n := f.Name
			if len(n) > 1 && n[0] == '_' {
				n = n[1:]
			}
			sl.Fields[n] = fieldLayout{f.Offset, f.Type.Size()}
		}
		out[name] = sl
	}
	return out
}

// optionFields: every BRG_OPT_* option and the Options field that sets it
// (newConfig passes each with the same constant). The Go binding exposes
// every option; a new one fails abi_test.go until it is added here and to
// Options.
var optionFields = []struct {
	Number int
	Name   string // BRG_OPT_ name minus the prefix
	Field  string // Options field
}{
	{C.BRG_OPT_MAX_INFLIGHT, "MAX_INFLIGHT", "MaxInflight"},
	{C.BRG_OPT_MAX_CONNS_PER_HOST, "MAX_CONNS_PER_HOST", "MaxConnsPerHost"},
	{C.BRG_OPT_RATE_LIMIT, "RATE_LIMIT", "RateLimit"},
	{C.BRG_OPT_RATE_PERIOD_MS, "RATE_PERIOD_MS", "RatePeriod"},
	{C.BRG_OPT_RATE_BURST, "RATE_BURST", "RateBurst"},
	{C.BRG_OPT_TOKENS_PER_MINUTE, "TOKENS_PER_MINUTE", "TokensPerMinute"},
	{C.BRG_OPT_TIMEOUT_MS, "TIMEOUT_MS", "Timeout"},
	{C.BRG_OPT_CONNECT_TIMEOUT_MS, "CONNECT_TIMEOUT_MS", "ConnectTimeout"},
	{C.BRG_OPT_MAX_RETRIES, "MAX_RETRIES", "MaxRetries"},
	{C.BRG_OPT_BACKOFF_BASE_MS, "BACKOFF_BASE_MS", "BackoffBase"},
	{C.BRG_OPT_BACKOFF_MAX_MS, "BACKOFF_MAX_MS", "BackoffMax"},
	{C.BRG_OPT_BACKEND, "BACKEND", "Backend"},
	{C.BRG_OPT_CA_FILE, "CA_FILE", "CAFile"},
	{C.BRG_OPT_VERIFY_PEER, "VERIFY_PEER", "VerifyPeer"},
	{C.BRG_OPT_MAX_RESPONSE_BYTES, "MAX_RESPONSE_BYTES", "MaxResponseSize"},
	{C.BRG_OPT_CACHE_PATH, "CACHE_PATH", "CachePath"},
	{C.BRG_OPT_CACHE_TTL_S, "CACHE_TTL_S", "CacheTTL"},
	{C.BRG_OPT_ALLOW_HTTP, "ALLOW_HTTP", "AllowHTTP"},
	{C.BRG_OPT_MAX_PENDING, "MAX_PENDING", "MaxPending"},
	{C.BRG_OPT_MAX_HEADER_BYTES, "MAX_HEADER_BYTES", "MaxHeaderBytes"},
	{C.BRG_OPT_IDLE_TIMEOUT_MS, "IDLE_TIMEOUT_MS", "IdleTimeout"},
	{C.BRG_OPT_TOKENS_BURST, "TOKENS_BURST", "TokensBurst"},
	{C.BRG_OPT_RETRY_STATUSES, "RETRY_STATUSES", "RetryStatuses"},
	{C.BRG_OPT_BREAKER_THRESHOLD, "BREAKER_THRESHOLD", "BreakerThreshold"},
	{C.BRG_OPT_BREAKER_PAUSE_MS, "BREAKER_PAUSE_MS", "BreakerPause"},
	{C.BRG_OPT_TLS_RESUME, "TLS_RESUME", "TLSResume"},
	{C.BRG_OPT_MAX_HANDSHAKES, "MAX_HANDSHAKES", "MaxHandshakes"},
	{C.BRG_OPT_FIRST_TOKEN_TIMEOUT_MS, "FIRST_TOKEN_TIMEOUT_MS", "FirstTokenTimeout"},
	{C.BRG_OPT_STREAM_IDLE_TIMEOUT_MS, "STREAM_IDLE_TIMEOUT_MS", "StreamIdleTimeout"},
	{C.BRG_OPT_HTTP_VERSION, "HTTP_VERSION", "HTTPVersion"},
	{C.BRG_OPT_PROXY, "PROXY", "Proxy"},
	{C.BRG_OPT_NO_PROXY, "NO_PROXY", "NoProxy"},
	{C.BRG_OPT_DNS_SERVERS, "DNS_SERVERS", "DNSServers"},
	{C.BRG_OPT_MAX_SERVER_WAIT_MS, "MAX_SERVER_WAIT_MS", "MaxServerWait"},
	{C.BRG_OPT_SHARED_LIMITS, "SHARED_LIMITS", "SharedLimits"},
	{C.BRG_OPT_SHARED_NAMESPACE, "SHARED_NAMESPACE", "SharedNamespace"},
	{C.BRG_OPT_SHARED_TIMEOUT_MS, "SHARED_TIMEOUT_MS", "SharedTimeout"},
	{C.BRG_OPT_SHARED_LEASE_MS, "SHARED_LEASE_MS", "SharedLease"},
}
