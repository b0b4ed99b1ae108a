// Checking Batch API input lines (see input_scan.hpp). The rules follow the
// OpenAI Batch API: custom_id a non-empty string, method "POST" when given,
// url a path or an absolute http(s) URL, body a JSON object.
#include "input_scan.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace barrage::cli {
namespace {

std::string check_line(simdjson::dom::parser& parser, const std::string& line, InputScan* s) {
  using namespace simdjson;
  // DOM, not On-Demand: a dry run should catch a syntax error anywhere in
  // the line, including inside a body it never looks at.
  dom::element doc;
  if (parser.parse(line).get(doc) != SUCCESS) return "not valid JSON";
  dom::object obj;
  if (doc.get_object().get(obj) != SUCCESS) return "not a JSON object";
  std::string_view custom_id, method = "POST", url;
  auto id_err = obj["custom_id"].get_string().get(custom_id);
  if (id_err == NO_SUCH_FIELD) return "missing \"custom_id\"";
  if (id_err != SUCCESS) return "\"custom_id\" is not a string";
  if (custom_id.empty()) return "\"custom_id\" is empty";
  auto m_err = obj["method"].get_string().get(method);
  if (m_err != SUCCESS && m_err != NO_SUCH_FIELD) return "\"method\" is not a string";
  if (method != "POST") return fmt::format("method \"{}\" (the Batch API sends POST only)", method);
  auto u_err = obj["url"].get_string().get(url);
  if (u_err == NO_SUCH_FIELD) return "missing \"url\"";
  if (u_err != SUCCESS) return "\"url\" is not a string";
  if (!(url.substr(0, 1) == "/" || url.substr(0, 8) == "https://" || url.substr(0, 7) == "http://"))
    return fmt::format("url \"{}\" is neither a path (/v1/...) nor an http(s) URL", url);
  dom::object body;
  auto b_err = obj["body"].get_object().get(body);
  if (b_err == NO_SUCH_FIELD) return "missing \"body\"";
  if (b_err != SUCCESS) return "\"body\" is not a JSON object";
  std::string_view model;
  s->by_url[std::string(url)]++;
  s->by_model[body["model"].get_string().get(model) == SUCCESS ? std::string(model) : "(none)"]++;
  return "";
}

}  // namespace

bool scan_input(const std::string& path, InputScan* s, std::string* err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *err = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return false;
  }
  simdjson::dom::parser parser;
  std::string buf;
  uint64_t n = 0;
  while (std::getline(in, buf)) {
    ++n;
    if (buf.find_first_not_of(" \t\r") == std::string::npos) continue;
    s->lines++;
    s->body_bytes += buf.size();
    std::string why = check_line(parser, buf, s);
    if (why.empty()) {
      s->valid++;
    } else {
      s->invalid.emplace_back(n, why);
    }
  }
  if (in.bad()) {
    *err = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

}  // namespace barrage::cli
