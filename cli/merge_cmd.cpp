// `barrage merge INPUT.jsonl OUT0.jsonl OUT1.jsonl ... [-o MERGED.jsonl]`:
// checks that the outputs of a batch run in shards (`--shard i/n` on many
// machines) cover every custom_id of the input exactly once, and can write
// them as one file in input order. Exit 0 when they do, 1 when a custom_id
// is missing, repeated or unknown, 2 for unreadable files.
#include <fmt/format.h>
#include <simdjson.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "commands.hpp"

namespace barrage::cli {
namespace {

struct MergeArgs {
  std::string input, output;
  std::vector<std::string> shards;
};

// Calls fn(custom_id, line) for every line with a string custom_id; false
// when the file cannot be read. Lines without one count in *other.
template <class Fn>
bool each_custom_id(const std::string& path, size_t* other, Fn&& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  simdjson::ondemand::parser parser;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    simdjson::padded_string padded(line);
    simdjson::ondemand::document doc;
    std::string_view id;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS || doc["custom_id"].get_string().get(id) != simdjson::SUCCESS) {
      ++*other;
      continue;
    }
    fn(std::string(id), line);
  }
  return true;
}

int run_merge(const MergeArgs& a) {
  std::vector<std::string> order;
  std::unordered_map<std::string, size_t> seen;  // custom_id -> lines found in the shards
  size_t bad_input = 0;
  if (!each_custom_id(a.input, &bad_input, [&](std::string id, const std::string&) {
        if (seen.emplace(id, 0).second) order.push_back(std::move(id));
      })) {
    fmt::print(stderr, "barrage merge: cannot read {}\n", a.input);
    return 2;
  }
  std::unordered_map<std::string, std::string> first_line;
  std::vector<std::string> unknown;
  size_t bad_output = 0, lines = 0;
  for (const std::string& path : a.shards) {
    if (!each_custom_id(path, &bad_output, [&](std::string id, const std::string& line) {
          ++lines;
          auto it = seen.find(id);
          if (it == seen.end()) {
            unknown.push_back(id);
            return;
          }
          if (it->second++ == 0 && !a.output.empty()) first_line.emplace(id, line);
        })) {
      fmt::print(stderr, "barrage merge: cannot read {}\n", path);
      return 2;
    }
  }
  std::vector<std::string> missing, repeated;
  for (const std::string& id : order) {
    size_t n = seen[id];
    if (n == 0) missing.push_back(id);
    if (n > 1) repeated.push_back(fmt::format("{} ({}x)", id, n));
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 10; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 10) s += fmt::format(", ... ({} more)", v.size() - 10);
    return s;
  };
  fmt::print("{} custom_ids in {}; {} result lines in {} shard file(s)\n", order.size(), a.input, lines,
             a.shards.size());
  if (!missing.empty()) fmt::print("missing:   {} ({})\n", missing.size(), list(missing));
  if (!repeated.empty()) fmt::print("repeated:  {} ({})\n", repeated.size(), list(repeated));
  if (!unknown.empty()) fmt::print("unknown:   {} ({})\n", unknown.size(), list(unknown));
  if (bad_output) fmt::print("unreadable output lines: {}\n", bad_output);
  const bool exact = missing.empty() && repeated.empty() && unknown.empty() && bad_output == 0;
  if (exact) fmt::print("every custom_id exactly once\n");
  if (!a.output.empty()) {
    std::FILE* f = std::fopen(a.output.c_str(), "wb");
    if (!f) {
      fmt::print(stderr, "barrage merge: cannot write {}\n", a.output);
      return 2;
    }
    for (const std::string& id : order) {
      auto it = first_line.find(id);
      if (it != first_line.end()) fmt::print(f, "{}\n", it->second);
    }
    std::fclose(f);
  }
  return exact ? 0 : 1;
}

}  // namespace

Command add_merge_command(CLI::App& parent) {
  auto a = std::make_shared<MergeArgs>();
  CLI::App* app = parent.add_subcommand(
      "merge", "check that shard outputs cover every custom_id of the input exactly once; merge them");
  app->add_option("input", a->input, "the Batch API input file the shards ran")->required()->check(CLI::ExistingFile);
  app->add_option("outputs", a->shards, "each shard's output file (barrage run --shard i/n -o ...)")
      ->required()
      ->check(CLI::ExistingFile);
  app->add_option("-o,--output", a->output, "write the results once each, in input order, here");
  return {app, [a] { return run_merge(*a); }};
}

}  // namespace barrage::cli
