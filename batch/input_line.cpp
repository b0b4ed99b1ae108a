// Input line checks. The line is parsed twice: the DOM parse validates every
// byte (so a broken body is an invalid line here, not a 400 later), and an
// on-demand pass finds the exact bytes of "body", which the DOM cannot
// give, so the body is sent as written, not re-serialised.
#include "batch/input_line.hpp"

#include <simdjson.h>

#include "batch/line_reader.hpp"
#include "batch/url_check.hpp"

namespace barrage {

static_assert(kLinePadding == simdjson::SIMDJSON_PADDING);

struct InputLineParser::Parsers {
  simdjson::dom::parser dom;
  simdjson::ondemand::parser ondemand;
};

InputLineParser::InputLineParser(std::string endpoint)
    : endpoint_(std::move(endpoint)), parsers_(std::make_unique<Parsers>()) {
  endpoint_http_ = endpoint_.starts_with("http://");
  // OPENAI_BASE_URL conventionally ends in /v1 while batch lines say
  // "/v1/chat/completions": joined naively that would be /v1/v1/...
  size_t scheme_end = endpoint_.find("://");
  size_t path = scheme_end == std::string::npos ? std::string::npos : endpoint_.find('/', scheme_end + 3);
  if (path != std::string::npos && endpoint_.ends_with("/v1"))
    endpoint_without_v1_ = endpoint_.substr(0, endpoint_.size() - 3);
}

InputLineParser::~InputLineParser() = default;

std::string InputLineParser::resolve_url(std::string_view url, std::string* why) const {
  std::string full;
  bool allow_http = false;
  if (url.starts_with("/") && !url.starts_with("//")) {
    full = (!endpoint_without_v1_.empty() && url.starts_with("/v1/") ? endpoint_without_v1_ : endpoint_);
    full += url;
    allow_http = endpoint_http_;
  } else if (url.starts_with("https://")) {
    full = url;
  } else {
    *why = "url must be a path such as /v1/chat/completions or an https:// URL";
    return "";
  }
  std::string bad = check_url(full, allow_http);
  if (!bad.empty()) {
    *why = "url " + full + " is not usable: " + bad;
    return "";
  }
  return full;
}

void InputLineParser::parse(std::string_view text, uint64_t line_number, InputLine* out) {
  out->kind = InputLine::Kind::invalid;
  out->has_custom_id = false;
  out->custom_id.clear();
  out->url.clear();
  out->body = {};
  out->model.clear();
  out->error.clear();
  if (text.find_first_not_of(" \t\r") == std::string_view::npos) {
    out->kind = InputLine::Kind::blank;
    return;
  }
  auto fail = [&](const std::string& why) { out->error = "line " + std::to_string(line_number) + ": " + why; };

  simdjson::dom::element doc;
  if (auto err = parsers_->dom.parse(text.data(), text.size(), false).get(doc)) {
    fail(std::string("not valid JSON (") + simdjson::error_message(err) + ")");
    return;
  }
  simdjson::dom::object root;
  if (doc.get_object().get(root)) {
    fail("not a JSON object");
    return;
  }

  std::string_view s;
  simdjson::dom::element v;
  if (root["custom_id"].get(v)) return fail("custom_id is missing");
  if (v.get_string().get(s)) return fail("custom_id is not a string");
  if (s.empty()) return fail("custom_id is empty");
  out->custom_id.assign(s);
  out->has_custom_id = true;

  if (root["method"].get(v) || v.get_string().get(s)) return fail("method is missing or not a string");
  if (s != "POST") return fail("method is \"" + std::string(s) + "\"; only POST is supported");

  if (root["url"].get(v) || v.get_string().get(s)) return fail("url is missing or not a string");
  std::string why;
  out->url = resolve_url(s, &why);
  if (out->url.empty()) return fail(why);

  simdjson::dom::object body;
  if (root["body"].get(v)) return fail("body is missing");
  if (v.get_object().get(body)) return fail("body is not a JSON object");
  if (!body["model"].get(v) && !v.get_string().get(s)) out->model.assign(s);

  // The document is known to be valid, so the on-demand walk cannot fail
  // except by running out of memory; the first "body" matches the DOM's.
  simdjson::ondemand::document od;
  simdjson::padded_string_view padded(text.data(), text.size(), text.size() + kLinePadding);
  if (parsers_->ondemand.iterate(padded).get(od) == simdjson::SUCCESS) {
    simdjson::ondemand::object obj;
    if (od.get_object().get(obj) == simdjson::SUCCESS) {
      for (auto item : obj) {
        simdjson::ondemand::field field;
        std::string_view key;
        if (std::move(item).get(field) || field.unescaped_key().get(key)) break;
        if (key != "body") continue;
        simdjson::ondemand::object b;
        std::string_view raw;
        if (field.value().get_object().get(b) == simdjson::SUCCESS && b.raw_json().get(raw) == simdjson::SUCCESS)
          // raw_json runs up to the next token: drop the whitespace before it.
          out->body = raw.substr(0, raw.find_last_not_of(" \t\r\n") + 1);
        break;
      }
    }
  }
  if (out->body.empty()) return fail("body could not be located in the line");
  out->kind = InputLine::Kind::valid;
}

}  // namespace barrage
