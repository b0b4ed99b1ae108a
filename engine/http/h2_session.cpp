// HTTP/2 client session: nghttp2 does the framing, HPACK, flow control and
// stream states; this file submits, feeds, flushes and cancels, and ends
// streams (h2_callbacks.cpp handles what nghttp2 reports). Nothing here may
// throw: nghttp2 calls back into C code paths.
#include "http/h2_session.hpp"

#include <algorithm>

#include "http/h2_stream.hpp"

namespace barrage::http {

H2Session::Stream* H2Session::acquire() noexcept {
  Stream* s = nullptr;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
  } else {
    s = new (std::nothrow) Stream;
    if (!s) return nullptr;
  }
  s->reset();
  return s;
}

void H2Session::release(Stream* s) noexcept {
  if (s->hook.linked()) live_.remove(s->hook);
  if (free_.size() < kMaxPooledStreams) {
    try {
      free_.push_back(s);
      return;
    } catch (const std::bad_alloc&) {
    }
  }
  delete s;
}

H2Session::Stream* H2Session::find(int32_t stream_id) const noexcept {
  if (session_) {
    auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
    if (s) return s;
  }
  // Streams whose HEADERS are still queued are not known to nghttp2 as
  // streams yet; those lookups (cancel, frame not sent) are rare.
  Stream* found = nullptr;
  live_.for_each([&](Stream* s) {
    if (s->id == stream_id) found = s;
  });
  return found;
}

// ---- reporting: every path below marks the stream reported first ---------

void H2Session::complete(Stream* s) noexcept {
  s->reported = true;
  --open_;
  // The server answered before the whole request body went out: the rest
  // is not wanted, and the wire buffer may be freed once we report.
  if (!s->body_done) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  if (events_) events_->on_complete(s->user, s->response);
}

void H2Session::report_error(Stream* s, int status, std::string message, bool unprocessed) noexcept {
  if (s->reported) return;
  s->reported = true;
  --open_;
  if (events_) events_->on_stream_error(s->user, status, std::move(message), unprocessed);
}

// A failure found on our side (limit, malformed response): this stream only.
void H2Session::reset_stream(Stream* s, int status, std::string message) noexcept {
  if (s->reported) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  report_error(s, status, std::move(message), false);
}

void H2Session::report_closed(Stream* s, uint32_t error_code) noexcept {
  if (error_code == NGHTTP2_REFUSED_STREAM) {
    report_error(s, BRG_E_IO, text({"stream refused by the server (REFUSED_STREAM)"}), true);
  } else if (goaway_received_ && s->id > goaway_last_id_) {
    report_error(s, BRG_E_IO, text({"server is going away (GOAWAY); request not processed"}), true);
  } else if (s->peer_reset) {
    report_error(s, BRG_E_IO, text({"stream reset by the server: ", h2_code(error_code)}), false);
  } else if (s->lib_error != 0) {
    report_error(s, BRG_E_PROTOCOL, text({"HTTP/2 stream error: ", lib_text(s->lib_error)}), false);
  } else {
    report_error(s, BRG_E_PROTOCOL,
                 text({"HTTP/2 stream closed before the response ended: ", h2_code(error_code)}), false);
  }
}

void H2Session::fail_all(int status, std::string_view message) noexcept {
  failed_ = true;
  if (error_.empty()) {
    try {
      error_.assign(message);
    } catch (const std::bad_alloc&) {
    }
  }
  // An event may cancel other streams (only marks them reported) or try to
  // submit (refused now); flush() is a no-op inside, so no stream is
  // unlinked while the list is walked.
  ++depth_;
  live_.for_each([&](Stream* s) {
    // Never sent, or above a GOAWAY's last-stream-id (RFC 9113 6.8: not
    // processed): safe to send again, whatever ended the connection.
    const bool unprocessed = !s->headers_sent || (goaway_received_ && s->id > goaway_last_id_);
    if (!s->reported) report_error(s, status, text({message}), unprocessed);
  });
  --depth_;
}

void H2Session::fail_session(std::string message) noexcept {
  if (failed_) return;
  error_ = std::move(message);
  if (error_.empty()) error_ = "HTTP/2 error";  // fits the small-string buffer: cannot throw
  fail_all(BRG_E_PROTOCOL, error_);
}

// ---- session ------------------------------------------------------------

H2Session::~H2Session() {
  events_ = nullptr;  // nghttp2_session_del reports nothing, but make sure
  if (session_) nghttp2_session_del(session_);
  while (Stream* s = live_.pop_front()) delete s;
  for (Stream* s : free_) delete s;
}

bool H2Session::init(H2Events* events, const H2Options& options, std::string* out,
                     std::string* err) noexcept {
  auto refuse = [&](std::string_view why) {
    if (err) {
      try {
        err->assign(why);
      } catch (const std::bad_alloc&) {
      }
    }
    return false;
  };
  if (session_) return refuse("HTTP/2 session already initialised");
  if (!events || !out) return refuse("HTTP/2 session needs events and an output buffer");
  if (options.stream_window > uint32_t(NGHTTP2_MAX_WINDOW_SIZE) ||
      options.connection_window > uint32_t(NGHTTP2_MAX_WINDOW_SIZE)) {
    return refuse("HTTP/2 window size above 2^31-1");
  }

  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return refuse("out of memory");
  install_callbacks(cbs);
  const int rv = nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    session_ = nullptr;
    return refuse(lib_text(rv));
  }

  events_ = events;
  out_ = out;
  options_ = options;
  // Push is useless to an API client; a large stream window lets a long
  // answer arrive without waiting a round trip for each WINDOW_UPDATE.
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options.stream_window},
  };
  int r = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (r == 0 && options.connection_window > uint32_t(NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)) {
    r = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                              int32_t(options.connection_window));
  }
  if (r != 0) {
    nghttp2_session_del(session_);
    session_ = nullptr;
    return refuse(lib_text(r));
  }
  if (!flush()) return refuse(error_);
  return true;
}

int32_t H2Session::submit(std::string_view http1_wire, bool keep_body, void* stream_user,
                          std::string* err) noexcept {
  if (session_ && !failed_ && !goaway_received_ && !goaway_sent_ && !ids_exhausted_) {
    switch (builder_.build(http1_wire, options_.tls ? "https" : "http")) {
      case H2RequestBuilder::Result::ok:
        break;
      case H2RequestBuilder::Result::invalid:
        if (err) err->assign(builder_.reason());
        return BRG_E_INVALID;
      case H2RequestBuilder::Result::no_memory:
        if (err) err->assign(builder_.reason());
        return BRG_E_NOMEM;
    }
  }
  return submit_fields(builder_.fields(), builder_.body(), keep_body, stream_user, err);
}

int32_t H2Session::submit(const RequestHead& head, bool keep_body, void* stream_user, std::string* err) noexcept {
  if (!head.h2_ready(err)) return BRG_E_INVALID;
  return submit_fields(head.h2_fields(), head.body(), keep_body, stream_user, err);
}

int32_t H2Session::submit_fields(const std::vector<HeaderView>& fields, std::string_view request_body,
                                 bool keep_body, void* stream_user, std::string* err) noexcept {
  auto refuse = [&](int status, std::string_view why) -> int32_t {
    if (err) {
      try {
        err->assign(why);
      } catch (const std::bad_alloc&) {
      }
    }
    return status;
  };
  if (!session_) return refuse(BRG_E_CLOSED, "HTTP/2 session not initialised");
  if (failed_ || goaway_received_ || goaway_sent_ || ids_exhausted_) {
    return refuse(BRG_E_CLOSED, "HTTP/2 connection is going away");
  }
  try {
    nv_.resize(fields.size());
  } catch (const std::bad_alloc&) {
    return refuse(BRG_E_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    // nghttp2 copies names and values (no NO_COPY flags): the lower-cased
    // names live in the builder, which the next submit reuses.
    nv_[i].name = reinterpret_cast<uint8_t*>(const_cast<char*>(fields[i].name.data()));
    nv_[i].namelen = fields[i].name.size();
    nv_[i].value = reinterpret_cast<uint8_t*>(const_cast<char*>(fields[i].value.data()));
    nv_[i].valuelen = fields[i].value.size();
    nv_[i].flags = NGHTTP2_NV_FLAG_NONE;
  }

  Stream* s = acquire();
  if (!s) return refuse(BRG_E_NOMEM, "out of memory");
  s->user = stream_user;
  s->keep_body = keep_body;
  s->request_body = request_body;
  s->body_done = s->request_body.empty();
  nghttp2_data_provider body;
  body.source.ptr = s;
  body.read_callback = body_reader();
  const int32_t id = nghttp2_submit_request(session_, nullptr, nv_.data(), nv_.size(),
                                            s->body_done ? nullptr : &body, s);
  if (id < 0) {
    release(s);
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
      ids_exhausted_ = true;
      return refuse(BRG_E_CLOSED, "HTTP/2 stream ids exhausted on this connection");
    }
    if (id == NGHTTP2_ERR_NOMEM) return refuse(BRG_E_NOMEM, "out of memory");
    return refuse(BRG_E_INVALID, lib_text(id));
  }
  s->id = id;
  live_.push_back(s->hook, s);
  ++open_;
  // The next id would not fit: this connection takes no more requests.
  if (id > INT32_MAX - 2) ids_exhausted_ = true;
  return id;
}

bool H2Session::feed(const char* p, size_t n) noexcept {
  if (!session_ || dead_ || failed_) {
    if (error_.empty()) error_ = text({"HTTP/2 session is not usable"});
    return false;
  }
  if (depth_ > 0) {
    fail_session(text({"H2Session::feed called from inside an HTTP/2 event"}));
    return false;
  }
  last_lib_error_.clear();  // only a message from this input may explain its failure
  ++depth_;
  const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(p), n);
  --depth_;
  if (rv < 0) {
    dead_ = true;
    fail_session(text({"HTTP/2 receive failed: ", lib_text(int(rv))}));
    return false;
  }
  // nghttp2 reports a connection error only by queueing a GOAWAY and
  // refusing new requests. Without a GOAWAY from the peer, refusing means
  // exactly that; sending it now runs on_frame_send, which fails the session
  // with nghttp2's reason (after a peer GOAWAY the next flush() does that).
  if (!failed_ && !goaway_received_ && !ids_exhausted_ &&
      !nghttp2_session_check_request_allowed(session_)) {
    flush();
    if (!failed_) fail_session(text({"HTTP/2 connection error", last_lib_error_.empty() ? "" : ": ",
                                     last_lib_error_}));
  }
  return !failed_;
}

bool H2Session::flush(size_t max_out) noexcept {
  if (!session_ || dead_) return false;
  if (depth_ > 0) return !failed_;  // the caller's flush after feed() sends it
  ++depth_;
  // nghttp2 hands out one frame per call and keeps the rest, so stopping
  // at the budget loses nothing.
  while (out_->size() < max_out) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n == 0) break;
    if (n < 0) {
      dead_ = true;
      fail_session(text({"HTTP/2 send failed: ", lib_text(int(n))}));
      break;
    }
    try {
      out_->append(reinterpret_cast<const char*>(data), size_t(n));
    } catch (const std::bad_alloc&) {
      // A frame lost halfway would corrupt the connection for everyone.
      dead_ = true;
      fail_session(text({"out of memory queueing HTTP/2 frames"}));
      break;
    }
  }
  --depth_;
  return !failed_;
}

void H2Session::cancel(int32_t stream_id) noexcept {
  if (!session_ || stream_id <= 0) return;
  Stream* s = find(stream_id);
  if (!s || s->reported) return;
  s->reported = true;
  --open_;
  // Also cancels HEADERS still queued; nghttp2 then drops the request unsent.
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
}

void H2Session::goodbye() noexcept {
  if (!session_ || dead_ || goaway_sent_) return;
  // A client's last-stream-id names server-initiated streams: none (push is off).
  if (nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0) == 0) flush();
  goaway_sent_ = true;
}

uint32_t H2Session::max_concurrent_streams() const noexcept {
  if (!session_) return 0;
  const uint32_t v = nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return settings_received_ ? v : std::min(v, kStreamsBeforeSettings);
}

bool H2Session::can_submit() const noexcept {
  return session_ && !going_away() && !ids_exhausted_ && open_ < max_concurrent_streams();
}

bool H2Session::wants_io() const noexcept {
  if (!session_ || dead_) return false;
  return nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_);
}

bool H2Session::wants_write() const noexcept {
  return session_ && !dead_ && nghttp2_session_want_write(session_);
}

}  // namespace barrage::http
