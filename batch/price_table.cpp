// PriceTable. The built-in table is prices.json itself, pulled into the
// object file by the assembler's .incbin (found through the project-root
// include directory, which GCC hands on to the assembler), so the shipped
// data file and the compiled-in table cannot disagree. .incbin is invisible
// to the compiler's dependency scan: after editing prices.json, touch this file.
#include "batch/price_table.hpp"

#include <simdjson.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <stdexcept>

asm(R"(
  .section .rodata
  .balign 16
  .hidden barrage_builtin_prices
  .hidden barrage_builtin_prices_end
barrage_builtin_prices:
  .incbin "batch/prices.json"
barrage_builtin_prices_end:
  .byte 0
  .previous
)");

extern "C" __attribute__((visibility("hidden"))) const char barrage_builtin_prices[];
extern "C" __attribute__((visibility("hidden"))) const char barrage_builtin_prices_end[];

namespace barrage {

PriceTable PriceTable::builtin() {
  PriceTable t;
  std::string err = t.load_json(std::string_view(barrage_builtin_prices,
                                                 size_t(barrage_builtin_prices_end - barrage_builtin_prices)));
  if (!err.empty()) throw std::logic_error("built-in prices.json: " + err);  // a build defect
  return t;
}

std::string PriceTable::load_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  simdjson::dom::element doc;
  if (auto err = parser.parse(padded).get(doc)) return std::string("not valid JSON: ") + simdjson::error_message(err);
  simdjson::dom::object root;
  if (doc.get_object().get(root)) return "not a JSON object";
  std::unordered_map<std::string, ModelPrice> prices;
  for (auto [key, value] : root) {
    if (key.starts_with("_")) continue;
    std::string model(key);
    ModelPrice p;
    simdjson::dom::object o;
    if (value.get_object().get(o) || o["input"].get_double().get(p.input_per_1m) ||
        o["output"].get_double().get(p.output_per_1m) || !std::isfinite(p.input_per_1m) ||
        !std::isfinite(p.output_per_1m) || p.input_per_1m < 0 || p.output_per_1m < 0)
      return "model \"" + model + "\" needs {\"input\": usd_per_1M, \"output\": usd_per_1M}, both numbers >= 0";
    prices[model] = p;
  }
  prices_ = std::move(prices);
  return "";
}

std::string PriceTable::load_file(const std::string& path) {
  simdjson::padded_string text;
  if (auto err = simdjson::padded_string::load(path).get(text))
    return "cannot read price table " + path + ": " + simdjson::error_message(err);
  std::string why = load_json(std::string_view(text.data(), text.size()));
  return why.empty() ? "" : "price table " + path + ": " + why;
}

const ModelPrice* PriceTable::find(std::string_view model) const {
  // Cut at each "-" from the right: the longest matching prefix wins.
  std::string key(model);
  for (;;) {
    if (auto it = prices_.find(key); it != prices_.end()) return &it->second;
    size_t dash = key.rfind('-');
    if (dash == std::string::npos || dash == 0) return nullptr;
    key.resize(dash);
  }
}

double PriceTable::cost(std::string_view model, int64_t prompt_tokens, int64_t completion_tokens) const {
  if (model.empty() || prompt_tokens < 0 || completion_tokens < 0) return -1;
  const ModelPrice* p = find(model);
  if (!p) return -1;
  return (double(prompt_tokens) * p->input_per_1m + double(completion_tokens) * p->output_per_1m) / 1e6;
}

}  // namespace barrage
