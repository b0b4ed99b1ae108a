// One Batch API output line, formatted exactly as barrage.h documents it:
// id, custom_id, response (with the answer embedded byte for byte), error,
// and barrage's own figures.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace barrage {

struct OutputRecord {
  std::string_view id;  // "batch_req_..."
  bool has_custom_id = false;
  std::string_view custom_id;
  bool has_response = false;  // "response": null otherwise
  int status_code = 0;
  bool has_request_id = false;
  std::string_view request_id;
  std::string_view body;
  std::string_view error_code;  // "" = "error": null
  std::string_view error_message;
  uint64_t line = 0;
  uint32_t attempts = 0;
  bool cached = false;
  int64_t latency_us = -1;  // -1 = null
  int64_t ttfb_us = -1;
  int64_t prompt_tokens = -1;
  int64_t completion_tokens = -1;
  std::string_view model;  // "" = null
  double cost_usd = -1;    // < 0 = null
  int64_t finished_unix_ms = 0;
};

// The error code of a transport failure: brg_status_name without "BRG_E_",
// lower-cased ("timeout", "too_large"); "unknown" for an unknown status.
std::string status_error_code(int status);

class OutputLineFormatter {
 public:
  OutputLineFormatter();
  ~OutputLineFormatter();
  OutputLineFormatter(const OutputLineFormatter&) = delete;
  OutputLineFormatter& operator=(const OutputLineFormatter&) = delete;

  // The line including its "\n"; valid until the next call. A body that is
  // one JSON value is embedded as is, except that line breaks between its
  // tokens become spaces (JSONL allows no raw newline, and inside JSON
  // strings they cannot occur); any other body is embedded as a JSON string.
  const std::string& format(const OutputRecord& r);

 private:
  void append_body(std::string_view body);

  struct Validator;
  std::unique_ptr<Validator> validator_;
  std::string line_;
};

}  // namespace barrage
