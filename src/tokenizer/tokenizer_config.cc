#include "tokenizer/tokenizer_config.h"

#include <algorithm>

#include "core/error.h"
#include "core/file_io.h"
#include "core/json.h"

namespace tulu {

namespace {

// Special tokens are written either as a string or as a serialized AddedToken object
// {"__type": "AddedToken", "content": "<s>", ...}.
std::optional<std::string> token_text(const Json& config, const std::string& key,
                                      const std::string& source) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return json_string(*it, "content", source + ": field '" + key + "'");
  fail(source, ": field '", key, "': expected a string or an AddedToken object, got ",
       json_preview(*it));
}

}  // namespace

TokenizerConfig read_tokenizer_config(const std::string& path) {
  const Json config = read_json_file(path);
  TULU_CHECK(config.is_object(), path, ": expected a JSON object at the top level");
  TokenizerConfig result;
  result.path = path;
  result.add_bos_token = json_opt_bool(config, "add_bos_token", path);
  result.add_eos_token = json_opt_bool(config, "add_eos_token", path);
  result.legacy = json_opt_bool(config, "legacy", path).value_or(true);
  result.bos_token = token_text(config, "bos_token", path);
  result.eos_token = token_text(config, "eos_token", path);
  result.unk_token = token_text(config, "unk_token", path);

  if (const auto it = config.find("added_tokens_decoder"); it != config.end() && !it->is_null()) {
    TULU_CHECK(it->is_object(), path, ": field 'added_tokens_decoder': expected an object, got ",
               json_preview(*it));
    for (const auto& [key, entry] : it->items()) {
      const std::string where = path + ": added_tokens_decoder[\"" + key + "\"]";
      size_t consumed = 0;
      int id = -1;
      try {
        id = std::stoi(key, &consumed);
      } catch (const std::exception&) {
        consumed = 0;
      }
      TULU_CHECK(consumed == key.size() && id >= 0, where, ": the key must be a token id");
      TULU_CHECK(entry.is_object(), where, ": expected an object, got ", json_preview(entry));
      AddedToken token;
      token.id = id;
      token.content = json_string(entry, "content", where);
      token.special = json_opt_bool(entry, "special", where).value_or(false);
      token.lstrip = json_opt_bool(entry, "lstrip", where).value_or(false);
      token.rstrip = json_opt_bool(entry, "rstrip", where).value_or(false);
      token.single_word = json_opt_bool(entry, "single_word", where).value_or(false);
      token.normalized = json_opt_bool(entry, "normalized", where).value_or(false);
      result.added_tokens.push_back(std::move(token));
    }
    std::sort(result.added_tokens.begin(), result.added_tokens.end(),
              [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  }

  if (const auto it = config.find("chat_template"); it != config.end() && !it->is_null()) {
    if (it->is_string()) {
      result.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      // Newer form: [{"name": "default", "template": "..."}, ...]; the default one is used.
      for (const Json& entry : *it) {
        TULU_CHECK(entry.is_object(), path,
                   ": field 'chat_template': expected objects with "
                   "'name' and 'template', got ",
                   json_preview(entry));
        if (json_string(entry, "name", path + ": chat_template entry") == "default") {
          result.chat_template = json_string(entry, "template", path + ": chat_template entry");
        }
      }
    } else {
      fail(path, ": field 'chat_template': expected a string, got ", json_preview(*it));
    }
  }
  return result;
}

std::optional<TokenizerConfig> read_tokenizer_config_in_dir(const std::string& dir) {
  const std::string path = join_path(dir, "tokenizer_config.json");
  if (!file_exists(path)) return std::nullopt;
  return read_tokenizer_config(path);
}

}  // namespace tulu
