#include "core/json.h"

#include <cmath>

#include "core/error.h"
#include "core/file_io.h"

namespace tulu {

Json parse_json(const std::string& text, const std::string& source) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    fail(source, ": invalid JSON at byte ", e.byte, ": ", e.what());
  }
}

Json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

namespace {

// Renders at most a few nesting levels: Json::dump recurses once per level, and a value such
// as [[[[...100,000 deep...]]]] from a hostile file would overflow the stack.
void preview_into(const Json& value, int depth, std::string& out) {
  constexpr size_t kLimit = 60;
  if (out.size() > kLimit) return;
  if (value.is_array() || value.is_object()) {
    const bool array = value.is_array();
    out += array ? '[' : '{';
    if (depth == 0 && !value.empty()) out += "...";
    bool first = true;
    for (auto it = value.begin(); depth > 0 && it != value.end() && out.size() <= kLimit; ++it) {
      if (!first) out += ',';
      first = false;
      if (!array) out += Json(it.key()).dump() + ":";
      preview_into(it.value(), depth - 1, out);
    }
    out += array ? ']' : '}';
  } else {
    out += value.dump();
  }
}

}  // namespace

std::string json_preview(const Json& value) {
  std::string out;
  preview_into(value, 3, out);
  if (out.size() > 60) {
    size_t cut = 57;  // on a character boundary, so the message stays valid UTF-8
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

namespace {

const Json* find_field(const Json& obj, const std::string& key, const std::string& source) {
  if (!obj.is_object()) fail(source, ": expected a JSON object, got ", json_preview(obj));
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const Json& require_field(const Json& obj, const std::string& key, const std::string& source) {
  const Json* v = find_field(obj, key, source);
  if (v == nullptr) fail(source, ": missing required field '", key, "'");
  return *v;
}

int64_t as_int(const Json& v, const std::string& key, const std::string& source) {
  if (v.is_number_integer()) return v.get<int64_t>();
  // 4096.0 is accepted as an integer; 4096.5 is not.
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  fail(source, ": field '", key, "': expected an integer, got ", json_preview(v));
}

double as_number(const Json& v, const std::string& key, const std::string& source) {
  if (!v.is_number()) fail(source, ": field '", key, "': expected a number, got ", json_preview(v));
  return v.get<double>();
}

std::string as_string(const Json& v, const std::string& key, const std::string& source) {
  if (!v.is_string()) fail(source, ": field '", key, "': expected a string, got ", json_preview(v));
  return v.get<std::string>();
}

bool as_bool(const Json& v, const std::string& key, const std::string& source) {
  if (!v.is_boolean()) fail(source, ": field '", key, "': expected true or false, got ", json_preview(v));
  return v.get<bool>();
}

}  // namespace

int64_t json_int(const Json& obj, const std::string& key, const std::string& source) {
  return as_int(require_field(obj, key, source), key, source);
}
double json_number(const Json& obj, const std::string& key, const std::string& source) {
  return as_number(require_field(obj, key, source), key, source);
}
std::string json_string(const Json& obj, const std::string& key, const std::string& source) {
  return as_string(require_field(obj, key, source), key, source);
}
bool json_bool(const Json& obj, const std::string& key, const std::string& source) {
  return as_bool(require_field(obj, key, source), key, source);
}

std::optional<int64_t> json_opt_int(const Json& obj, const std::string& key, const std::string& source) {
  const Json* v = find_field(obj, key, source);
  if (v == nullptr) return std::nullopt;
  return as_int(*v, key, source);
}
std::optional<double> json_opt_number(const Json& obj, const std::string& key, const std::string& source) {
  const Json* v = find_field(obj, key, source);
  if (v == nullptr) return std::nullopt;
  return as_number(*v, key, source);
}
std::optional<std::string> json_opt_string(const Json& obj, const std::string& key, const std::string& source) {
  const Json* v = find_field(obj, key, source);
  if (v == nullptr) return std::nullopt;
  return as_string(*v, key, source);
}
std::optional<bool> json_opt_bool(const Json& obj, const std::string& key, const std::string& source) {
  const Json* v = find_field(obj, key, source);
  if (v == nullptr) return std::nullopt;
  return as_bool(*v, key, source);
}

}  // namespace tulu
