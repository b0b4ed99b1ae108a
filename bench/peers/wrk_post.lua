-- wrk_post.lua: makes wrk POST the same JSON body as examples/load_c.c, so
-- every peer of bench/peers/compare sends the same bytes. With
-- WRK_CLOSE=1 in the environment it also asks for "Connection: close", so
-- each request opens a new connection with a full TLS handshake (wrk never
-- resumes TLS sessions).
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user",' ..
           '"content":"Say hello in one word."}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
if os.getenv("WRK_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end
