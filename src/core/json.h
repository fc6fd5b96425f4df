// nlohmann::json plus checked accessors whose errors name the source and the field,
// e.g. "config.json: field 'hidden_size': expected an integer, got \"4096\"".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace tulu {

using Json = nlohmann::json;

// Parses text; a syntax error becomes tulu::Error naming `source` and the byte offset.
Json parse_json(const std::string& text, const std::string& source);
Json read_json_file(const std::string& path);

// Short rendering of a value for error messages (truncated to ~60 characters).
std::string json_preview(const Json& value);

// Required fields: throw tulu::Error "<source>: field '<key>' ..." when absent or mistyped.
int64_t json_int(const Json& obj, const std::string& key, const std::string& source);
double json_number(const Json& obj, const std::string& key, const std::string& source);
std::string json_string(const Json& obj, const std::string& key, const std::string& source);
bool json_bool(const Json& obj, const std::string& key, const std::string& source);

// Optional fields: absent or null gives std::nullopt; a wrong type still throws.
std::optional<int64_t> json_opt_int(const Json& obj, const std::string& key, const std::string& source);
std::optional<double> json_opt_number(const Json& obj, const std::string& key, const std::string& source);
std::optional<std::string> json_opt_string(const Json& obj, const std::string& key, const std::string& source);
std::optional<bool> json_opt_bool(const Json& obj, const std::string& key, const std::string& source);

}  // namespace tulu
