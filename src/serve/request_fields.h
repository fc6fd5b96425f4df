// Typed access to request JSON fields: a wrong type or value becomes an ApiError with
// the given status (400 for OpenAI, 422 for text-generation-inference) naming the field.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/json.h"
#include "serve/api_error.h"

namespace tulu {

class RequestFields {
 public:
  // obj must be a JSON object (else the ApiError "<what> must be a JSON object").
  RequestFields(const Json& obj, std::string what, int status);

  // Fails naming the first key not in `known` (OpenAI rejects unrecognized arguments).
  void reject_unknown(std::initializer_list<const char*> known) const;
  // The same over two lists (fields several endpoints share, plus the endpoint's own).
  void reject_unknown(std::span<const char* const> known, std::span<const char* const> more) const;
  bool has(const std::string& key) const;         // present and not null
  const Json& raw(const std::string& key) const;  // present (check has() first)

  // Absent or null → nullopt. Ranges are inclusive; a value outside fails.
  std::optional<double> number(const std::string& key, double lo, double hi) const;
  std::optional<int64_t> integer(const std::string& key, int64_t lo, int64_t hi) const;
  std::optional<bool> boolean(const std::string& key) const;
  std::optional<std::string> string(const std::string& key) const;
  // A string or a list of strings (OpenAI's `stop`), each non-empty, at most max_items.
  std::vector<std::string> string_or_list(const std::string& key, size_t max_items) const;

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  int status() const { return status_; }

 private:
  const Json& obj_;
  std::string what_;
  int status_;
};

}  // namespace tulu
