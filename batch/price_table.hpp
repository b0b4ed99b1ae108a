// Dollar cost of an answer from its model and token counts: a table of
// per-1M-token input and output prices, built in or read from a file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace barrage {

struct ModelPrice {
  double input_per_1m = 0;
  double output_per_1m = 0;
};

class PriceTable {
 public:
  // batch/prices.json, compiled into the library.
  static PriceTable builtin();
  // {"model":{"input":usd_per_1M,"output":usd_per_1M},...}; keys starting
  // with "_" are comments. "" on success, else why.
  std::string load_json(std::string_view json);
  std::string load_file(const std::string& path);

  // The model's own entry, else the longest entry it extends with "-"
  // (dated snapshots: "gpt-4o-2024-08-06" -> "gpt-4o"); nullptr if none.
  const ModelPrice* find(std::string_view model) const;
  // US dollars, or -1 when the model has no price or a count is unknown.
  double cost(std::string_view model, int64_t prompt_tokens, int64_t completion_tokens) const;
  size_t size() const noexcept { return prices_.size(); }

 private:
  std::unordered_map<std::string, ModelPrice> prices_;
};

}  // namespace barrage
