#include "train/dpo_ref_cache.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/file_io.h"

namespace tulu {

namespace {

constexpr const char* kFormat = "tulu-dpo-reference-logps";

std::vector<double> read_numbers(const Json& set, const char* key, const std::string& where) {
  const auto it = set.find(key);
  TULU_CHECK(it != set.end() && it->is_array(), where, ".", key, ": missing or not an array");
  std::vector<double> values;
  values.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& v = (*it)[i];
    TULU_CHECK(v.is_number() && std::isfinite(v.get<double>()), where, ".", key, "[", i,
               "]: not a finite number");
    values.push_back(v.get<double>());
  }
  return values;
}

DpoRefLogps read_set(const Json& root, const char* name, const std::string& path) {
  const std::string where = str_cat(path, ": field ", name);
  const Json& set = root.at(name);
  TULU_CHECK(set.is_object(), where, ": not an object");
  DpoRefLogps logps;
  logps.chosen = read_numbers(set, "chosen", where);
  logps.rejected = read_numbers(set, "rejected", where);
  TULU_CHECK(logps.chosen.size() == logps.rejected.size(), where, ": ", logps.chosen.size(),
             " chosen but ", logps.rejected.size(), " rejected log-probs");
  return logps;
}

Json set_json(const DpoRefLogps& logps) {
  return Json{{"chosen", logps.chosen}, {"rejected", logps.rejected}};
}

}  // namespace

uint64_t hash_weights(const std::vector<float>& params) {
  uint64_t hash = 1469598103934665603ull;
  for (const float value : params) {
    uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    hash = (hash ^ bits) * 1099511628211ull;
  }
  return hash;
}

std::optional<DpoRefCache> read_dpo_ref_cache(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  const std::string what = str_cat("--precompute-ref: ", path);
  Json root;
  try {
    root = read_json_file(path);
  } catch (const Error& e) {
    fail("--precompute-ref: ", e.what(), " (remove the file to recompute it)");
  }
  TULU_CHECK(root.is_object() && root.value("format", std::string()) == kFormat, what,
             ": not a reference log-prob file (field format is not \"", kFormat,
             "\"); remove it or name another file");
  TULU_CHECK(root.value("version", 0) == 1, what, ": field version: unsupported (expected 1)");
  TULU_CHECK(root.contains("fingerprint") && root["fingerprint"].is_object(), what,
             ": field fingerprint: missing or not an object");
  TULU_CHECK(root.contains("train"), what, ": field train: missing");
  DpoRefCache cache;
  cache.fingerprint = root["fingerprint"];
  cache.train = read_set(root, "train", what);
  if (root.contains("eval")) cache.eval = read_set(root, "eval", what);
  return cache;
}

std::string dpo_ref_fingerprint_difference(const Json& saved, const Json& current) {
  for (const auto& [key, value] : current.items()) {
    const auto it = saved.find(key);
    if (it == saved.end()) return str_cat(key, " (missing)");
    if (*it != value) return str_cat(key, " (", it->dump(), " then, ", value.dump(), " now)");
  }
  return {};
}

void write_dpo_ref_cache(const std::string& path, const DpoRefCache& cache) {
  Json root{{"format", kFormat},
            {"version", 1},
            {"fingerprint", cache.fingerprint},
            {"train", set_json(cache.train)}};
  if (cache.eval.has_value()) root["eval"] = set_json(*cache.eval);
  write_file_atomic(path, root.dump() + "\n");
}

}  // namespace tulu
