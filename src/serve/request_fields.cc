#include "serve/request_fields.h"

#include <cmath>

#include "core/error.h"

namespace tulu {

RequestFields::RequestFields(const Json& obj, std::string what, int status)
    : obj_(obj), what_(std::move(what)), status_(status) {
  if (!obj_.is_object()) {
    throw ApiError(status_, str_cat(what_, " must be a JSON object, got ", json_preview(obj_)));
  }
}

void RequestFields::fail(const std::string& key, const std::string& message) const {
  throw ApiError(status_, str_cat("'", key, "': ", message), "invalid_request_error", key);
}

void RequestFields::reject_unknown(std::initializer_list<const char*> known) const {
  reject_unknown(std::span<const char* const>(known.begin(), known.size()), {});
}

void RequestFields::reject_unknown(std::span<const char* const> known,
                                   std::span<const char* const> more) const {
  for (auto it = obj_.begin(); it != obj_.end(); ++it) {
    bool found = false;
    for (const char* k : known) found = found || it.key() == k;
    for (const char* k : more) found = found || it.key() == k;
    if (!found) {
      throw ApiError(
          status_,
          str_cat("Unrecognized request argument supplied: ", it.key(), " (in ", what_, ")"),
          "invalid_request_error", it.key());
    }
  }
}

bool RequestFields::has(const std::string& key) const {
  const auto it = obj_.find(key);
  return it != obj_.end() && !it->is_null();
}

const Json& RequestFields::raw(const std::string& key) const {
  return obj_.at(key);
}

std::optional<double> RequestFields::number(const std::string& key, double lo, double hi) const {
  if (!has(key)) return std::nullopt;
  const Json& v = obj_.at(key);
  if (!v.is_number()) fail(key, str_cat("expected a number, got ", json_preview(v)));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) {
    fail(key, str_cat("must be in [", lo, ", ", hi, "], got ", json_preview(v)));
  }
  return x;
}

std::optional<int64_t> RequestFields::integer(const std::string& key, int64_t lo,
                                              int64_t hi) const {
  if (!has(key)) return std::nullopt;
  const Json& v = obj_.at(key);
  if (!v.is_number_integer()) fail(key, str_cat("expected an integer, got ", json_preview(v)));
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) {
      fail(key, str_cat("must be in [", lo, ", ", hi, "], got ", json_preview(v)));
    }
    x = static_cast<int64_t>(u);
  } else {
    x = v.get<int64_t>();
  }
  if (x < lo || x > hi) fail(key, str_cat("must be in [", lo, ", ", hi, "], got ", x));
  return x;
}

std::optional<bool> RequestFields::boolean(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const Json& v = obj_.at(key);
  if (!v.is_boolean()) fail(key, str_cat("expected true or false, got ", json_preview(v)));
  return v.get<bool>();
}

std::optional<std::string> RequestFields::string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const Json& v = obj_.at(key);
  if (!v.is_string()) fail(key, str_cat("expected a string, got ", json_preview(v)));
  return v.get<std::string>();
}

std::vector<std::string> RequestFields::string_or_list(const std::string& key,
                                                       size_t max_items) const {
  std::vector<std::string> out;
  if (!has(key)) return out;
  const Json& v = obj_.at(key);
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const Json& item : v) {
      if (!item.is_string()) {
        fail(key, str_cat("expected a string or a list of strings, got ", json_preview(v)));
      }
      out.push_back(item.get<std::string>());
    }
  } else {
    fail(key, str_cat("expected a string or a list of strings, got ", json_preview(v)));
  }
  if (out.size() > max_items) fail(key, str_cat("at most ", max_items, " entries"));
  for (const std::string& s : out) {
    if (s.empty()) fail(key, "stop strings must not be empty");
  }
  return out;
}

}  // namespace tulu
