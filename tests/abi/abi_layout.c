/* abi_layout: prints, as JSON, what the bindings must mirror of barrage.h:
 * each public struct's size, alignment and field offsets/sizes, every option
 * row of BRG_OPTION_TABLE, and every status code. The bindings' tests compare
 * their own mirrors with this output (run it; it takes no arguments), and
 * check_abi_layout.py checks that no field of the header is missing here. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "barrage.h"

#define FIELDS_brg_header(F) \
  F(brg_header, name) \
  F(brg_header, value)

#define FIELDS_brg_request(F) \
  F(brg_request, size) \
  F(brg_request, flags) \
  F(brg_request, method) \
  F(brg_request, url) \
  F(brg_request, headers) \
  F(brg_request, n_headers) \
  F(brg_request, body) \
  F(brg_request, body_len) \
  F(brg_request, user_data) \
  F(brg_request, timeout_ms) \
  F(brg_request, deadline_ms) \
  F(brg_request, max_retries) \
  F(brg_request, token_estimate) \
  F(brg_request, limit_key) \
  F(brg_request, group) \
  F(brg_request, first_token_timeout_ms) \
  F(brg_request, stream_idle_timeout_ms)

#define FIELDS_brg_result(F) \
  F(brg_result, size) \
  F(brg_result, flags) \
  F(brg_result, id) \
  F(brg_result, user_data) \
  F(brg_result, status) \
  F(brg_result, http_status) \
  F(brg_result, attempts) \
  F(brg_result, reserved0) \
  F(brg_result, body) \
  F(brg_result, body_len) \
  F(brg_result, error) \
  F(brg_result, queued_us) \
  F(brg_result, ttfb_us) \
  F(brg_result, total_us) \
  F(brg_result, prompt_tokens) \
  F(brg_result, completion_tokens) \
  F(brg_result, sent_us) \
  F(brg_result, request_id) \
  F(brg_result, ttft_us) \
  F(brg_result, events) \
  F(brg_result, reserved1) \
  F(brg_result, gap_max_us) \
  F(brg_result, gap_mean_us) \
  F(brg_result, retry_after_ms) \
  F(brg_result, headers) \
  F(brg_result, headers_len)

#define FIELDS_brg_stats(F) \
  F(struct brg_stats, size) \
  F(struct brg_stats, backend) \
  F(struct brg_stats, submitted) \
  F(struct brg_stats, completed) \
  F(struct brg_stats, failed) \
  F(struct brg_stats, cancelled) \
  F(struct brg_stats, retried) \
  F(struct brg_stats, timed_out) \
  F(struct brg_stats, queued) \
  F(struct brg_stats, in_flight) \
  F(struct brg_stats, connections_open) \
  F(struct brg_stats, connections_idle) \
  F(struct brg_stats, connections_opened) \
  F(struct brg_stats, tls_resumed) \
  F(struct brg_stats, bytes_sent) \
  F(struct brg_stats, bytes_received) \
  F(struct brg_stats, results_waiting) \
  F(struct brg_stats, waiting_rate) \
  F(struct brg_stats, throttled) \
  F(struct brg_stats, cooling_keys) \
  F(struct brg_stats, breaker_open_keys) \
  F(struct brg_stats, rejected) \
  F(struct brg_stats, prompt_tokens) \
  F(struct brg_stats, completion_tokens) \
  F(struct brg_stats, cache_hits) \
  F(struct brg_stats, shared_round_trips) \
  F(struct brg_stats, shared_fallback_keys)

#define FIELDS_brg_batch_options(F) \
  F(brg_batch_options, size) \
  F(brg_batch_options, flags) \
  F(brg_batch_options, input_path) \
  F(brg_batch_options, output_path) \
  F(brg_batch_options, endpoint) \
  F(brg_batch_options, api_key_env) \
  F(brg_batch_options, headers) \
  F(brg_batch_options, n_headers) \
  F(brg_batch_options, reorder_window) \
  F(brg_batch_options, prices_path) \
  F(brg_batch_options, deadline_ms) \
  F(brg_batch_options, max_retries) \
  F(brg_batch_options, shard_index) \
  F(brg_batch_options, shard_count) \
  F(brg_batch_options, reserved0)

#define FIELDS_brg_batch_progress(F) \
  F(brg_batch_progress, size) \
  F(brg_batch_progress, reserved0) \
  F(brg_batch_progress, total) \
  F(brg_batch_progress, done) \
  F(brg_batch_progress, ok) \
  F(brg_batch_progress, failed) \
  F(brg_batch_progress, cached) \
  F(brg_batch_progress, invalid) \
  F(brg_batch_progress, skipped) \
  F(brg_batch_progress, in_flight) \
  F(brg_batch_progress, prompt_tokens) \
  F(brg_batch_progress, completion_tokens) \
  F(brg_batch_progress, cost_usd) \
  F(brg_batch_progress, elapsed_s)

#define ALL_STRUCTS(S) \
  S(brg_header, brg_header) \
  S(brg_request, brg_request) \
  S(brg_result, brg_result) \
  S(brg_stats, struct brg_stats) \
  S(brg_batch_options, brg_batch_options) \
  S(brg_batch_progress, brg_batch_progress)

static const char *sep(int *first) {
  const char *s = *first ? "" : ",";
  *first = 0;
  return s;
}

/* JSON string body: the docs hold quotes; nothing else needs escaping. */
static void put_json(const char *s) {
  putchar('"');
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') putchar('\\');
    putchar(*s);
  }
  putchar('"');
}

int main(void) {
  int first_struct = 1, first, first_field;
  printf("{\"version\":\"%d.%d.%d\",\n\"structs\":{", BRG_VERSION_MAJOR, BRG_VERSION_MINOR,
         BRG_VERSION_PATCH);
#define FIELD_(type, field)                                                             \
  printf("%s\"%s\":{\"offset\":%zu,\"size\":%zu}", sep(&first_field), #field, offsetof(type, field), \
         sizeof(((type *)0)->field));
#define STRUCT_(name, type)                                                                   \
  printf("%s\n\"%s\":{\"size\":%zu,\"align\":%zu,\"fields\":{", sep(&first_struct), #name, sizeof(type), \
         _Alignof(type));                                                                       \
  first_field = 1;                                                                            \
  FIELDS_##name(FIELD_) printf("}}");
  ALL_STRUCTS(STRUCT_)
  printf("},\n\"options\":{");
  first = 1;
#define OPTION_(number, NAME, name, type, def, lo, hi, aliases, doc)                              \
  printf("%s\n\"%s\":{\"number\":%d,\"name\":\"%s\",\"kind\":\"%s\",\"env\":\"BARRAGE_%s\",\"aliases\":", \
         sep(&first), #NAME, number, #name, #type, #NAME);                                    \
  put_json(aliases);                                                                          \
  printf(",\"default\":");                                                                     \
  put_json(#def);                                                                             \
  if (strcmp(#type, "STR") != 0) printf(",\"min\":%lld,\"max\":%lld", (long long)(lo), (long long)(hi)); \
  printf(",\"doc\":");                                                                         \
  put_json(doc);                                                                              \
  printf("}");
  BRG_OPTION_TABLE(OPTION_)
  printf("},\n\"status\":{\"OK\":%d", BRG_OK);
  first = 0;
#define STATUS_(name, code, text) printf("%s\"%s\":%d", sep(&first), "E_" #name, code);
  BRG_STATUS_MAP(STATUS_)
  printf("}}\n");
  return 0;
}
