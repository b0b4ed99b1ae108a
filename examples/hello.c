/* hello.c: the smallest complete barrage program. Start reading here.
 *
 * It sends one chat-completion POST to the URL you give it, waits for the
 * answer, and prints the outcome. Build it against an installed libbarrage:
 *
 *   cc -std=c99 hello.c $(pkg-config --cflags --libs barrage) -o hello
 *   OPENAI_API_KEY=sk-... ./hello https://api.openai.com/v1/chat/completions
 *
 * or against a local test server with its own CA:
 *
 *   ./hello https://localhost:8443/v1/chat/completions ca.pem
 *
 * The shape of every barrage program is the same four steps:
 *   1. make a brg_config, set options, create a brg_engine from it;
 *   2. brg_submit requests (the engine copies them);
 *   3. call brg_poll until results arrive, take them with brg_results;
 *   4. free each result, then the engine.
 *
 * Ownership, in one place:
 *   - brg_config_new returns a config you own; brg_engine_new copies it, so
 *     free it with brg_config_free as soon as the engine exists.
 *   - brg_engine_new hands you the engine; brg_engine_free releases it and
 *     everything still inside it (unfinished requests, untaken results).
 *   - brg_submit copies the URL, headers and body before it returns: your
 *     buffers may be reused or freed right after the call.
 *   - every brg_result* from brg_results is yours; its body and error text
 *     live inside it and die with brg_result_free. Results you already took
 *     stay valid even after brg_engine_free.
 *   - strings from brg_strerror, brg_status_name and brg_version are static;
 *     never free them.
 *
 * Exit status: 0 when the request succeeded (HTTP 2xx), 1 when it failed,
 * 2 on a usage error. */
#include <barrage.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  /* A minimal OpenAI-style chat-completion body. */
  static const char body[] =
      "{\"model\":\"gpt-4o-mini\","
      "\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}";
  const char *url, *ca_file, *api_key;
  char auth[512];
  brg_header headers[2];
  brg_request req;
  brg_config *cfg;
  brg_engine *engine = NULL;
  brg_result *result = NULL;
  int rc, ok;

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s URL [CA_FILE]\n"
                    "  sends one chat-completion POST to URL and prints the answer;\n"
                    "  CA_FILE adds a trusted CA (PEM), e.g. for a local test server;\n"
                    "  OPENAI_API_KEY, if set, is sent as a Bearer token.\n",
            argc > 0 ? argv[0] : "hello");
    return 2;
  }
  url = argv[1];
  ca_file = argc == 3 ? argv[2] : NULL;

  /* Step 1: configuration. Defaults are sensible; brg_config_from_env picks
   * up BARRAGE_* variables (e.g. BARRAGE_BACKEND=epoll) so a deployment can
   * tune the engine without recompiling. */
  cfg = brg_config_new();
  if (cfg == NULL) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  if (brg_config_from_env(cfg) != BRG_OK) {
    fprintf(stderr, "bad environment: %s\n", brg_config_error(cfg));
    brg_config_free(cfg);
    return 1;
  }
  if (ca_file != NULL && brg_config_set_str(cfg, BRG_OPT_CA_FILE, ca_file) != BRG_OK) {
    fprintf(stderr, "bad CA file option: %s\n", brg_config_error(cfg));
    brg_config_free(cfg);
    return 1;
  }
  rc = brg_engine_new(cfg, &engine);
  brg_config_free(cfg); /* the engine took a copy; ours is no longer needed */
  if (rc != BRG_OK) {
    /* On failure engine is NULL and nothing needs freeing. */
    fprintf(stderr, "brg_engine_new: %s: %s\n", brg_strerror(rc), brg_last_error());
    return 1;
  }

  /* Step 2: describe the request. Zero the struct first and set size: the
   * library uses it to know which fields your header version has. */
  memset(&req, 0, sizeof req);
  req.size = sizeof req;
  req.method = "POST";
  req.url = url;
  headers[0].name = "Content-Type";
  headers[0].value = "application/json";
  req.headers = headers;
  req.n_headers = 1;
  api_key = getenv("OPENAI_API_KEY");
  if (api_key != NULL && api_key[0] != '\0') {
    snprintf(auth, sizeof auth, "Bearer %s", api_key);
    headers[1].name = "Authorization";
    headers[1].value = auth;
    req.n_headers = 2;
  }
  req.body = body;
  req.body_len = sizeof body - 1;
  req.max_retries = -1; /* -1: use the engine's default retry count */

  /* brg_submit copies everything; on failure no result will ever come. */
  rc = brg_submit(engine, &req, NULL);
  if (rc != BRG_OK) {
    fprintf(stderr, "brg_submit: %s: %s\n", brg_strerror(rc), brg_last_error());
    brg_engine_free(engine);
    return 1;
  }

  /* Step 3: run the engine on this thread until our one result is ready.
   * brg_poll(-1) sleeps until there is I/O or a timer to handle, and returns
   * how many results are waiting. A real program would submit many requests
   * and keep taking results as they come. */
  while (brg_results(engine, &result, 1) == 0) {
    rc = brg_poll(engine, -1);
    if (rc < 0) {
      fprintf(stderr, "brg_poll: %s\n", brg_strerror(rc));
      brg_engine_free(engine);
      return 1;
    }
  }

  /* Every result carries a status (BRG_OK or a negative brg_status), the
   * HTTP status if a response arrived, an error text ("" on success) and
   * the response body (also for HTTP errors, e.g. a provider's JSON error). */
  printf("status=%s (%d) http=%d attempts=%u\n", brg_status_name(result->status),
         (int)result->status, (int)result->http_status, (unsigned)result->attempts);
  if (result->error[0] != '\0') printf("error=%s\n", result->error);
  if (result->prompt_tokens >= 0)
    printf("usage: prompt_tokens=%lld completion_tokens=%lld\n",
           (long long)result->prompt_tokens, (long long)result->completion_tokens);
  printf("body=%.*s\n", (int)result->body_len, result->body ? result->body : "");
  ok = result->status == BRG_OK;

  /* Step 4: free the result (its body and error go with it), then the engine. */
  brg_result_free(result);
  brg_engine_free(engine);
  return ok ? 0 : 1;
}
