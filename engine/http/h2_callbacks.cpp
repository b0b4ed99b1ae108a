// nghttp2's callbacks for H2Session: frames and headers in, per-stream
// response state and limits, and every stream reported exactly once.
// nghttp2 calls back into C code paths, so nothing here may throw.
#include "http/h2_stream.hpp"

namespace barrage::http {

// ---- nghttp2 callbacks --------------------------------------------------

struct H2Session::Callbacks {
  static H2Session& self(void* user_data) noexcept { return *static_cast<H2Session*>(user_data); }

  static Stream* open_stream(H2Session& h, int32_t stream_id) noexcept {
    auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(h.session_, stream_id));
    return (s && !s->reported) ? s : nullptr;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* ud) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* s = open_stream(self(ud), frame->hd.stream_id);
    if (!s) return 0;
    s->response.set_started();
    s->block = s->final_seen ? Stream::Block::trailers : Stream::Block::none;
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                       void* ud) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H2Session& h = self(ud);
    Stream* s = open_stream(h, frame->hd.stream_id);
    if (!s) return 0;
    s->header_bytes += namelen + valuelen;
    if (s->header_bytes > h.options_.max_header_bytes) {
      h.reset_stream(s, BRG_E_TOO_LARGE,
                     text({"response headers exceed ", Num(h.options_.max_header_bytes).sv(), " bytes"}));
      return 0;
    }
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      int code = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), code);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || code < 100 || code > 999) {
        h.reset_stream(s, BRG_E_PROTOCOL, text({"invalid :status in HTTP/2 response"}));
        return 0;
      }
      if (code < 200) {
        s->block = Stream::Block::interim;  // 1xx: skipped, the final response follows
        return 0;
      }
      s->block = Stream::Block::final_response;
      s->final_seen = true;
      s->response.set_status(code);
      if (h.events_) h.events_->on_first_byte(s->user);
      return 0;
    }
    if (s->block != Stream::Block::final_response || n.empty() || n.front() == ':') return 0;
    if (!s->response.add_header(n, v)) {
      h.reset_stream(s, BRG_E_NOMEM, text({"out of memory storing response headers"}));
      return 0;
    }
    if (n == "content-length" && s->keep_body) {
      size_t len = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), len);
      if (r.ec == std::errc() && len <= h.options_.max_body_bytes) {
        try {
          s->response.body_.reserve(std::min(len, kMaxBodyReserve));
        } catch (const std::bad_alloc&) {
          // Growth will be attempted (and reported) as data arrives.
        }
      }
    }
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                                size_t len, void* ud) noexcept {
    H2Session& h = self(ud);
    Stream* s = open_stream(h, stream_id);
    if (!s) return 0;  // reset or cancelled: nghttp2 still credits the window
    if (s->keep_body) {
      s->body_bytes += len;
      if (s->body_bytes > h.options_.max_body_bytes) {
        h.reset_stream(s, BRG_E_TOO_LARGE,
                       text({"response body exceeds ", Num(h.options_.max_body_bytes).sv(), " bytes"}));
        return 0;
      }
      try {
        s->response.body_.append(reinterpret_cast<const char*>(data), len);
      } catch (const std::bad_alloc&) {
        h.reset_stream(s, BRG_E_NOMEM, text({"out of memory storing the response body"}));
        return 0;
      }
    }
    if (h.events_ && !h.events_->on_data(s->user, s->response, reinterpret_cast<const char*>(data), len) &&
        s->keep_body) {
      s->keep_body = false;
      s->response.drop_body(0);
    }
    return 0;
  }

  static void end_stream(H2Session& h, Stream* s) noexcept {
    if (!s->final_seen) {
      h.reset_stream(s, BRG_E_PROTOCOL, text({"HTTP/2 stream ended without a final response"}));
      return;
    }
    s->response.set_headers_complete();
    h.complete(s);
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* ud) noexcept {
    H2Session& h = self(ud);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA: {
        Stream* s = open_stream(h, frame->hd.stream_id);
        if (!s) break;
        if (frame->hd.type == NGHTTP2_HEADERS && s->block == Stream::Block::final_response) {
          s->response.set_headers_complete();
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) end_stream(h, s);
        break;
      }
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) h.settings_received_ = true;
        break;
      case NGHTTP2_RST_STREAM: {
        Stream* s = open_stream(h, frame->hd.stream_id);
        if (s) s->peer_reset = true;  // reported by on_stream_close, which follows
        break;
      }
      case NGHTTP2_GOAWAY: {
        h.goaway_received_ = true;
        h.goaway_last_id_ = frame->goaway.last_stream_id;
        // Report the streams the server will not process now rather than
        // when nghttp2 gets to them: queued ones only fail at the next flush.
        const int32_t last = frame->goaway.last_stream_id;
        h.live_.for_each([&](Stream* s) {
          if (!s->reported && s->id > last) {
            h.report_error(s, BRG_E_IO, text({"server is going away (GOAWAY); request not processed"}),
                           true);
          }
        });
        break;
      }
      default:
        break;
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* ud) noexcept {
    H2Session& h = self(ud);
    Stream* s = h.find(stream_id);
    if (!s) return 0;
    if (!s->reported) h.report_closed(s, error_code);
    // The Stream is recycled: nghttp2 must not hand it out for this id again.
    nghttp2_session_set_stream_user_data(h.session_, stream_id, nullptr);
    h.release(s);
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* ud) noexcept {
    H2Session& h = self(ud);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      Stream* s = h.find(frame->hd.stream_id);
      if (s) s->headers_sent = true;
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
      h.goaway_sent_ = true;
      // We never close a connection on our own, so an error GOAWAY means
      // nghttp2 found a connection-level protocol error in what it received;
      // its debug data says what.
      if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        const std::string_view debug(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                                     frame->goaway.opaque_data_len);
        std::string_view detail = h.last_lib_error_;
        h.fail_session(text({"HTTP/2 connection error ", h2_code(frame->goaway.error_code),
                             debug.empty() ? "" : ": ", debug, detail.empty() ? "" : " (", detail,
                             detail.empty() ? "" : ")"}));
      }
    }
    return 0;
  }

  static int on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame, int lib_error,
                               void* ud) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Session& h = self(ud);
    Stream* s = h.find(frame->hd.stream_id);
    if (!s) return 0;
    h.report_error(s, BRG_E_IO, text({"HTTP/2 request not sent: ", lib_text(lib_error)}), true);
    // Unless nghttp2 opened the stream (then on_stream_close follows), this
    // is the last time it mentions the stream.
    if (!nghttp2_session_find_stream(session, frame->hd.stream_id)) h.release(s);
    return 0;
  }

  static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                                   void* ud) noexcept {
    H2Session& h = self(ud);
    if (frame->hd.stream_id != 0) {
      Stream* s = open_stream(h, frame->hd.stream_id);
      if (s) s->lib_error = lib_error;  // nghttp2 resets the stream; this says why
    }
    try {
      h.last_lib_error_.assign(lib_text(lib_error));
    } catch (const std::bad_alloc&) {
    }
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, size_t len, void* ud) noexcept {
    try {
      self(ud).last_lib_error_.assign(msg, std::min<size_t>(len, 256));
    } catch (const std::bad_alloc&) {
    }
    return 0;
  }

  // Request body straight from the caller's wire buffer. A stream that has
  // already been reported may have lost that buffer: it sends nothing more
  // (its RST_STREAM or close is on the way).
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void*) noexcept {
    auto* s = static_cast<Stream*>(source->ptr);
    if (s->reported) return NGHTTP2_ERR_DEFERRED;
    const size_t n = std::min(length, s->request_body.size() - s->request_sent);
    std::memcpy(buf, s->request_body.data() + s->request_sent, n);
    s->request_sent += n;
    if (s->request_sent == s->request_body.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      s->body_done = true;
    }
    return static_cast<ssize_t>(n);
  }
};

nghttp2_data_source_read_callback H2Session::body_reader() noexcept { return Callbacks::read_body; }

void H2Session::install_callbacks(nghttp2_session_callbacks* cbs) noexcept {
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, Callbacks::on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, Callbacks::on_frame_not_send);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, Callbacks::on_invalid_frame_recv);
  nghttp2_session_callbacks_set_error_callback2(cbs, Callbacks::on_error);
}

}  // namespace barrage::http
